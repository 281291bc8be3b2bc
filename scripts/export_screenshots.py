"""Write SVG screenshots of vramtop's main views on the demo node into ``screenshots/``.

The demo node is sampled at a fixed clock, so running this twice gives the same files.
Every shipped theme at the medium size, and the default theme at every size and view::

    python scripts/export_screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.ray.demo import DemoRayPoller
from vramtop.sources.demo import DemoSource
from vramtop.themes import bundled_dir, load_themes

CLOCK = 1_700_000_000.0
SIZES = {"narrow": (40, 30), "medium": (100, 30), "wide": (160, 45)}
# name -> keys pressed after the first picture
VIEWS = {"main": (), "folded": ("enter",), "filter": ("slash", "t", "p"), "help": ("question_mark",),
         "ray": ("r",), "whatif": ("w", *"medgemma-4b", "enter")}


async def shoot(out: Path, name: str, size: tuple[int, int], theme: str, keys: tuple[str, ...]) -> Path:
    app = VramtopApp(DemoSource(clock=lambda: CLOCK), Config(interval=3600.0, theme=theme),
                     ray_poller=DemoRayPoller(clock=lambda: CLOCK))
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
        path = await shoot(out, name, size, theme, keys)
        print(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "screenshots")
    asyncio.run(main(parser.parse_args().out))
