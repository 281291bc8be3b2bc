"""Cluster mode's GPU panel: GPUs that carry a Ray node come under one title line per node."""

from __future__ import annotations

import dataclasses

from tui_support import ScriptedSource, demo_snapshot, make_app, wait_for
from vramtop.widgets.gpu_bars import GpuPanel
from vramtop.widgets.node_header import NodeHeader


def drawn(panel: GpuPanel) -> list[str | int]:
    """The panel's lines as drawn, top to bottom: a node's title, or the index a GPU's line starts with."""
    assert panel.scrollable_content_region.height >= len(panel.rows)  # every line in view
    lines = [panel.render_line(y).text.rstrip() for y in range(len(panel.rows))]
    return [int(line[:3]) if line[:3].strip().isdigit() else line for line in lines]


def _on_nodes(*nodes: str):
    snap = demo_snapshot()
    gpus = tuple(dataclasses.replace(g, node=node) for g, node in zip(snap.gpus, nodes))
    return dataclasses.replace(snap, gpus=gpus)


async def test_gpus_of_each_node_sit_under_its_title_and_a_moved_gpu_redraws_the_groups():
    source = ScriptedSource(_on_nodes("head", "head", "worker-1", "worker-1"))
    app = make_app(source)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.2)
        panel = app.query_one(GpuPanel)
        assert drawn(panel) == ["head · 2 GPUs", 0, 1, "worker-1 · 2 GPUs", 2, 3]
        title = next(seg for seg in panel.render_line(0) if seg.text.strip())
        got, text, back = (c.triplet for c in (title.style.color, panel.rich_style.color, panel.rich_style.bgcolor))
        # muted: bold, in a colour between the panel's text and its background
        assert title.style.bold and got != text and all(min(b, t) <= g <= max(b, t) for g, t, b in zip(got, text, back))
        source.items.append(_on_nodes("head", "worker-1", "worker-1", "worker-1"))
        app.sample_now()
        await pilot.pause(0.2)
        assert drawn(panel) == ["head · 1 GPU", 0, "worker-1 · 3 GPUs", 1, 2, 3]


async def test_this_machines_gpus_have_no_node_titles():
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.2)
        panel = app.query_one(GpuPanel)
        assert drawn(panel) == [0, 1, 2, 3]


class _Dashboard:
    """Answers like RayPoller.poll(): two nodes, their reporters' GPUs."""

    def poll(self):
        from vramtop.ray.model import OK, Node, RayGpu, RayState

        def gpus(*used):
            return tuple(RayGpu(i, "NVIDIA A10", f"GPU-{i}", u, 23_028, 50) for i, u in enumerate(used))

        nodes = (Node("a" * 32, "10.0.0.10", "gpu-a", True, "ALIVE", {"GPU": 2.0}, {"GPU": 2.0}, gpus(22_996, 1_000)),
                 Node("b" * 32, "10.0.0.11", "gpu-b", False, "ALIVE", {"GPU": 1.0}, {}, gpus(500)))
        return RayState("http://10.0.0.10:8265", OK, 0.0, last_success=0.0, nodes=nodes)


async def test_cluster_mode_shows_each_nodes_gpus_and_the_ray_panel_without_a_poller_of_its_own():
    from vramtop.sources.cluster import ClusterSource
    from vramtop.widgets.ray_panel import RayPanel

    app = make_app(ClusterSource(_Dashboard()))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.3)
        panel = app.query_one(GpuPanel)
        assert drawn(panel) == ["gpu-a · 2 GPUs", 0, 1, "gpu-b · 1 GPU", 2]
        assert [b.gpu.free_mib for b in panel.bars] == [32, 22_028, 22_528]
        assert app.feed.ray_poller is None and app.query_one(RayPanel)  # the state rides on the snapshots
        header = app.query_one(NodeHeader).text
        assert "CLUSTER" in header and "2 nodes with GPUs · reserved memory counted as used" in header
        bar = panel.strips_of(panel.bars[0].gpu.index)[0].text
        assert "– rsv" in bar and "22,996/23,028 MiB" in bar  # Ray's reporter folds the reserve into used


async def test_a_status_line_takes_its_line_from_the_processes_not_the_gpus_or_the_side_column():
    """Sixteen GPUs that just fit; a warning comes. It takes its line from the process pane under
    it: the GPU panel keeps its sixteen lines (no scrollbar comes, each a layout of the whole
    screen), and the header and the side column stay where they were."""
    from vramtop.app import VramtopApp
    from vramtop.config import Config
    from vramtop.telemetry.model import Telemetry, TrendWarning
    from vramtop.widgets.side_column import SideColumn
    from vramtop.widgets.status_line import StatusLine

    base = demo_snapshot()
    gpus = tuple(dataclasses.replace(base.gpus[0], index=i, uuid=f"GPU-{i}") for i in range(16))
    warnings = []

    class Growing:
        def poll(self, snapshot):
            return Telemetry(0.0, trends=tuple(warnings))

    app = VramtopApp(ScriptedSource(dataclasses.replace(base, gpus=gpus, gpu_processes=())), Config(interval=0.05),
                     telemetry_poller=Growing())
    async with app.run_test(size=(160, 42)) as pilot:
        await pilot.pause(0.3)
        panel, side, procs = app.query_one(GpuPanel), app.query_one(SideColumn), app.query_one("#procs-pane")
        assert not panel.show_vertical_scrollbar and panel.size.height == len(panel.rows) == 16
        before = side.region, procs.region
        scrollbars: list[bool] = []
        for name in ("show_vertical_scrollbar", "show_horizontal_scrollbar"):
            app.watch(panel, name, scrollbars.append, init=False)
        warnings.append(TrendWarning(10, 0, 50.0, 240.0, "pid 10 grows: GPU 0 full in about 4 min"))
        line = app.query_one(StatusLine)
        assert await wait_for(pilot, lambda: line.display and line.size.height == 1)
        await pilot.pause(0.2)
        assert panel.size.height == 16 and scrollbars == []
        assert side.region == before[0] and line.region.bottom == panel.region.y  # right above the GPUs
        assert procs.region.height == before[1].height - 1
