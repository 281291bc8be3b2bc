"""The what-if panel: pick a model and a config, and watch the fit engine's verdict on the live node.

A view only: ``assess`` judges the form (``form``) and returns what to show; this module shows
the form, marks bad values in place, and redraws the verdict on every keystroke and every new
snapshot. It holds no memory arithmetic.

Data comes down and goes up as everywhere in the app: on mount the panel watches the app's
``tick`` (each new snapshot, see ``widgets.tick``), and it posts ``WhatIfChanged`` (its form and
what it remembers, as of now) when the form or the pins change, or it closes. The app opens it
with ``w``: on wide terminals (``NARROW_COLUMNS`` or more) in the side column (``#side``), beside
the live view, which keeps its width; on narrower ones as a screen of its own (``WhatIfScreen``);
it moves when the terminal is resized. ``escape`` (or ``w`` outside a text field) closes it.

Keys inside: tab / shift+tab between fields, up/down/enter in the model list, ``+`` pins the
candidate, ``=`` applies the first suggestion and ``1``–``9`` the n-th (outside text fields, or
from the suggestion list), ``delete`` unpins the highlighted pin, ``enter`` on a pin loads it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from vramtop.analysis.instances import instances_of
from vramtop.snapshot import NodeSnapshot
from vramtop.fit import remote
from vramtop.fit.placement import device_order
from vramtop.fit.specs import SpecError
from vramtop.fit.verdict import GREEN, INVALID, RED, YELLOW, FitResult
from vramtop.fit.fields import ModelChoice, list_models
from vramtop.widgets.tick import Tick
from vramtop.widgets.whatif import assess as judge
from vramtop.widgets.whatif import form as wf
from vramtop.widgets.whatif.bars import NeedBars
from vramtop.widgets.whatif.form import FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, load_memory, save_memory

NARROW_COLUMNS = 150  # below this the panel is a screen of its own
_RECENT = "recent:"  # option ids of the last candidates in the model list
_COMMAND_CHARS = "+="  # never typed into a field: the panel's pin and apply keys
REMOTE_PAUSE_S = 0.5  # this long a pause in typing looks a model up on the Hub / Ollama library
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_TEXT_FIELDS = ("tensor_parallel_size", "gpus", "gpu_memory_utilization", "max_model_len", "dtype",
                "quantization", "kv_cache_dtype", "max_num_seqs", "num_ctx", "num_parallel", "replicas")


def _show(widget: Widget, visible: bool) -> None:
    if widget.display != visible:
        widget.display = visible


class FieldInput(Input):
    """A form field that leaves ``+`` and ``=`` to the panel, so pinning works while typing, and
    tells the panel of a new value at once (``on_value``), not through a message: the verdict
    is then redrawn in the same frame as the typed character, not in a second one."""

    def __init__(self, value: str, *, on_value: Callable[[str, str], None], field: str, **kwargs) -> None:
        self._on_value = on_value  # before Input's own __init__, which already sets the value
        self._field = field
        super().__init__(value, **kwargs)

    def watch_value(self, value: str) -> None:
        self._on_value(self._field, value)

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if character is not None and character in _COMMAND_CHARS:
            return False
        return super().check_consume_key(key, character)


class WhatIfPanel(Vertical):
    """The form, the live verdict of the current candidate, and the pinned candidates' verdicts."""

    DEFAULT_CSS = """
    WhatIfPanel { width: 1fr; height: 1fr; background: $surface; padding: 0 1; }
    WhatIfPanel #wi-body { height: 1fr; scrollbar-size-vertical: 1; }
    WhatIfPanel.-docked { padding: 0; }
    WhatIfPanel .wi-title { text-style: bold; color: $primary; }
    WhatIfPanel .wi-section { text-style: bold; margin-top: 1; color: $text-muted; }
    WhatIfPanel .wi-row { height: 1; }
    WhatIfPanel .wi-label { width: 16; color: $text-muted; }
    WhatIfPanel .wi-row > Input, WhatIfPanel .wi-row > Select { width: 1fr; }
    WhatIfPanel Input.-invalid { color: $error; text-style: bold; }
    WhatIfPanel .wi-error { color: $error; padding-left: 16; height: auto; }
    WhatIfPanel #wi-model-source { padding-left: 16; height: auto; }
    WhatIfPanel #wi-model-source.-failed { color: $warning; }
    WhatIfPanel #wi-matches { height: auto; max-height: 8; margin-left: 16; }
    WhatIfPanel #f-stopped { height: auto; max-height: 6; }
    WhatIfPanel #wi-headline { text-style: bold; padding: 0 1; height: 2; margin-bottom: 1; }
    WhatIfPanel #wi-headline.-green { background: $success 30%; }
    WhatIfPanel #wi-headline.-yellow { background: $warning 30%; }
    WhatIfPanel #wi-headline.-red { background: $error 30%; }
    WhatIfPanel #wi-headline.-invalid { background: $panel; }
    WhatIfPanel #wi-reasons { height: auto; }
    WhatIfPanel #wi-budget { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    WhatIfPanel #wi-suggestions, WhatIfPanel #wi-pins { height: auto; max-height: 10; }
    WhatIfPanel #wi-note { color: $warning; height: auto; }
    WhatIfPanel .wi-quiet { color: $text-muted; }
    """

    BINDINGS = [
        Binding("plus,+", "pin", "Pin", priority=True),
        Binding("equals_sign,=", "apply_suggestion(0)", "Apply suggestion", priority=True),
        Binding("escape", "close", "Close"),
        Binding("ctrl+y", "copy_launch", "Copy launch line", priority=True),
        Binding("w", "close", "Close", show=False),
        *[Binding(str(n), f"apply_suggestion({n - 1})", show=False) for n in range(1, 10)],
    ]

    def __init__(
        self,
        snapshot: NodeSnapshot | None = None,
        *,
        state_path: Path | None = None,
        models: Callable[[], tuple[ModelChoice, ...]] | None = None,
        docked: bool = False,
        memory: WhatIfMemory | None = None,
        id: str | None = "whatif-panel",
    ) -> None:
        super().__init__(id=id, classes="-docked" if docked else "")
        self._snapshot = snapshot
        self._state_path = state_path
        self._list_models = models or _known_models
        # ``memory``: what a panel being moved already holds; else read from the state file
        memory, warning = (memory, None) if memory is not None else load_memory(state_path)
        self._memory: WhatIfMemory = memory
        self._notes: list[str] = [warning] if warning else []
        self.form: FormState = memory.current or FormState()
        self._models: tuple[ModelChoice, ...] | None = None
        self._instance_options: tuple[tuple[str, str], ...] | None = None  # None: not shown yet
        self.result: FitResult | None = None  # the current form's verdict
        self.pin_results: tuple[FitResult, ...] = ()
        self._syncing = False  # set while the panel writes into its own fields
        self._ready = False  # the fields exist (set in on_mount)
        self._fields: dict[str, Input] = {}
        self._boxes: dict[str, Static] = {}
        self._shown: dict[str | None, tuple[str, int, int]] = {}  # box id -> (text, width, lines)
        self._suggestion_texts: list[str] = []
        self._remote_timer: Timer | None = None  # the pause after the last key in the model field
        self._resolving: str | None = None  # the remote model name a worker is resolving
        self._spinner: Timer | None = None
        self._source_text = ""

    @property
    def memory(self) -> WhatIfMemory:
        """What the panel remembers (pins, recent candidates), as of now."""
        return self._memory

    # ---- building -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("What if…  + pin · = apply · esc close", classes="wi-title")
        yield Static("", id="wi-headline")
        with VerticalScroll(id="wi-body"):
            with Horizontal(classes="wi-row"):
                yield Label("model", classes="wi-label")
                yield FieldInput(self.form.model, on_value=self._field_changed, field="model",
                                 placeholder="type to search", id="f-model", compact=True)
            yield OptionList(id="wi-matches", compact=True)
            yield Static("", id="e-model", classes="wi-error")
            yield Static("", id="wi-model-source", classes="wi-quiet")
            with Horizontal(classes="wi-row"):
                yield Label("engine", classes="wi-label")
                yield Select(
                    [(label, key) for key, label in wf.ENGINE_LABELS.items()],
                    value=self.form.engine, allow_blank=False, type_to_search=False, compact=True,
                    id="f-engine",
                )
            for name in _TEXT_FIELDS:
                with Horizontal(classes="wi-row", id=f"r-{name}"):
                    yield Label(wf.FIELD_LABELS[name], classes="wi-label")
                    yield FieldInput(getattr(self.form, name), on_value=self._field_changed, field=name,
                                     id=f"f-{name}", compact=True, select_on_focus=False)
                yield Static("", id=f"e-{name}", classes="wi-error")
            yield Static(wf.FIELD_LABELS["stopped"], classes="wi-section")
            yield SelectionList[str](id="f-stopped", compact=True)
            yield Static("no serving instance runs now", id="wi-no-instances", classes="wi-quiet")
            yield Static("", id="e-stopped", classes="wi-error")
            # Parts whose height rarely changes come first, so a keystroke seldom moves the rest.
            yield NeedBars(id="wi-bars")
            yield Static("", id="wi-budget")
            yield Static("suggestions  (= or 1-9 applies)", classes="wi-section", id="wi-suggestions-title")
            yield OptionList(id="wi-suggestions", compact=True)
            yield Static("pinned  (+ pins the current candidate)", classes="wi-section")
            yield OptionList(id="wi-pins", compact=True)
            yield Static("why", classes="wi-section", id="wi-reasons-title")
            yield Static("", id="wi-reasons")
            yield Static("", id="wi-note")

    def on_mount(self) -> None:
        if self.parent is not None and self.parent.id == "side":
            self.parent.add_class("-whatif")  # the column shows the panel alone
        self.watch(self.app, "tick", self._take_tick)  # the newest snapshot at once, then each new one
        self._ready = True
        self._fields = {name: self.query_one(f"#f-{name}", Input) for name in ("model", *_TEXT_FIELDS)}
        self._boxes = {box.id: box for box in self.query(Static) if box.id}
        self.query_one("#wi-matches", OptionList).display = False
        self._boxes["wi-model-source"].display = False
        self._show_engine_fields()
        self._refresh_instances()
        self._refresh_pins_list()
        self._put(self._boxes["wi-note"], "\n".join(self._notes))
        self.recompute()
        self.call_after_refresh(self.recompute)  # once laid out: the headline's width is known
        self.query_one("#f-model", Input).focus()
        if not self.form.model:
            self._show_matches("")

    def on_resize(self) -> None:
        """Keep to the layout rule as the terminal is resized: beside the live view when wide,
        a screen of its own when narrow."""
        if (self.app.size.width < NARROW_COLUMNS) != isinstance(self.screen, WhatIfScreen):
            self.call_after_refresh(self._move)

    def _move(self) -> None:
        if not self.is_attached or (self.app.size.width < NARROW_COLUMNS) == isinstance(self.screen, WhatIfScreen):
            return
        self._save()
        app = self.app
        moved = WhatIfPanel(self._snapshot, state_path=self._state_path, memory=self._memory,
                            docked=isinstance(self.screen, WhatIfScreen), models=self._list_models)
        moved.form, moved._models = self.form, self._models
        side = side_column(app)
        if isinstance(self.screen, WhatIfScreen):
            if side is None:
                return
            app.pop_screen()
            side.mount(moved)
        else:
            self.remove()
            app.push_screen(WhatIfScreen(moved))

    def on_unmount(self) -> None:
        if self.parent is not None and self.parent.id == "side":
            self.parent.remove_class("-whatif")
        self._save()

    # ---- inputs -------------------------------------------------------------------------------

    def _take_tick(self, tick: Tick | None) -> None:
        """A new snapshot (None: none yet, or a host app that publishes none): re-judge the
        candidate and every pin against it. A tick at rest changes nothing the panel judges."""
        if tick is None or tick.snapshot is self._snapshot or (tick.at_rest and self._snapshot is not None):
            return
        self._snapshot = tick.snapshot
        if self._ready:
            self._refresh_instances()
            self.recompute()

    def _field_changed(self, name: str, value: str) -> None:
        """A field's text changed (typed, or written by the panel itself while ``_syncing``)."""
        if self._syncing or not self._ready or getattr(self.form, name) == value:
            return
        self.form = self.form.with_(**{name: value})
        if name == "model":
            self._show_matches(value)
            self._schedule_remote(value)
        self.recompute(pins=False)
        self._tell()

    @on(Select.Changed, "#f-engine")
    def _engine_changed(self, event: Select.Changed) -> None:
        if self._syncing or event.value == self.form.engine:
            return
        self.form = self.form.with_(engine=str(event.value))
        self._show_engine_fields()
        self.recompute(pins=False)
        self._tell()

    @on(SelectionList.SelectedChanged, "#f-stopped")
    def _stopped_changed(self, event: SelectionList.SelectedChanged) -> None:
        if self._syncing:
            return
        self.form = self.form.with_(stopped=tuple(sorted(event.selection_list.selected)))
        self.recompute(pins=False)
        self._tell()

    # ---- model search -------------------------------------------------------------------------

    def _choices(self) -> tuple[ModelChoice, ...]:
        if self._models is None:
            try:
                self._models = tuple(self._list_models())
            except Exception as exc:  # a broken model source must not take the panel down
                self._models = ()
                self._note(f"model list: {exc}")
        return self._models

    def _show_matches(self, query: str) -> None:
        """The models matching ``query``; with the field empty, the last candidates instead."""
        matches = self.query_one("#wi-matches", OptionList)
        matches.clear_options()
        if not query.strip():
            recent = self._memory.recent
            matches.add_options([
                Option(Content.assemble(wf.describe(form), ("  recent", "dim")), id=f"{_RECENT}{i}")
                for i, form in enumerate(recent)
            ])
        else:
            found = wf.match_models(query, self._choices())
            if not (len(found) == 1 and found[0].name == query.strip()):
                matches.add_options([
                    Option(Content.assemble(c.name, (f"  {c.source}" + (f" · {c.detail}" if c.detail else ""), "dim")),
                           id=c.name)
                    for c in found
                ])
        _show(matches, matches.option_count > 0)
        if matches.option_count:
            matches.highlighted = 0

    def on_key(self, event) -> None:
        """Up/down in the model field move through the matches; escape hides them first."""
        matches = self.query_one("#wi-matches", OptionList)
        if not matches.display or not self._fields["model"].has_focus:
            return
        if event.key in ("down", "up"):
            if event.key == "down":
                matches.action_cursor_down()
            else:
                matches.action_cursor_up()
        elif event.key == "escape":
            matches.display = False
        else:
            return
        event.stop()
        event.prevent_default()

    @on(Input.Submitted, "#f-model")
    def _take_highlighted(self, event: Input.Submitted) -> None:
        matches = self.query_one("#wi-matches", OptionList)
        if matches.display and matches.highlighted is not None:
            self._take_model(matches.get_option_at_index(matches.highlighted).id or "")
        self.query_one("#f-engine", Select).focus()

    @on(OptionList.OptionSelected, "#wi-matches")
    def _clicked_match(self, event: OptionList.OptionSelected) -> None:
        self._take_model(event.option.id or "")

    def _take_model(self, name: str) -> None:
        """A model from the matches (the form keeps its other fields), or a whole recent form."""
        self.query_one("#wi-matches", OptionList).display = False
        if name.startswith(_RECENT):
            self._load_form(self._memory.recent[int(name[len(_RECENT):])])
        else:
            self._load_form(wf.with_model(self.form, name))

    # ---- models not here yet: the Hub and the Ollama library ----------------------------------

    def _schedule_remote(self, name: str) -> None:
        """After a pause in typing, a name no local source knows is looked up in workers (the
        Hub's search for completions, then the model itself); a keystroke never waits on them."""
        if self._remote_timer is not None:
            self._remote_timer.stop()
        if name.strip() != self._resolving:
            self._show_source("")
        self._remote_timer = self.set_timer(REMOTE_PAUSE_S, lambda: self._remote_lookup(name))

    def _remote_lookup(self, name: str) -> None:
        text = name.strip()
        if text != self.form.model.strip() or self.result is None or "model" not in self.result.errors:
            return  # typed on since, or known here
        if "/" in text and len(text) >= 3:
            self._search_hub(text)
        if remote.remote_ref(text) is not None and text != self._resolving:
            if getattr(self.app, "readonly", False):  # a resolved spec is cached on disk: nothing is written
                self._show_source(f"read-only mode (--readonly): {text} is not fetched (it would be cached on disk)",
                                  failed=True)
                return
            self._resolving = text
            self._show_source(f"resolving {text} …", spinning=True)
            self._resolve_remote(text)

    @work(thread=True, exclusive=True, group="wi-hub-search")
    def _search_hub(self, query: str) -> None:
        from vramtop.fit import hub

        self._from_thread(self._hub_matches, query, hub.search(query))

    @work(thread=True, exclusive=True, group="wi-resolve")
    def _resolve_remote(self, name: str) -> None:
        try:
            spec = remote.fetch(name)
            self._from_thread(self._resolved, name, f"from {spec.source}" if spec else "", False)
        except SpecError as exc:
            self._from_thread(self._resolved, name, str(exc), True)

    def _from_thread(self, callback: Callable[..., None], *args: object) -> None:
        try:
            self.app.call_from_thread(callback, *args)
        except RuntimeError:  # the app closed while the worker waited on the network
            pass

    def _resolved(self, name: str, line: str, failed: bool) -> None:
        if self._resolving == name:
            self._resolving = None
        if name != self.form.model.strip():
            return
        if not failed:
            judge.models_changed()  # it remembers this name as unknown from before the worker
            self.recompute(pins=False)
        self._show_source(line, failed=failed)

    def _hub_matches(self, query: str, names: list[str]) -> None:
        """The Hub's search results under the local matches (still the same query only)."""
        if query != self.form.model.strip() or not names:
            return
        matches = self.query_one("#wi-matches", OptionList)
        shown = {matches.get_option_at_index(i).id for i in range(matches.option_count)}
        matches.add_options([Option(Content.assemble(n, ("  hub", "dim")), id=n)
                             for n in names if n not in shown])
        _show(matches, matches.option_count > 0)
        if matches.option_count and matches.highlighted is None:
            matches.highlighted = 0

    def _show_source(self, text: str, *, spinning: bool = False, failed: bool = False) -> None:
        """The line under the model field: a spinner while a worker resolves, then where the
        model's facts came from, or why they could not be read."""
        if not self._ready:
            return
        if self._spinner is not None and not spinning:
            self._spinner.stop()
            self._spinner = None
        if spinning and self._spinner is None:
            self._spinner = self.set_interval(0.1, self._spin)
        self._source_text = text
        box = self._boxes["wi-model-source"]
        box.set_class(failed, "-failed")
        self._put(box, f"{_SPINNER[0]} {text}" if spinning else text)
        _show(box, bool(text))

    def _spin(self) -> None:
        frame = int(time.monotonic() * 10) % len(_SPINNER)
        self._put(self._boxes["wi-model-source"], f"{_SPINNER[frame]} {self._source_text}")

    # ---- the form's fields --------------------------------------------------------------------

    def _load_form(self, form: FormState) -> None:
        """Write ``form`` into the fields (a pin, a suggestion, a chosen model), then re-judge."""
        self.form = form
        self._syncing = True
        try:
            for name, field in self._fields.items():
                if field.value != getattr(form, name):
                    field.value = getattr(form, name)
            self.query_one("#f-engine", Select).value = form.engine
            self._sync_stopped()
        finally:
            self._syncing = False
        self._show_engine_fields()
        self.recompute(pins=False)
        self._tell()

    def _show_engine_fields(self) -> None:
        shown = wf.ENGINE_FIELDS.get(self.form.engine, ())
        for name in _TEXT_FIELDS:
            visible = name in shown
            self.query_one(f"#r-{name}").display = visible
            if not visible:
                self.query_one(f"#e-{name}").display = False

    def _refresh_instances(self) -> None:
        """The "as if stopped" choices: the instances running now (rebuilt only when they change)."""
        instances = instances_of(self._snapshot) if self._snapshot else ()
        options = tuple((inst.key, wf.instance_label(inst)) for inst in instances)
        if options != self._instance_options:
            self._instance_options = options
            self._sync_stopped()

    def _sync_stopped(self) -> None:
        stopped = self.query_one("#f-stopped", SelectionList)
        was = self._syncing
        self._syncing = True
        try:
            stopped.clear_options()
            running = self._instance_options or ()
            keys = {k for k, _ in running}
            gone = [k for k in self.form.stopped if k not in keys]
            stopped.add_options(  # labels carry process titles and Ray names: plain text
                [(Content(label), key, key in self.form.stopped) for key, label in running]
                + [(Content(f"{key} (not running now)"), key, True) for key in gone]
            )
        finally:
            self._syncing = was
        _show(stopped, stopped.option_count > 0)
        _show(self.query_one("#wi-no-instances"), stopped.option_count == 0)

    # ---- the verdict --------------------------------------------------------------------------

    def recompute(self, *, pins: bool = True) -> None:
        """Judge the form (and, unless only the form changed, every pin) and redraw the verdict."""
        if not self._ready:
            return
        with remote.cache_only():  # the network is for workers (_schedule_remote), never a keystroke
            seen = judge.assess(self.form, self._snapshot)
        self.result = seen.result
        self._show_errors(seen.field_errors)
        self._show_placeholders(seen.placeholders)
        self._show_result(seen)
        if pins:
            self.pin_results = judge.pin_verdicts(self._memory.pins, self._snapshot)
            self._show_pin_verdicts()

    def _show_errors(self, errors: dict[str, str]) -> None:
        for name in ("model", *_TEXT_FIELDS, "stopped"):
            message = errors.get(name, "")
            self._put(self._boxes[f"e-{name}"], f"↳ {message}" if message else "")
            _show(self._boxes[f"e-{name}"], bool(message))
            if name in self._fields:
                self._fields[name].set_class(bool(message), "-invalid")

    def _show_placeholders(self, placeholders: dict[str, str]) -> None:
        for name, text in placeholders.items():
            field = self._fields.get(name)
            if field is None:
                continue
            if field.placeholder != text:
                field.placeholder = text

    def _show_result(self, seen: judge.Assessment) -> None:
        result = seen.result
        headline = self._boxes["wi-headline"]
        for v in (GREEN, YELLOW, RED, INVALID):
            headline.set_class(result.verdict == v, f"-{v}")
        self._put(headline, result.line)
        reasons = self._boxes["wi-reasons"]
        # The headline has two lines; a longer one is said in full under "why".
        width = headline.content_size.width
        whole = bool(width) and len(Content(result.line).wrap(width)) <= 2
        why = [r for r in result.reasons if not (whole and r == result.headline)]
        self._put(reasons, "\n".join(f"· {r}" for r in why))
        _show(reasons, bool(why))
        _show(self.query_one("#wi-reasons-title"), bool(why))
        bars = self.query_one("#wi-bars", NeedBars)
        bars.show(tuple(sorted(result.per_gpu, key=lambda need: device_order(need.gpu_index))))
        _show(bars, bool(result.per_gpu))
        budget = self._boxes["wi-budget"]
        self._put(budget, seen.budget, wrap=False)
        _show(budget, bool(seen.budget))
        suggestions = self.query_one("#wi-suggestions", OptionList)
        texts = list(seen.suggestions)
        if texts != self._suggestion_texts:
            self._suggestion_texts = texts
            suggestions.clear_options()
            suggestions.add_options([Option(Content(t)) for t in texts])
        _show(suggestions, bool(texts))
        _show(self.query_one("#wi-suggestions-title"), bool(texts))

    def _put(self, box: Static, text: str, *, wrap: bool = True) -> None:
        """Show ``text`` in ``box``; lay the screen out again only when its height changes.

        A keystroke usually changes a few figures, not the number of lines; skipping the layout
        then keeps the redraw to the changed lines (the budget of one frame is 16 ms).
        """
        width = box.content_size.width
        if not wrap:
            lines = text.count("\n") + 1 if text else 0
        else:
            lines = len(Content(text).wrap(width)) if width and text else 0
        if self._shown.get(box.id) == (text, width, lines):
            return
        previous = self._shown.get(box.id)
        self._shown[box.id] = (text, width, lines)
        box.update(Content(text), layout=previous is None or previous[1:] != (width, lines) or not width)

    def _show_pin_verdicts(self) -> None:
        pins = self.query_one("#wi-pins", OptionList)
        for i, result in enumerate(self.pin_results):
            prompt = judge.pin_line(self._memory.pins[i], result)
            if i < pins.option_count and str(pins.get_option_at_index(i).prompt) != prompt:
                pins.replace_option_prompt_at_index(i, Content(prompt))

    def _refresh_pins_list(self) -> None:
        pins = self.query_one("#wi-pins", OptionList)
        highlighted = pins.highlighted
        pins.clear_options()
        pins.add_options([Option(Content(wf.describe(p))) for p in self._memory.pins])
        pins.display = bool(self._memory.pins)
        if self._memory.pins and highlighted is not None:
            pins.highlighted = min(highlighted, len(self._memory.pins) - 1)

    # ---- actions ------------------------------------------------------------------------------

    def action_pin(self) -> None:
        if not self.form.model.strip():
            self._note("pick a model before pinning")
            return
        self._memory = self._memory.remember(self.form).pin(self.form)
        self._refresh_pins_list()
        self.recompute()
        self._save()

    def action_apply_suggestion(self, index: int) -> None:
        suggestions = self.result.suggestions if self.result else ()
        if index >= len(suggestions):
            return
        self._load_form(wf.with_changes(self.form, suggestions[index].changes))

    @on(OptionList.OptionSelected, "#wi-suggestions")
    def _suggestion_chosen(self, event: OptionList.OptionSelected) -> None:
        self.action_apply_suggestion(event.option_index)

    @on(OptionList.OptionSelected, "#wi-pins")
    def _pin_chosen(self, event: OptionList.OptionSelected) -> None:
        self._load_form(self._memory.pins[event.option_index])

    def key_delete(self) -> None:
        pins = self.query_one("#wi-pins", OptionList)
        if pins.has_focus and pins.highlighted is not None:
            self._memory = self._memory.unpin(pins.highlighted)
            self._refresh_pins_list()
            self.recompute()
            self._save()

    def action_copy_launch(self) -> None:
        """Copy the launch line of the form's candidate (OSC 52: over SSH and in tmux too) and
        show it."""
        from vramtop.fit.command import plan
        from vramtop.fit.placement import node_from_snapshot

        cand, errors = judge.candidate_of(self.form)
        if errors or cand is None or self._snapshot is None:
            self.notify("no launch line: the form has no candidate to judge", severity="warning")
            return
        launch = plan(cand, node_from_snapshot(self._snapshot), self.form.model.strip())
        self.app.copy_to_clipboard(launch.line.text)
        self.notify(f"{launch.result.word}: {launch.line.text}", title="launch line copied", markup=False)

    def action_close(self) -> None:
        self._save()
        if isinstance(self.screen, WhatIfScreen):
            self.app.pop_screen()
        else:
            self.remove()

    # ---- memory -------------------------------------------------------------------------------

    def _note(self, line: str) -> None:
        self._notes = (self._notes + [line])[-3:]
        self._put(self._boxes["wi-note"], "\n".join(self._notes))

    def _save(self) -> None:
        self._memory = self._memory.remember(self.form)
        self._tell()
        if getattr(self.app, "readonly", False):  # --readonly writes no file: remembered this session only
            return
        warning = save_memory(self._memory, self._state_path)
        if warning and self._ready:
            self._note(warning)

    def _tell(self) -> None:
        """Up to the app: the form as it is now, and what the panel remembers."""
        self.app.post_message(WhatIfChanged(replace(self._memory, current=self.form)))


def _known_models() -> tuple[ModelChoice, ...]:
    """The catalog, then the models resolved before or in the local HF cache (by name)."""
    catalog = list_models()
    known = {c.name for c in catalog}
    return catalog + tuple(ModelChoice(n, "cached", "") for n in remote.local_names() if n not in known)


class WhatIfScreen(Screen):
    """The panel alone, for panes too narrow to show it beside the live view."""

    def __init__(self, panel: WhatIfPanel) -> None:
        super().__init__()
        self.panel = panel

    def compose(self) -> ComposeResult:
        yield self.panel


class WhatIfChanged(Message):
    """The panel's form or pins changed, or it closed: ``memory`` is what it remembers, with the
    form on screen as ``current`` (what the side column's pins and a report judge)."""

    def __init__(self, memory: WhatIfMemory) -> None:
        super().__init__()
        self.memory = memory


def side_column(app: App) -> Widget | None:
    """The main view's side column when it is shown (the wide layout), else None."""
    found = app.screen_stack[0].query("#side") if app.screen_stack else None
    side = found.first() if found else None
    return side if side is not None and side.display and app.size.width >= NARROW_COLUMNS else None
