"""The options several commands share, each declared once and given to a parser as a parent
(``argparse``'s ``parents=``): where the node comes from (``--demo``), the Ray dashboard
(``--ray-address``, ``--no-ray``) and the config file (``--config``).

The top-level parser takes them with their defaults; a subcommand takes them with none
(``SUPPRESS``), so ``vramtop --demo record`` and ``vramtop record --demo`` mean the same and a
subcommand's parser never resets what the top level was given.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _parent(defaults: bool) -> tuple[argparse.ArgumentParser, dict]:
    return argparse.ArgumentParser(add_help=False), {} if defaults else {"default": argparse.SUPPRESS}


def demo(defaults: bool = False) -> argparse.ArgumentParser:
    p, kw = _parent(defaults)
    p.add_argument("--demo", action="store_true", help="use the built-in demo node instead of this machine's GPUs", **kw)
    return p


def ray(defaults: bool = False) -> argparse.ArgumentParser:
    p, kw = _parent(defaults)
    p.add_argument("--ray-address", metavar="URL",
                   help="Ray dashboard (default: RAY_DASHBOARD_ADDRESS, RAY_ADDRESS, then http://127.0.0.1:8265)", **kw)
    p.add_argument("--no-ray", action="store_true", help="do not poll a Ray dashboard", **kw)
    return p


def config(defaults: bool = False) -> argparse.ArgumentParser:
    p, kw = _parent(defaults)
    p.add_argument("--config", type=Path, metavar="PATH", help="config file (default: ~/.config/vramtop/config.yaml)",
                   **kw)
    return p
