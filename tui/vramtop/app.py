"""The live view: header, GPU bars, the process table grouped by serving instance, the side column.

Sampling never runs on the UI thread. The sampling thread (``job_thread``) calls
``feed.sample()`` (the feed polls Ray and the engines' telemetry on threads of its own, so a
sample never waits for them) and derives the tick (``widgets.tick``: instances, the Ray
analysis); the tick comes back as a message that a newer one replaces if the UI is behind, and
when it is taken the next sample is armed on the event loop (samples never overlap, even if a
driver call hangs). A failing sample leaves the last picture in place with one line saying why.

The app publishes each tick by setting ``tick``; panels watch it (and ``paused``, ``status``,
``whatif_memory``) from their mount on, and send messages up. The GPU bars and the process
table are still called by the app (``show_snapshot``).
"""

from __future__ import annotations

from vramtop import lean_asyncio  # noqa: F401  # first: asyncio (and Textual) without OpenSSL

import asyncio
import gc
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from rich.cells import cached_cell_len
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.content import Content
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Footer, Input, Static

from vramtop import actions, themes
from vramtop.analysis.instances import Instance
from vramtop.config import Config
from vramtop.actions import Stopper
from vramtop.history import History, save_history
from vramtop.job_thread import JobThread
from vramtop.snapshot import NodeSnapshot
from vramtop.sources.feed import Feed, Source, first_line
from vramtop.sources.replay import JumpError, ReplaySource, jump_target
from vramtop.widgets.detail_line import DetailLine
from vramtop.widgets.gpu_bars import GpuPanel
from vramtop.widgets.jump_dialog import JumpDialog
from vramtop.widgets.spark import serving_sparks
from vramtop.widgets.help_screen import HelpScreen
from vramtop.widgets.node_header import NodeHeader
from vramtop.widgets.process_rows import Row, RowMemo, RowView
from vramtop.widgets.process_table import ProcessTable
from vramtop.widgets.side_column import SideColumn
from vramtop.widgets.status_line import StatusLine
from vramtop.widgets.theme_palette import PlainThemeProvider
from vramtop.widgets.stop_dialog import StopDialog, StopOutcome
from vramtop.widgets.tick import Tick, derive, same_picture
from vramtop.widgets.whatif.persist import WhatIfMemory, load_memory

if TYPE_CHECKING:  # the what-if panel, the fit engine and the Ray panel: imported where first used
    from vramtop.widgets.whatif.panel import WhatIfChanged

DEFAULT_THEME = "vramtop-dark"
GC_THRESHOLDS = (50_000, 20, 10)  # young, middle, old: see _take
# Seconds between the full collections the sampling thread runs, for passes of up to this many ms
# (see ``_collect_cycles``).
FULL_COLLECT_S, FULL_COLLECT_MS = 60.0, 15.0


