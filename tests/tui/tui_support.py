"""Sources and helpers for the TUI tests: real snapshots from the dataclasses, no mocks."""

from __future__ import annotations

import dataclasses
import threading

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.snapshot import GpuProcess, HostProcess, NodeSnapshot
from vramtop.sources.demo import DemoSource

FIXED = 1_700_000_000.0


def demo_snapshot(**changes) -> NodeSnapshot:
    return dataclasses.replace(DemoSource(clock=lambda: FIXED).sample(), **changes)


class ScriptedSource:
    """Returns the scripted items in turn (an exception is raised), then repeats the last."""

    def __init__(self, *items) -> None:
        self.items = list(items)
        self.calls = 0
        self.lock = threading.Lock()

    def sample(self) -> NodeSnapshot:
        with self.lock:
            item = self.items[min(self.calls, len(self.items) - 1)]
            self.calls += 1
        if isinstance(item, BaseException):
            raise item
        return item


def make_app(source=None, **config) -> VramtopApp:
    """An app that samples once at start; tests ask for more samples with ``app.sample_now()``."""
    config.setdefault("interval", 3600.0)
    return VramtopApp(source or DemoSource(clock=lambda: FIXED), Config(**config))


async def wait_for(pilot, condition, seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if condition():
            await pilot.pause()
            return True
        await pilot.pause(0.02)
    return condition()


async def next_sample(app, pilot) -> None:
    """Ask for one more sample and wait until the app has shown it (or its failure)."""
    shown = (app.snapshot, app.sample_error)
    app.sample_now()
    assert await wait_for(pilot, lambda: (app.snapshot, app.sample_error) != shown or _settled(app))
    await pilot.pause()


def _settled(app) -> bool:
    return not app.sampling


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def hidden_process(pid: int, gpu: int, mib: int) -> GpuProcess:
    return GpuProcess(pid, gpu, mib, host=None, hidden_reason="another PID namespace")


def visible_process(pid: int, gpu: int, mib: int, title: str, user: str = "alice") -> GpuProcess:
    host = HostProcess(pid, 1, title.split()[0][:15], title, tuple(title.split()), user, 1.5, 700)
    return GpuProcess(pid, gpu, mib, host=host)



def gpu_lines(app, index: int) -> list[str]:
    """The text of the GPU ``index``'s lines as the GPU panel draws them."""
    from vramtop.widgets.gpu_bars import GpuPanel

    return [strip.text for strip in app.query_one(GpuPanel).strips_of(index)]


def drawn_cells(widget, lines: range) -> dict[tuple[int, int], tuple]:
    """What ``widget`` draws on these lines of its content, cell by cell: (x, y) -> (character, style)."""
    cells = {}
    for y in lines:
        x = 0
        for segment in widget.render_line(y):
            for character in segment.text:
                cells[x, y] = (character, segment.style)
                x += 1
    return cells


def regions_asked(widget) -> list:
    """From now on, every region ``widget`` asks to repaint (``None``: the whole widget)."""
    asked: list = []
    own = widget.refresh

    def refresh(*regions, **kwargs):
        asked.extend(regions or [None])
        return own(*regions, **kwargs)

    widget.refresh = refresh
    return asked
