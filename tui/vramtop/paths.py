"""Every directory vramtop reads or writes of its own, computed in one place.

The XDG base directories (a variable that is unset or empty falls back to its default under
the home directory), with ``vramtop`` under each; the runtime directory of launch reservations;
and the Hugging Face cache as huggingface_hub finds it (read here without importing the client,
which costs half a second); and an Ollama server's model store. Nothing here creates, opens or
checks a directory: the callers do, each with the checks its use needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

APP = "vramtop"


def _xdg(variable: str, default: Path) -> Path:
    return Path(os.environ.get(variable) or default)


def config_home() -> Path:
    """``$XDG_CONFIG_HOME`` (``~/.config`` when unset)."""
    return _xdg("XDG_CONFIG_HOME", Path.home() / ".config")


def config_file() -> Path:
    """The settings file (``config``) read when ``--config`` names none."""
    return config_home() / APP / "config.yaml"


def user_themes_dir() -> Path:
    """A user's own themes (``themes``), which win on a name clash with the shipped ones."""
    return config_home() / APP / "themes"


def state_home() -> Path:
    """``$XDG_STATE_HOME`` (``~/.local/state`` when unset)."""
    return _xdg("XDG_STATE_HOME", Path.home() / ".local" / "state")


def whatif_state_file() -> Path:
    """The what-if panel's form, recent candidates and pins (``widgets.whatif.persist``)."""
    return state_home() / APP / "whatif.yaml"


def cache_home() -> Path:
    """``$XDG_CACHE_HOME`` (``~/.cache`` when unset)."""
    return _xdg("XDG_CACHE_HOME", Path.home() / ".cache")


def spec_cache_dir() -> Path:
    """Resolved model specs of models that are not here (``fit.remote``)."""
    return cache_home() / APP / "specs"


def runtime_dir() -> Path:
    """Launch reservations and their lock: ``$VRAMTOP_RUNTIME_DIR`` (a site's shared directory;
    tests), else ``/run/vramtop`` as root, else ``$XDG_RUNTIME_DIR/vramtop``, else
    ``/tmp/vramtop-UID``."""
    override = os.environ.get("VRAMTOP_RUNTIME_DIR")
    if override and os.path.isabs(override):
        return Path(override)
    if os.geteuid() == 0:
        return Path("/run") / APP
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / APP
    return Path(f"/tmp/{APP}-{os.geteuid()}")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache as huggingface_hub's constants find it: ``$HF_HUB_CACHE`` (or
    its older name ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub``."""
    hf_home = os.environ.get("HF_HOME") or str(cache_home() / "huggingface")
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    return Path(explicit or Path(hf_home) / "hub")


def ollama_models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """An Ollama server's model store: its ``$OLLAMA_MODELS``, else ``.ollama/models`` in its home
    directory. ``environ`` is the server's environment; ours when None."""
    env = os.environ if environ is None else environ
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return Path(env.get("OLLAMA_MODELS") or home / ".ollama" / "models")