class SnapshotReady(Message):
    """A sample finished, its tick derived. While the UI is behind, a newer one queued after it
    wins (Textual drops a message whose ``can_replace`` accepts the next one in the queue)."""

    def __init__(self, tick: Tick) -> None:
        super().__init__()
        self.tick = tick

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class SampleFailed(Message):
    """``source.sample()`` raised; ``reason`` is one line. Any newer outcome supersedes it."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, (SnapshotReady, SampleFailed))


# Keys of a replay (shown in the footer only there: see ``check_action``).
REPLAY_BINDINGS = [
    Binding("less_than_sign", "replay('back')", "Back", key_display="<"),
    Binding("greater_than_sign", "replay('forward')", "Next", key_display=">"),
    Binding("left_square_bracket", "replay('slower')", "Slower", show=False, key_display="["),
    Binding("right_square_bracket", "replay('faster')", "Faster (1× to 60×)", show=False, key_display="]"),
    Binding("g", "jump", "Jump"),
]


class VramtopApp(App[None]):
    """``VramtopApp(feed, config).run()``; a bare source (and optional pollers) is opened as a
    feed of its own: ``VramtopApp(source, config, ray_poller=None, telemetry_poller=None)``."""

    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "vramtop"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-medium"), (150, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("p", "pause", "Pause"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("t", "toggle_grouping", "Instances / flat list", show=False),
        Binding("1", "toggle_panel('gpus')", "Show/hide the GPU bars", show=False),
        Binding("2", "toggle_panel('procs')", "Show/hide the process table", show=False),
        Binding("3", "toggle_panel('side')", "Show/hide the side column", show=False),
        Binding("k", "stop", "Stop", show=False),
        Binding("w", "whatif", "What if"),
        Binding("ctrl+s", "screenshot", "Save an SVG screenshot", show=False),
        Binding("ctrl+r", "dump_history", "Save the last minutes as a recording", show=False),
        Binding("r", "report", "Write a report of what is shown (Markdown)", show=False),
        Binding("R", "show_ray", "Ray panel", show=False),
        *REPLAY_BINDINGS,
    ]

    # What the panels watch (attributes down): the newest tick, whether sampling is paused, the
    # one-line problems, and the what-if panel's form and pins (the side column judges them).
    tick: var[Tick | None] = var(None)
    paused: var[bool] = var(False)
    status: var[tuple[str, ...]] = var(())
    whatif_memory: var[WhatIfMemory] = var(WhatIfMemory, always_update=True)

    def __init__(self, source: Source | Feed, config: Config | None = None, ray_poller: Any = None,
                 telemetry_poller: Any = None, readonly: bool = False, exporter: Any = None) -> None:
        super().__init__()
        self.config = config or Config()
        self.feed = source if isinstance(source, Feed) else Feed(
            source, ray_poller, telemetry_poller, self.config.ray_interval, self.config.telemetry_interval)
        self.exporter = exporter  # ``.publish(snapshot)``: the --export endpoint's holder
        self.readonly = readonly  # no signals and no files written: see ``refuse_in_readonly``
        self.stopper = Stopper(readonly=readonly)
        self._derived: Tick | None = None  # the sampling thread's last tick (it reuses what did not move)
        self._row_memo = RowMemo()  # the worker's last process rows, for its next build
        self._next_collect = time.monotonic() + FULL_COLLECT_S  # the sampling thread's next full collection
        self.history = History()  # the last minutes, for ctrl+r (dump to a recording)
        self.snapshot: NodeSnapshot | None = None  # the last good sample
        self.sample_error: str | None = None
        self._sampler: JobThread | None = None  # the thread samples run on, from mount to unmount
        self._timer: asyncio.TimerHandle | None = None  # the next sample, armed when one is shown
        self._notes: list[str] = []  # lasting one-line problems (a theme file, an unknown theme)
        self._side_forced: bool | None = None  # the user's choice; None: the layout decides
        self._hidden: set[str] = set()
        loaded, errors = themes.load_themes()
        for theme in loaded.values():
            self.register_theme(theme)
        self._notes += [str(e) for e in errors]
        wanted = self.config.theme
        if wanted not in self.available_themes:
            self._notes.append(f"theme '{wanted}' not found; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = wanted

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NodeHeader(id="header")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield StatusLine(id="status")
                yield GpuPanel(self.config.thresholds, self.history, self.config.interval, id="gpus")
                with Vertical(id="procs-pane"):
                    yield Input(placeholder="filter: pid, user, role, instance, command",
                                id="filter", compact=True)
                    yield ProcessTable(id="procs")
                    yield DetailLine(id="detail")
            yield SideColumn(self._ray_panel(), id="side")
        yield Footer(compact=True)

    @property
    def replaying(self) -> bool:
        return isinstance(self.source, ReplaySource)

    @property
    def source(self) -> Source:
        """The feed's source (a replay's controls act on it)."""
        return self.feed.source

    @property
    def instances(self) -> tuple[Instance, ...]:
        """The serving instances of the tick on screen."""
        return self.tick.instances if self.tick is not None else ()

    def _replay_position(self) -> str | None:
        return self.source.status() if self.replaying else None

    def _ray_panel(self) -> Widget:
        if not self.feed.carries_ray:
            return Static("Ray: not polled", id="ray-placeholder", classes="placeholder")
        from vramtop.widgets.ray_panel import RayPanel

        return RayPanel(id="ray-panel")

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this terminal; on POSIX, one whose input thread sleeps until a
        key comes (``widgets/quiet_driver.py``)."""
        driver = super().get_driver_class()
        if (driver.__module__, driver.__name__) == ("textual.drivers.linux_driver", "LinuxDriver"):
            from vramtop.widgets.quiet_driver import QuietDriver

            return QuietDriver
        return driver

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return themes.variable_defaults(self.current_theme)

    def on_mount(self) -> None:
        from vramtop.widgets import lean_chops, lean_sgr, lean_strips, lean_styles, lean_updates

        lean_strips.install()  # before any line is drawn: lines on screen keep no copy Textual need not make
        lean_updates.install()  # a repaint of part of a line writes that part, not the line from its start
        lean_sgr.install()  # a line says each style by what changes from the segment before
        lean_chops.install()  # a repaint asks the widgets only for the lines it writes
        lean_styles.install()  # a content line is put between its borders in one step
        self.whatif_memory = load_memory()[0]  # a bad file is said in the panel when it opens
        self.feed.start()
        self._sampler = JobThread("sampler", self._sample, self.post_message)
        self.query_one("#filter").display = False
        self.query_one("#detail").display = False
        self.query_one(ProcessTable).focus()
        self._show_status()
        self.call_after_refresh(self.sample_now)  # the first sample once the screen is laid out

    def _screen_classes(self) -> None:
        screen = self.screen_stack[0]  # the main view, even under the help screen
        for panel in ("gpus", "procs"):
            screen.set_class(panel in self._hidden, f"-no-{panel}")
        screen.set_class(self._side_forced is False, "-no-side")
        screen.set_class(self._side_forced is True, "-side")

    # -- sampling --------------------------------------------------------------------------

    @property
    def sampling(self) -> bool:
        """A sample is asked for or under way."""
        return self._sampler is not None and self._sampler.busy

    def sample_now(self) -> None:
        """Start a sample unless one is running; the next is armed when it has been shown."""
        self._disarm()
        if not self.screen_stack or self._sampler is None:  # shutting down, or not mounted yet
            return
        self._sampler.start(self.screen_stack[0].query_one(ProcessTable).view)

    def _disarm(self) -> None:
        """Forget the next sample armed, if any."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        """The next sample, ``interval`` s from now, unless paused or shutting down."""
        if not self.paused and self.is_running:
            # A plain loop timer: Textual's set_timer wraps its callback in a new partial each
            # time, and the first call of each costs an inspect.signature() (a tenth of the UI
            # thread's CPU a tick on a node at rest).
            self._disarm()
            self._timer = asyncio.get_running_loop().call_later(self.config.interval, self._next_sample)

    def _next_sample(self) -> None:
        self._timer = None
        if not self.is_running:  # shutting down, its widgets going: as Textual's timers, no call
            return
        try:
            self.sample_now()
        except Exception as error:  # as a Textual timer's callback would: shown, and the app ends
            self._handle_exception(error)

    def on_unmount(self) -> None:
        self._disarm()
        if self._sampler is not None:
            self._sampler.stop()
        self.feed.stop()

    def _sample(self, view: RowView) -> Message:
        """On the sampling thread: sample, then derive the tick, with the process table's rows
        for ``view`` (the table's when the sample began: a view changed since is built by the
        table itself). Any failure is one line in place, never a crash."""
        try:
            snapshot = self.feed.sample()
            self._derived = derive(snapshot, self._derived, view, self._row_memo)
        except Exception as exc:
            return SampleFailed(first_line(exc))
        self._collect_cycles()
        return SnapshotReady(self._derived)

    def _collect_cycles(self) -> None:
        """Once start-up is frozen, a full collection here, between samples, every
        ``FULL_COLLECT_S`` or, where one takes over ``FULL_COLLECT_MS``, as much longer as it took:
        the pass holds the interpreter, and a cluster's snapshots in the history make one 30-100
        ms. Each layout leaves Textual's last widget map in reference cycles (a recursive
        closure holds it: some 120 objects a layout); a map in use at a young pass outlives it,
        so most reach the oldest generation, and at ``GC_THRESHOLDS`` a full pass came about once
        an hour on a node at 0.2 s: RSS climbed for 45 minutes (bench/soak_rss.py). A full pass
        walks what was made since start-up only: 4-5 ms at 8 GPUs x 64 processes, 10-12 at 16 x
        1,000."""
        now = time.monotonic()
        if now >= self._next_collect and gc.get_freeze_count():  # the count walks every frozen object
            began = time.perf_counter()
            gc.collect()
            took_ms = (time.perf_counter() - began) * 1000
            self._next_collect = now + FULL_COLLECT_S * max(1.0, took_ms / FULL_COLLECT_MS)

    async def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if self.paused or not self.is_running:  # not running: shutting down, its widgets going
            return
        self._arm()
        try:
            await self._take(message.tick)
        except NoMatches:
            if self.is_running:
                raise
            # the app began to shut down while the tick was being shown: its widgets are going

    async def _take(self, tick: Tick) -> None:
        # Rich keeps the cell width of the last 4,096 strings it measured, and Textual measures
        # every line it crops for the screen. A live view's rows and figures are new strings each
        # tick, so the cache held 4,096 texts no line shows any more: 1.3 MiB of RSS at 8 GPUs x
        # 64 processes (bench/soak_rss.py). Each tick starts it afresh; a string measured twice
        # is measured within one tick, and a miss on a string of one-cell characters is its length.
        cached_cell_len.cache_clear()
        self.sample_error = None
        snapshot = tick.snapshot
        latest = self.history.latest
        if not self.replaying or latest is None or snapshot.timestamp > latest.timestamp:
            self.history.add(snapshot)  # (a paused or rewound replay shows snapshots it already has)
        if self.exporter is not None:  # only stores it: a scrape builds the metrics in its own thread
            self.exporter.publish(snapshot)
        first = self.snapshot is None
        await self.show_snapshot(snapshot, tick)
        if first and not gc.get_freeze_count():
            # Start-up's objects (modules, widgets, the catalog) live on: frozen, once a process, no
            # full collection walks them again, on whichever thread it runs (bench/bench_gc.py).
            # Start-up's garbage in cycles is collected first: frozen, it would never be.
            gc.collect()
            gc.freeze()
            # A tick allocates tens of thousands of objects that die with it (rows, strips,
            # segments) and keeps some (the history): at the default 700 allocations the young
            # collections ran 25 times a tick and walked the survivors again and again (a tenth of
            # a cluster tick). Refcounting frees what is not in a cycle at once either way.
            gc.set_threshold(*GC_THRESHOLDS)

    async def on_sample_failed(self, message: SampleFailed) -> None:
        if self.paused or not self.is_running:
            return
        self._arm()
        when = ""
        if self.snapshot is not None:
            when = time.strftime("; showing the picture of %H:%M:%S", time.localtime(self.snapshot.timestamp))
        self.sample_error = f"sample failed: {message.reason}{when}"
        self._show_status()
        if self.snapshot is not None and not self.replaying:  # the last figures stay, greyed and aged
            last = self.snapshot
            aged = replace(last, timestamp=time.time(), gpus=tuple(
                g if g.lost or g.stale_since is not None else replace(g, stale_since=last.timestamp)
                for g in last.gpus))
            if self.tick is not None:  # the GPU bars grey and age their figures
                self.tick = replace(self.tick, snapshot=aged, at_rest=True)

    async def show_snapshot(self, snapshot: NodeSnapshot, tick: Tick | None = None) -> None:
        """Show ``snapshot`` (its ``tick`` derived in the worker; here when not given), then
        publish the tick to the panels. A node at rest (the same GPUs, processes, errors and
        slower sources as last time) only moves the clock-bound parts: the header, the status
        line and the sparklines."""
        at_rest = self.snapshot is not None and same_picture(self.snapshot, snapshot)
        tick = replace(tick or derive(snapshot, self.tick), at_rest=at_rest, where=self._replay_position())
        self.snapshot = snapshot
        with self.batch_update():
            self.tick = tick  # every panel, the GPU bars and the process table take it from here
            self._show_status()
            if not at_rest:  # telemetry changes the detail line without a row change
                self._show_detail(self.query_one(ProcessTable).highlighted_row)

    def on_what_if_changed(self, message: WhatIfChanged) -> None:
        self.whatif_memory = message.memory

    def _show_status(self) -> None:
        lines = [self.sample_error] if self.sample_error else []
        if self.snapshot is not None:
            lines += [f"{e.source}: {e.message}" for e in self.snapshot.errors]
            if (tel := self.snapshot.telemetry) is not None:
                lines += list(tel.notices) + [t.message for t in tel.trends]
        self.status = tuple(lines + self._notes)

    # -- the detail line and the filter -----------------------------------------------------

    def on_process_table_highlighted(self, message: ProcessTable.Highlighted) -> None:
        if self.is_running:  # not once the app shuts down: the detail line may be gone already
            self._show_detail(message.row)

    def _show_detail(self, row: Row | None) -> None:
        detail = self.query_one("#detail", DetailLine)
        detail.display = row is not None
        if row is not None:
            detail.show(self._detail(row))

    def _detail(self, row: Row) -> str:
        text = row.detail
        telemetry = self.snapshot.telemetry if self.snapshot else None
        if row.kind == "instance" and telemetry is not None and row.instance_key:
            found = telemetry.for_instance(row.instance_key)
            if found is not None and found.summary:
                text += f" · {found.summary}"
            if found is not None and found.kv_check is not None:
                text += f" · {found.kv_check.text}"
            if found is not None and (sparks := serving_sparks(found.history)):
                text += f" · {sparks}"
        return text

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        table = self.query_one(ProcessTable)
        table.set_view(filter_text=event.value)
        self._title_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(ProcessTable).focus()

    def _title_table(self) -> None:
        table = self.query_one(ProcessTable)
        shown = table.view.filter_text.strip()
        table.border_title = Content(f"Processes · filter: {shown}" if shown else "Processes")  # typed: plain

    def on_key(self, event) -> None:
        if event.key == "escape" and self.focused is self.query_one("#filter"):
            self._clear_filter()
            event.stop()

    def _clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.query_one(ProcessTable).focus()

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen([
            ("Everywhere", [b for b in self.BINDINGS if b not in REPLAY_BINDINGS]
             + [Binding("tab", "", "Next panel"), Binding("ctrl+p", "", "Command palette")]),
            ("Replay (vramtop --replay FILE)", [Binding("p", "", "Pause / play the recording"), *REPLAY_BINDINGS]),
            ("Process table", ProcessTable.BINDINGS + [Binding("up,down,home,end", "", "Move the cursor")]),
            ("Filter box", [Binding("enter", "", "Keep the filter, back to the table"),
                            Binding("escape", "", "Clear the filter")]),
        ]))

    def action_pause(self) -> None:
        if self.replaying:  # the recording's own clock stops, so play resumes where it paused
            self.source.toggle_pause()
            self.sample_now()
            return
        self.paused = not self.paused
        if self.paused:
            self._disarm()
        else:
            self.sample_now()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification is plain text: its lines carry process titles, paths and typed
        text, which Textual reads as markup by default (a process titled ``[/x]`` raised)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def refuse_in_readonly(self, what: str) -> bool:
        """In read-only mode, say in one line that ``what`` is turned off and return True."""
        if self.readonly:
            self.notify(f"read-only mode (--readonly): {what} is turned off", severity="warning")
        return self.readonly

    def action_dump_history(self) -> None:
        if self.refuse_in_readonly("saving a recording"):
            return
        self.notify(save_history(self.history, interval=self.config.interval))

    def action_report(self) -> None:
        """The report ``vramtop report`` writes, of the picture on screen, judging the what-if
        panel's candidate and pins."""
        if self.refuse_in_readonly("writing a report"):
            return
        if self.snapshot is None:
            self.notify("nothing to report yet: no snapshot taken")
            return
        from vramtop.fit import remote
        from vramtop.report.save import save_report
        from vramtop.widgets.whatif.assess import report_candidates

        label = self.source.label if self.replaying else None
        memory = self.whatif_memory  # the open panel's form and pins, or what it remembers from its last use
        forms = ([memory.current] if memory.current else []) + list(memory.pins)
        with remote.cache_only():  # the report is written on the UI thread: cached model facts only
            candidates = report_candidates(forms)
        self.notify(save_report(self.snapshot, candidates, lang=self.config.report_lang, label=label))

    def action_replay(self, control: str) -> None:
        """Replay controls (``check_action`` keeps them out of a live view)."""
        source: ReplaySource = self.source
        {"back": lambda: source.step(-1), "forward": lambda: source.step(1),
         "slower": source.slower, "faster": source.faster}[control]()
        self.sample_now()  # the screen moves at once

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The replay keys exist (and show in the footer) only in a replay."""
        if action in ("replay", "jump") and not self.replaying:
            return False
        return True

    def action_jump(self) -> None:
        """Ask where to go in the recording ("would it have fitted at 14:02?")."""
        source: ReplaySource = self.source
        where = time.strftime("%H:%M:%S", time.localtime(source.position))

        def go(text: str | None) -> None:
            if not text:
                return
            try:
                source.jump_to(jump_target(text, source.start, source.position))
            except JumpError as exc:
                self.notify(str(exc), severity="error")
                return
            self.sample_now()

        self.push_screen(JumpDialog(where), go)

    def action_screenshot(self) -> None:
        """An SVG of the screen as it is, in the current folder: for a ticket or a chat."""
        if self.refuse_in_readonly("saving a screenshot"):
            return
        try:
            path = self.save_screenshot()
        except OSError as exc:
            self.notify(f"screenshot not saved: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"screenshot saved: {path}")

    def action_whatif(self) -> None:
        """Open or close the what-if panel (beside the live view when wide, a screen of its own
        when narrow): would a candidate model fit on this node now?"""
        from vramtop.widgets.whatif.panel import WhatIfPanel, WhatIfScreen, side_column

        panels = [panel for screen in self.screen_stack for panel in screen.query(WhatIfPanel)]
        for panel in panels:
            panel.action_close()
        if panels:
            return
        side = side_column(self)
        if side is not None and self.screen is self.screen_stack[0]:
            side.mount(WhatIfPanel(docked=True))
        else:
            self.push_screen(WhatIfScreen(WhatIfPanel()))

    def action_stop(self) -> None:
        """Stop the highlighted process, or the whole instance on an instance row."""
        row = self.query_one(ProcessTable).highlighted_row
        if self.snapshot is None or row is None:
            return
        if row.kind == "instance":
            inst = next((i for i in self.instances if i.key == row.instance_key), None)
            if inst is None:
                return
            plan = actions.plan_for_instance(self.snapshot, inst)
        elif row.pid is not None:
            plan = actions.plan_for_process(self.snapshot, row.pid)
        else:
            return
        self.push_screen(StopDialog(plan, self.stopper), self._stopped)

    def _stopped(self, outcome: StopOutcome | None) -> None:
        if outcome is not None:
            self.notify(outcome.message, severity="error" if outcome.action == "failed" else "information")
            self.sample_now()

    def action_filter(self) -> None:
        if "procs" in self._hidden:
            self.action_toggle_panel("procs")
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_sort(self) -> None:
        self.query_one(ProcessTable).cycle_sort()

    def action_reverse_sort(self) -> None:
        self.query_one(ProcessTable).reverse_sort()

    def action_toggle_grouping(self) -> None:
        self.query_one(ProcessTable).toggle_grouping()

    def action_toggle_panel(self, panel: str) -> None:
        if panel == "side":
            self._side_forced = not self.query_one("#side").display
        else:
            self._hidden.symmetric_difference_update({panel})
        self._screen_classes()

    def action_show_ray(self) -> None:
        # Where the column shows already (150+ columns), a screen class set anyway would only
        # restyle every widget of the screen (thousands on a cluster).
        if not self.query_one("#side").display:
            self._side_forced = True
            self._screen_classes()
        for table in self.query("#side DataTable"):
            table.focus()

    def search_themes(self) -> None:
        """The theme switcher, with names as plain text (Textual's reads them as markup, and a
        theme file's name is anyone's text)."""
        self.push_screen(CommandPalette(providers=[PlainThemeProvider], placeholder="Search for themes…"))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":  # Textual's writes to a file past read-only mode
                yield command
        yield SystemCommand("Screenshot", "Save an SVG screenshot in the current folder (ctrl+s)",
                            self.action_screenshot)
        yield SystemCommand("Pause / resume sampling", "Freeze the picture (p)", self.action_pause)
        yield SystemCommand("Filter processes", "Type to keep matching rows (/)", self.action_filter)
        yield SystemCommand("Sort by the next column", "Cycle the sort column (s)", self.action_sort)
        yield SystemCommand("Reverse the sort", "Flip the sort order (S)", self.action_reverse_sort)
        yield SystemCommand("Group by instance / flat list", "Toggle the instance tree (t)",
                            self.action_toggle_grouping)
        yield SystemCommand("Show / hide the GPU bars", "Panel 1", lambda: self.action_toggle_panel("gpus"))
        yield SystemCommand("Show / hide the process table", "Panel 2", lambda: self.action_toggle_panel("procs"))
        yield SystemCommand("Show / hide the side column", "Panel 3", lambda: self.action_toggle_panel("side"))
        yield SystemCommand("Open the Ray panel", "Show the side column (R)", self.action_show_ray)
        yield SystemCommand("Stop the highlighted process or instance", "SIGTERM after a confirmation (k)",
                            self.action_stop)
        yield SystemCommand("What if…", "Would a candidate model fit on this node now? (w)", self.action_whatif)
        yield SystemCommand("Keys", "Every key, by panel (?)", self.action_help)

