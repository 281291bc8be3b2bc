"""Write SVG screenshots of vramtop's main views on the demo node into ``screenshots/``.

The demo node is sampled at a fixed clock, so running this twice gives the same files.
Every shipped theme at the medium size, the default theme at every size and view, a replay of
the demo node, cluster mode on a fixed two-node Ray state, and the layouts (``LAYOUTS``: Ray
absent, Ray present with two pins, the what-if panel open with two pins) at 40 to 200 columns,
which ``tests/tui/test_snapshots.py`` also compares::

    python scripts/export_screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from textual.widgets import Input

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.history import History
from vramtop.ray.demo import DemoRayPoller
from vramtop.ray.model import NOT_FOUND, OK, Node, RayGpu, RayState
from vramtop.sources.cluster import ClusterSource
from vramtop.sources.demo import DemoSource
from vramtop.sources.replay import ReplaySource
from vramtop.themes import bundled_dir, load_themes
from vramtop.widgets.whatif.form import OLLAMA, FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory

CLOCK = 1_700_000_000.0
SIZES = {"narrow": (40, 30), "medium": (100, 30), "wide": (160, 45)}
# name -> keys pressed after the first picture
VIEWS = {"main": (), "folded": ("enter",), "filter": ("slash", "t", "p"), "help": ("question_mark",),
         "ray": ("R",), "whatif": ("w", *"medgemma-4b", "enter")}
LAYOUT_SIZES = {40: (40, 30), 80: (80, 24), 120: (120, 36), 160: (160, 50), 200: (200, 50)}
# The seed's recommendation (medgemma-4b on vLLM, TP=2, 85 %, 8k) and its 29 GB alternative.
PINS = (FormState(model="google/medgemma-4b-it", tensor_parallel_size="2", gpu_memory_utilization="0.85",
                  max_model_len="8192"),
        FormState(model="medgemma-27b-it:q8", engine=OLLAMA))


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


class NoRay:
    """A Ray dashboard address where nothing answers, as ``RayPoller`` reports it."""

    def poll(self) -> RayState:
        return RayState("http://127.0.0.1:8265", NOT_FOUND, CLOCK, error="connection refused")


class DemoWithRay:
    """The demo node with a Ray poll in each snapshot (as cluster mode and replays carry it), so
    the first picture has it and no second sample is needed: one sample, on every run."""

    carries_ray = True

    def __init__(self, poller) -> None:
        self.poller = poller

    def sample(self):
        return replace(DemoSource(clock=lambda: CLOCK).sample(), ray=self.poller.poll())


def layout_app(state: str) -> tuple[VramtopApp, tuple[str, ...]]:
    """One of ``LAYOUTS`` on the demo node, and the keys that open its view. The pins go into the
    what-if state file (``$XDG_STATE_HOME``: the caller points it somewhere of its own)."""
    ray, pins, keys = LAYOUTS[state]
    save_memory(WhatIfMemory(current=PINS[0] if pins else None, pins=PINS if pins else ()))
    source = DemoWithRay(DemoRayPoller(clock=lambda: CLOCK) if ray else NoRay())
    return VramtopApp(source, Config(interval=1.0)), keys


# name -> (Ray answers, two pins, keys)
LAYOUTS = {"ray-absent": (False, False, ()), "ray-present": (True, True, ()), "whatif": (False, True, ("w",))}


def demo_app(theme: str) -> VramtopApp:
    return VramtopApp(DemoWithRay(DemoRayPoller(clock=lambda: CLOCK)), Config(interval=1.0, theme=theme))


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


async def settle(pilot, keys: tuple[str, ...]) -> None:
    """Wait for a first picture that carries the Ray poll, press ``keys``, stop the cursors'
    blinking: the same screen on every run."""
    app = pilot.app
    for _ in range(250):
        if app.snapshot is not None and app.snapshot.ray is not None:
            break
        await pilot.pause(0.02)
    for _ in range(250):  # the Ray panel shows the tick's analysis of the poll
        if [str(s.render()) for s in app.query("#ray-summary")] != ["Ray: not polled"]:
            break
        await pilot.pause(0.02)
    for _ in range(250):  # the side column judges the pins on a thread: "⋯" until it has
        if not any("⋯" in str(s.render()) for s in app.query("#side-pins")):
            break
        await pilot.pause(0.02)
    # The first picture only (a second sample of the same node would draw a trend), without the
    # header's PAUSED badge: set without calling the watchers.
    app.set_reactive(type(app).paused, True)
    await pilot.pause()
    await pilot.press(*keys)
    await pilot.pause()
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def shoot(out: Path, name: str, size: tuple[int, int], theme: str, keys: tuple[str, ...],
                make=demo_app) -> Path:
    app = make(theme)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, keys)
        return Path(app.save_screenshot(f"{name}.svg", str(out)))


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("NO_COLOR", None)
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp()  # the what-if state shown is ours, not the user's
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
    for state in LAYOUTS:
        for columns, size in LAYOUT_SIZES.items():
            app, keys = layout_app(state)
            print(await shoot(out, f"layout-{state}-{columns}", size, "vramtop-dark", keys, lambda _theme: app))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "screenshots")
    asyncio.run(main(parser.parse_args().out))
