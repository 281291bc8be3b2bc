"""Sparklines: the text function, the GPU bars' used-memory trend, and an engine's history on the
detail line."""

from __future__ import annotations

import dataclasses
import itertools

from hypothesis import given, settings, strategies as st

from tui_support import FIXED, ScriptedSource, demo_snapshot, make_app, wait_for
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.history import History
from vramtop.sources.demo import DemoSource
from vramtop.telemetry.demo import DemoTelemetry
from vramtop.telemetry.model import ServingHistory, VllmMetrics
from vramtop.widgets import gpu_bars
from vramtop.widgets.gpu_bars import TREND_CELLS, GpuPanel, field_widths, gpu_line, used_trend
from vramtop.widgets.process_table import ProcessTable
from vramtop.widgets.spark import BARS, serving_sparks, spark


def test_spark_scales_to_top_and_leaves_gaps_blank():
    assert spark([0, 50, 100], 3, top=100) == "▁▅█"
    assert spark([1, None, 3], 3) == "▃ █"
    assert spark([5, 5], 4, top=10) == "  ▅▅"  # fewer samples than cells: right-aligned
    assert spark([], 3) == "   " and spark([7], 0) == ""


def test_one_sample_is_no_trend_and_draws_nothing():
    assert spark([7], 4) == "    " and spark([None, 7, None], 3) == "   "  # not a full bar scaled to itself
    assert spark([7], 2, top=10) == "  "
    assert spark([None, 7, 3], 3) == " █▄"  # a second sample draws both


def test_spark_buckets_show_their_peak_and_keep_their_place_as_samples_arrive():
    # samples numbered 2..11 in buckets of 4: [2,3] [4..7] [8..11] -> peaks 1, 5, 9
    assert spark(list(range(10)), 3, per_cell=4, first=2) == "▂▅█"
    assert spark(list(range(10)), 3, top=10, per_cell=4, first=2) == "▂▅▇"
    # one more sample (number 12, value 10) opens a new bucket; the completed ones keep their height
    assert spark(list(range(11)), 3, top=10, per_cell=4, first=2) == "▅▇█"


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e6)), max_size=200), st.integers(0, 40), st.integers(1, 30))
def test_spark_is_always_as_wide_as_asked(values, cells, per_cell):
    line = spark(values, cells, per_cell=per_cell, first=3)
    assert len(line) == cells and set(line) <= set(BARS) | {" "}


def test_history_counts_every_snapshot_it_was_given():
    history = History(length=3)
    snap = demo_snapshot()
    for i in range(5):
        history.add(dataclasses.replace(snap, timestamp=FIXED + i))
    assert history.added == 5 and len(history) == 3


