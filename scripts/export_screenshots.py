"""Write SVG screenshots of vramtop's main views on the demo node into ``screenshots/``.

The demo node is sampled at a fixed clock, so running this twice gives the same files.
Every shipped theme at the medium size, the default theme at every size and view, a replay of
the demo node, and cluster mode on a fixed two-node Ray state::

    python scripts/export_screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.history import History
from vramtop.ray.demo import DemoRayPoller
from vramtop.ray.model import OK, Node, RayGpu, RayState
from vramtop.sources.cluster import ClusterSource
from vramtop.sources.demo import DemoSource
from vramtop.sources.replay import ReplaySource
from vramtop.themes import bundled_dir, load_themes

CLOCK = 1_700_000_000.0
SIZES = {"narrow": (40, 30), "medium": (100, 30), "wide": (160, 45)}
# name -> keys pressed after the first picture
VIEWS = {"main": (), "folded": ("enter",), "filter": ("slash", "t", "p"), "help": ("question_mark",),
         "ray": ("R",), "whatif": ("w", *"medgemma-4b", "enter")}


class TwoNodes:
    """A Ray dashboard's answer, fixed: the seed's A10 node and a worker with two H100s."""

    def poll(self) -> RayState:
        a10 = tuple(RayGpu(i, "NVIDIA A10", f"GPU-a10-{i}", used + 513, 23_028, util, {4101 + i: 20_730})
                    for i, (used, util) in enumerate(((22_483, 88), (21_259, 92), (21_261, 90), (21_151, 85))))
        h100 = (RayGpu(0, "NVIDIA H100 80GB HBM3", "GPU-h100-0", 61_043, 81_559, 97, {7001: 60_500}),
                RayGpu(1, "NVIDIA H100 80GB HBM3", "GPU-h100-1", 527, 81_559, 0, {}))
        nodes = (Node("a" * 32, "10.0.0.10", "demo-a10-node", True, "ALIVE", {"GPU": 4.0}, {"GPU": 4.0}, a10),
                 Node("b" * 32, "10.0.0.11", "gpu-h100-1", False, "ALIVE", {"GPU": 2.0}, {"GPU": 1.0}, h100))
        return RayState("http://10.0.0.10:8265", OK, CLOCK, last_success=CLOCK, ray_version="2.60.0", nodes=nodes)


def demo_app(theme: str) -> VramtopApp:
    return VramtopApp(DemoSource(clock=lambda: CLOCK), Config(interval=1.0, theme=theme),
                      ray_poller=DemoRayPoller(clock=lambda: CLOCK))


def replay_app(theme: str) -> VramtopApp:
    history = History()
    for t in range(10):
        snapshot = DemoSource(clock=lambda t=t: CLOCK + t).sample()
        history.add(replace(snapshot, ray=DemoRayPoller(clock=lambda t=t: CLOCK + t).poll()))
    path = Path(tempfile.mkdtemp()) / "demo.vtrec"
    history.save(path, interval=1.0)
    source = ReplaySource(path)
    source.step(4)  # paused on the fifth snapshot
    return VramtopApp(source, Config(interval=1.0, theme=theme))


def cluster_app(theme: str) -> VramtopApp:
    return VramtopApp(ClusterSource(TwoNodes()), Config(interval=1.0, theme=theme))


async def shoot(out: Path, name: str, size: tuple[int, int], theme: str, keys: tuple[str, ...],
                make=demo_app) -> Path:
    app = make(theme)
    async with app.run_test(size=size) as pilot:
        for _ in range(250):
            if app.snapshot is not None and app.snapshot.ray is not None:
                break
            if app.snapshot is not None and app._ray is not None:
                app.sample_now()  # the Ray poll landed after the first sample: take one with it
            await pilot.pause(0.02)
        await pilot.press(*keys)
        await pilot.pause()
        return Path(app.save_screenshot(f"{name}.svg", str(out)))


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("NO_COLOR", None)
    themes, _ = load_themes([bundled_dir()])
    jobs: list[tuple[str, tuple[int, int], str, tuple[str, ...]]] = []
    for size_name, size in SIZES.items():
        for view, keys in VIEWS.items():
            if view == "ray" and size_name != "narrow":
                continue
            jobs.append((f"{view}-{size_name}", size, "vramtop-dark", keys))
    for theme in sorted(themes):
        jobs.append((f"theme-{theme}", SIZES["medium"], theme, ()))
    for name, size, theme, keys in jobs:
        print(await shoot(out, name, size, theme, keys))
    print(await shoot(out, "replay-medium", SIZES["medium"], "vramtop-dark", (), replay_app))
    print(await shoot(out, "cluster-wide", SIZES["wide"], "vramtop-dark", (), cluster_app))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "screenshots")
    asyncio.run(main(parser.parse_args().out))
