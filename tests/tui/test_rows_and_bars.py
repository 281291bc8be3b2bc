"""The pure parts of the view: row building, column widths, bar segments."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tui_support import demo_snapshot, hidden_process, visible_process
from vramtop.analysis.instances import group_instances
from vramtop.widgets.gpu_bars import field_widths, gpu_line, split_cells
from vramtop.widgets.process_rows import PADDING, RowMemo, RowView, build_rows, columns_for_width, gpu_ranges


def test_gpu_ranges():
    assert gpu_ranges([3, 0, 1, 2, 6]) == "0-3,6"
    assert gpu_ranges([0, 1]) == "0,1"
    assert gpu_ranges([5]) == "5"
    assert gpu_ranges([]) == ""


@given(st.integers(0, 200), st.lists(st.integers(0, 100_000), min_size=3, max_size=3))
def test_split_cells_fills_the_bar_and_keeps_small_parts_visible(width, parts):
    cells = split_cells(width, parts)
    if sum(parts) == 0 or width == 0:
        assert cells == [0, 0, 0]
        return
    assert sum(cells) == width
    if width >= 3:
        assert all(c >= 1 for c, p in zip(cells, parts) if p > 0)


@given(st.integers(40, 400))
def test_columns_always_fit_the_table(width):
    layout = columns_for_width(width)
    used = sum(w + PADDING for _, w in layout)
    assert used <= width - 1  # one cell for the scrollbar
    assert {"gpu", "pid", "vram"} <= {k for k, _ in layout}


def test_bars_of_one_node_line_up_at_every_width():
    snap = demo_snapshot()
    widths = field_widths(snap.gpus)
    for width in (38, 60, 78, 98, 158):
        lines = [gpu_line(g, "ok", width, widths).plain for g in snap.gpus]
        assert all(len(line) <= width for line in lines)
        assert len({line.index(" free") for line in lines}) == 1  # bars end in the same column


def test_every_process_appears_once_and_instances_stay_whole():
    base = demo_snapshot()
    snap = demo_snapshot(gpu_processes=base.gpu_processes + (
        hidden_process(70_000, 1, 100), visible_process(70_001, 2, 300, "python train.py"),
    ))
    instances = group_instances(snap)
    rows = build_rows(snap, instances, RowView(sort_column="pid", reverse=False))
    process_keys = [r.key for r in rows if r.kind == "process"]
    assert len(process_keys) == len(set(process_keys)) == len(snap.gpu_processes)
    header = next(i for i, r in enumerate(rows) if r.kind == "instance")
    members = [r for r in rows[header + 1:] if r.instance_key == rows[header].instance_key]
    assert len(members) == 9 and list(rows[header + 1: header + 10]) == members


def test_filter_on_the_instance_name_keeps_all_its_members_and_folding_hides_them():
    snap = demo_snapshot()
    instances = group_instances(snap)
    rows = build_rows(snap, instances, RowView(filter_text="MEDGEMMA"))
    assert len(rows) == 10
    key = instances[0].key
    folded = build_rows(snap, instances, RowView(collapsed=frozenset({key})))
    assert [r.kind for r in folded] == ["instance"] and folded[0].cells["role"].startswith("▸")
    flat = build_rows(snap, instances, RowView(grouped=False))
    assert all(r.kind == "process" for r in flat) and len(flat) == 9


def test_a_build_reuses_the_rows_of_processes_that_did_not_move():
    import dataclasses

    base = demo_snapshot(gpu_processes=demo_snapshot().gpu_processes + (visible_process(70_001, 2, 300, "python t.py"),))
    instances = group_instances(base)
    memo = RowMemo()
    first = {r.key: r for r in build_rows(base, instances, RowView(grouped=False), memo)}
    moved = dataclasses.replace(base.gpu_processes[-1], used_mib=301)
    snap = dataclasses.replace(base, gpu_processes=base.gpu_processes[:-1] + (moved,))
    again = build_rows(snap, instances, RowView(grouped=False), memo)
    assert again == build_rows(snap, instances, RowView(grouped=False))  # the same rows as a build from nothing
    kept = [r.key for r in again if r is first[r.key]]
    assert sorted(kept) == sorted(k for k in first if k != "p:70001:2")  # all but the moved one's
    assert next(r for r in again if r.key == "p:70001:2").cells["vram"] == "301"


def test_rows_made_again_from_kept_rows_are_those_a_build_from_nothing_makes():
    """Memory moving alone (every process, a hidden one and an instance's members too) is made from
    the kept rows; CPU, a telemetry fact and grouping moving with it are made from scratch."""
    import dataclasses

    from vramtop.telemetry.model import Telemetry

    base = demo_snapshot()
    base = dataclasses.replace(base, gpu_processes=base.gpu_processes + (
        visible_process(70_001, 2, 300, "python t.py"), hidden_process(70_002, 3, 500)))

    def moved(snap, by: int, **host_changes):
        return dataclasses.replace(snap, gpu_processes=tuple(
            dataclasses.replace(p, used_mib=p.used_mib + by,
                                host=dataclasses.replace(p.host, **host_changes) if p.host and host_changes else p.host)
            for p in snap.gpu_processes))

    steps = [moved(base, 1), moved(base, 2)]
    steps.append(moved(steps[-1], 3, cpu_pct=42.0))
    steps.append(dataclasses.replace(moved(steps[-1], 4), telemetry=Telemetry(0.0, phases={70_001: "memory growing 9 MiB/s"})))
    memo = RowMemo()
    for view in (RowView(), RowView(grouped=False), RowView()):
        for snap in [base, *steps]:
            instances = group_instances(snap)
            built = build_rows(snap, instances, view, memo)
            assert built == build_rows(snap, instances, view)
    assert "memory growing 9 MiB/s" in next(r for r in built if r.key == "p:70001:2").detail
    assert " 509 MiB" in next(r for r in built if r.key == "p:70002:3").detail


async def test_cpu_and_rss_alone_are_shown_every_few_seconds_and_other_changes_at_once():
    import dataclasses

    from tui_support import ScriptedSource, make_app
    from vramtop.widgets.process_table import VOLATILE_EVERY_S, ProcessTable

    base = demo_snapshot()

    def at(t: float, cpu: float, vram: int = 20_730):
        procs = tuple(dataclasses.replace(p, used_mib=vram if p.pid == 4101 else p.used_mib,
                                          host=dataclasses.replace(p.host, cpu_pct=cpu) if p.pid == 4101 else p.host)
                      for p in base.gpu_processes)
        return dataclasses.replace(base, timestamp=base.timestamp + t, gpu_processes=procs)

    source = ScriptedSource(at(0, 10.0))
    app = make_app(source)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.2)
        table = app.query_one(ProcessTable)

        def cpu_shown():
            return table.cell("p:4101:0", "cpu")

        async def tick(snapshot):
            source.items.append(snapshot)
            app.sample_now()
            await pilot.pause(0.2)

        assert cpu_shown() == "10.0"
        await tick(at(1, 55.0))
        assert cpu_shown() == "10.0"  # CPU alone moved: held
        await tick(at(1 + VOLATILE_EVERY_S, 60.0))
        assert cpu_shown() == "60.0"  # its time came
        await tick(at(2 + VOLATILE_EVERY_S, 70.0, vram=21_000))
        assert cpu_shown() == "70.0"  # memory moved too: everything shows at once