GPU_STATE = st.one_of(st.none(), st.just("lost"), st.integers(0, 90_000), st.just(2**70))  # absent, lost, a figure


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 60), ticks=st.lists(st.lists(GPU_STATE, min_size=4, max_size=4), max_size=150))
def test_each_gpus_trend_reads_as_the_sparkline_of_its_figures_in_the_snapshots_kept(length, ticks):
    """The bars' trend is read from each GPU's ring, its buckets' peaks kept once all their
    snapshots are in; it must draw what ``spark`` draws of the figures of the snapshots the
    history gives back, as GPUs come, go, are lost or report what no machine integer holds."""
    history, base = History(length=length), demo_snapshot()
    for n, states in enumerate(ticks):
        gpus = tuple(g if state is None or state == "lost" else dataclasses.replace(g, used_mib=state)
                     for g, state in zip(base.gpus, states))
        gpus = tuple(dataclasses.replace(g, lost=True) if state == "lost" else g
                     for g, state in zip(gpus, states) if state is not None or g.index == 0)
        history.add(dataclasses.replace(base, timestamp=FIXED + n, gpus=gpus))
        kept = history.snapshots()
        for gpu in base.gpus:
            figures = [None if (g := s.gpu(gpu.index)) is None or g.lost or not 0 <= g.used_mib < 2**63
                       else g.used_mib for s in kept]
            assert used_trend(history, gpu) == spark(figures, TREND_CELLS, top=gpu.total_mib,
                                                     per_cell=-(-length // TREND_CELLS),
                                                     first=history.added - len(history))


def test_a_gpu_filling_up_draws_a_rising_trend_in_its_bar():
    history = History(length=TREND_CELLS)  # one sample a cell
    base = demo_snapshot()
    gpu = base.gpus[1]
    for i in range(TREND_CELLS):
        used = gpu.total_mib * i // (TREND_CELLS - 1)
        g = dataclasses.replace(gpu, used_mib=used, free_mib=gpu.total_mib - used, reserved_mib=0)
        history.add(dataclasses.replace(base, timestamp=FIXED + i, gpus=(base.gpus[0], g) + base.gpus[2:]))
    trend = used_trend(history, gpu)
    assert trend[0] == BARS[0] and trend[-1] == BARS[-1] and list(trend) == sorted(trend)
    line = gpu_line(gpu, "ok", 200, field_widths(base.gpus, trend=True), trend).plain
    assert trend in line
    narrow = gpu_line(gpu, "ok", 60, field_widths(base.gpus, trend=True), trend).plain
    assert trend not in narrow and " free" in narrow  # the trend gives way before the free figure


def test_serving_sparks_need_two_scrapes_and_scale_kv_to_full():
    one = ServingHistory.of([VllmMetrics("u", kv_cache_usage=0.5, requests_waiting=1)])
    assert serving_sparks(one) == ""
    scrapes = [VllmMetrics("u", kv_cache_usage=k, requests_waiting=w, generation_tokens_per_s=g)
               for k, w, g in ((0.0, 0, None), (0.5, 2, 100.0), (1.0, 4, 300.0))]
    assert serving_sparks(ServingHistory.of(scrapes)) == "tok/s ▃█ · KV ▁▅█ · waiting ▁▅█"


async def test_the_live_view_draws_each_gpu_trend_and_the_engine_history_on_the_detail_line():
    clock = itertools.count(FIXED)
    source = DemoSource(clock=lambda: float(next(clock)))
    app = VramtopApp(source, Config(interval=0.05, telemetry_interval=0.05),
                     telemetry_poller=DemoTelemetry(clock=lambda: float(next(clock))))
    async with app.run_test(size=(200, 45)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            tel = app.snapshot.telemetry if app.snapshot else None
            if tel and all(len(t.history.kv_cache_usage) >= 3 for t in tel.instances.values()):
                break
        bars = app.query_one(GpuPanel).bars
        assert bars and all(app.query_one(GpuPanel).trend(bar).strip() for bar in bars)
        assert app.query_one(GpuPanel).border_subtitle == f"trend: used, last {app.history.length * 0.05:.0f} s"
        table = app.query_one(ProcessTable)
        table.move_cursor(row=0)
        await pilot.pause(0.1)
        assert table.highlighted_row.kind == "instance"
        assert " · KV " in app.query_one("#detail").text


def test_a_span_reads_in_the_unit_a_person_would_say():
    from vramtop.units import duration

    assert [duration(s) for s in (45, 89.4, 900, 3 * 3600, 54_000 * 60)] == ["45 s", "89 s", "15 min", "3 h", "38 d"]


def test_serving_sparks_span_every_scrape_kept_showing_each_stretchs_peak():
    scrapes = [VllmMetrics("u", kv_cache_usage=1.0 if i == 3 else 0.0) for i in range(40)]
    line = serving_sparks(ServingHistory.of(scrapes), cells=10)  # 4 scrapes a cell
    assert line == "KV " + BARS[-1] + BARS[0] * 9  # an early spike still shows


async def test_only_the_bars_in_view_draw_their_trend(monkeypatch):
    """64 GPUs in a panel of a few lines, every GPU's memory moving: a tick draws the sparklines
    of the bars on screen, not of the 64 (at a thousand GPUs the rest cost a frame's time)."""
    base = demo_snapshot()
    gpu = base.gpus[0]

    def node(tick: int):
        gpus = tuple(dataclasses.replace(gpu, index=i, uuid=f"GPU-{i}", used_mib=1_000 + i + tick)
                     for i in range(64))
        return dataclasses.replace(base, timestamp=FIXED + tick, gpus=gpus, gpu_processes=())

    drawn = []
    monkeypatch.setattr(gpu_bars, "used_trend", lambda history, g: drawn.append(g.index) or "▁▂")
    app = make_app(ScriptedSource(*(node(t) for t in range(3))), interval=0.05)
    async with app.run_test(size=(160, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.timestamp >= FIXED + 2)
        await pilot.pause()
        panel = app.query_one(GpuPanel)
        in_view = panel.scrollable_content_region.height
        assert 0 < in_view < 64 and len(panel.bars) == 64
        assert drawn and set(drawn) <= set(range(in_view))  # the bars on screen, in order from the top
        assert "▁▂" in panel.strips_of(0)[0].text
