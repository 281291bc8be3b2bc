"""Cluster mode's GPU panel: GPUs that carry a Ray node come under one title line per node."""

from __future__ import annotations

import dataclasses

from textual.widgets import Static

from tui_support import ScriptedSource, demo_snapshot, make_app
from vramtop.widgets.gpu_bars import GpuBar, GpuPanel


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
        order = [(c.render().plain if isinstance(c, Static) else c.gpu.index) for c in panel.children
                 if isinstance(c, (Static, GpuBar))]
        assert order == ["head · 2 GPUs", 0, 1, "worker-1 · 2 GPUs", 2, 3]
        source.items.append(_on_nodes("head", "worker-1", "worker-1", "worker-1"))
        app.sample_now()
        await pilot.pause(0.2)
        titles = [c.render().plain for c in panel.children if isinstance(c, Static)]
        assert titles == ["head · 1 GPU", "worker-1 · 3 GPUs"]


async def test_this_machines_gpus_have_no_node_titles():
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(0.2)
        panel = app.query_one(GpuPanel)
        assert not [c for c in panel.children if isinstance(c, Static)]
        assert len(panel.query(GpuBar)) == 4
