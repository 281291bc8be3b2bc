"""The process table's rows from one snapshot: grouping, sorting and filtering, without Textual.

One row per process per GPU (as NVML lists them). In grouped mode a serving instance with more
than one row gets a header row (its name, engine, TP and cost per GPU) and its member rows
follow it, indented; the widget only applies the difference between two lists of rows. A build
orders every process but makes a row only when it is read (``Rows``): the table reads those in view.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Iterable

from vramtop.analysis import roles
from vramtop.analysis.instances import Instance, instance_of
from vramtop.frozen import fresh
from vramtop.snapshot import GpuProcess, NodeSnapshot, slice_label
from vramtop.telemetry.model import ProcessFacts, process_facts


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool = False  # right-aligned, sorted largest first by default


COLUMNS: tuple[Column, ...] = (
    Column("gpu", "GPU", numeric=True),
    Column("pid", "PID", numeric=True),
    Column("user", "USER"),
    Column("role", "ROLE"),
    Column("instance", "INSTANCE"),
    Column("vram", "VRAM MiB", numeric=True),
    Column("cpu", "CPU%", numeric=True),
    Column("rss", "RSS MiB", numeric=True),
    Column("command", "COMMAND"),
)
COLUMN = {c.key: c for c in COLUMNS}

# Which columns fit, by table width: the narrow set still answers "who holds the memory".
NARROW = ("gpu", "pid", "role", "vram")
MEDIUM = ("gpu", "pid", "user", "role", "vram", "cpu", "rss")
MEDIUM_COMMAND = MEDIUM + ("command",)
WIDE = tuple(c.key for c in COLUMNS)

EXPANDED, COLLAPSED = "▾", "▸"
NOT_VISIBLE = "not visible"


# Fixed widths; the one flexible column per set (role, or command when shown) takes what is
# left, so nothing that matters is pushed off the right edge.
WIDTHS = {"gpu": 3, "pid": 7, "user": 10, "role": 26, "instance": 34, "vram": 9, "cpu": 6, "rss": 8}
# The widest set whose flexible column keeps at least this many cells wins; NARROW always fits.
SETS = ((WIDE, 20), (MEDIUM_COMMAND, 14), (MEDIUM, 20))
MIN_FLEX = 10
PADDING = 2  # DataTable's cell padding, both sides


def _layout(keys: tuple[str, ...], width: int) -> tuple[int, tuple[tuple[str, int], ...]]:
    flex = "command" if "command" in keys else "role"
    widths = dict(WIDTHS, vram=7 if keys is NARROW else WIDTHS["vram"], pid=6 if keys is NARROW else 7)
    room = width - 1 - sum(widths[k] + PADDING for k in keys if k != flex) - PADDING
    widths[flex] = max(MIN_FLEX, room)
    return room, tuple((k, widths[k]) for k in keys)


def columns_for_width(width: int) -> tuple[tuple[str, int], ...]:
    """(column, width) pairs that fit a table ``width`` cells wide (scrollbar included)."""
    for keys, min_flex in SETS:
        room, layout = _layout(keys, width)
        if room >= min_flex:
            return layout
    return _layout(NARROW, width)[1]


def short_label(key: str, narrow: bool) -> str:
    return "MiB" if narrow and key == "vram" else COLUMN[key].label


@dataclass(frozen=True)
class Row:
    """``cells`` is the text shown per column (``role_short``: the role column when narrow);
    ``kind`` is "instance" (a header) or "process"."""

    key: str
    kind: str
    cells: dict[str, str]
    detail: str  # everything about the row on one line, for the line under the table
    instance_key: str | None = None
    hidden: bool = False  # the OS does not show this process to us
    pid: int | None = None  # process rows: the process the row shows


def gpu_ranges(indices: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 6]`` -> ``"0-3,6"``."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(set(indices)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)))
    return ",".join(out)


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def process_key(proc: GpuProcess) -> str:
    return f"p:{proc.pid}:{proc.gpu_index}" + (":g" if proc.kind == "graphics" else "")


def _fact_texts(facts: ProcessFacts) -> tuple[str, ...]:
    """"container docker 3f2a9c1b7d4e", "pytorch · x.gguf", "memory stable": for the detail line."""
    out = []
    if facts.container is not None:
        out.append(f"container {facts.container.label}")
    if facts.loaded is not None:
        out.append(facts.loaded.label)
    if facts.phase is not None:
        out.append(facts.phase)
    return tuple(out)


class _Made:
    """A process row and what it was made from. Its detail line is ``head``, the memory figure,
    ``tail``: a row whose process moved only its memory is made again from these, not from
    scratch, and only when it is read (``Rows``). Never changed once made, so the table may read
    a build's rows while the next build reuses what they were made from."""

    __slots__ = ("host", "mig_slice", "hidden_reason", "instance", "facts", "row", "sort", "head", "tail")

    def __init__(self, proc: GpuProcess, instance: tuple[str, str] | None, facts: ProcessFacts, row: Row,
                 sort: dict[str, Any], head: str, tail: str) -> None:
        self.host, self.mig_slice, self.hidden_reason = proc.host, proc.mig_slice, proc.hidden_reason
        self.instance, self.facts = instance, facts  # the instance's key and label
        self.row, self.sort, self.head, self.tail = row, sort, head, tail

    def shows(self, proc: GpuProcess, instance: tuple[str, str] | None, facts: ProcessFacts) -> bool:
        """Whether the row was made from all of this but the memory figure."""
        return ((self.host is proc.host or self.host == proc.host) and self.mig_slice == proc.mig_slice
                and self.hidden_reason == proc.hidden_reason and self.instance == instance
                and (self.facts is facts or self.facts == facts))

    def sort_value(self, column: str, used_mib: int | None) -> Any:
        if column == "vram":
            return -1 if used_mib is None else used_mib
        return _sort_value(self.row, self.sort, column)

    def at(self, used_mib: int | None, branch: str) -> Row:
        """The row with this memory figure, under ``branch`` ("├ ", "└ ") as an instance's member."""
        row, mib = self.row, _mib(used_mib)
        if row.cells["vram"] != mib:
            row = fresh(row, cells=dict(row.cells, vram=mib), detail=self.head + mib + self.tail)
        if branch:
            cells = row.cells
            row = fresh(row, cells=dict(cells, role=branch + cells["role"], role_short=branch + cells["role_short"]))
        return row


class Rows(Sequence[Row]):
    """The table's rows in display order, each made when it is first read: a table shows a few
    dozen of a thousand processes, and on a node where every process's memory moves a row made
    for each of them every tick cost more than everything the table draws. ``keys`` are all
    the rows' keys, in order. ``keep`` puts a row the table already shows in place of one that
    differs from it only in what the table shows later (its CPU and RSS figures)."""

    __slots__ = ("keys", "_items", "_at")

    def __init__(self, keys: tuple[str, ...], items: list) -> None:
        self.keys = keys
        self._items = items  # a Row, or (what it is made from, its memory figure, its branch)
        self._at: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, n):
        if isinstance(n, slice):
            return tuple(self[i] for i in range(*n.indices(len(self._items))))
        item = self._items[n]
        if type(item) is tuple:
            made, used_mib, branch = item
            item = self._items[n] = made.at(used_mib, branch)
        return item

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Rows, tuple)):
            return len(self) == len(other) and all(map(operator.eq, self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Rows({list(self)!r})"

    def place(self, key: str) -> int | None:
        """Where the row ``key`` stands, or None."""
        if self._at is None:
            self._at = {key: n for n, key in enumerate(self.keys)}
        return self._at.get(key)

    def keep(self, n: int, row: Row) -> None:
        self._items[n] = row


NO_ROWS = Rows((), [])


class RowMemo:
    """The process rows of the last build, kept by process and GPU with all they were built from
    (the process, its instance's key and label, its telemetry facts): a build reuses what the
    rows of processes that did not move were made from, and of those whose memory alone moved
    (every process on a node where PyTorch's allocators work), and makes a row only for the
    processes that moved otherwise. It holds the rows of one build, no more."""

    def __init__(self) -> None:
        self._last: dict[tuple, _Made] = {}
        self._now: dict[tuple, _Made] = {}

    def made(self, snapshot: NodeSnapshot, proc: GpuProcess, inst: Instance | None) -> _Made:
        facts = process_facts(snapshot.telemetry, proc)
        instance = (inst.key, inst.label) if inst is not None else None
        place = (proc.pid, proc.gpu_index, proc.kind)
        made = self._now.get(place) or self._last.get(place)
        if made is None or not made.shows(proc, instance, facts):
            made = _Made(proc, instance, facts, *_process_row(proc, inst, facts))
        self._now[place] = made
        return made

    def done(self) -> None:
        """The build ended: its rows are the ones the next build may reuse."""
        self._last, self._now = self._now, {}


def _process_row(proc: GpuProcess, inst: Instance | None,
                 facts: ProcessFacts) -> tuple[Row, dict[str, Any], str, str]:
    """The row, its sort values, and its detail line's text before and after the memory figure."""
    host = proc.host
    role = roles.classify(host)
    if role.engine == roles.OTHER and facts.loaded is not None and facts.loaded.frameworks:
        role = roles.Role(facts.loaded.frameworks[0], role.kind, role.label)  # "pytorch python3", not "other"
    hidden = host is None
    reason = proc.hidden_reason or "the OS does not show this PID here"
    cells = {
        "gpu": slice_label(proc.gpu_index, proc.mig_slice),  # "0:1" on MIG slice 1 of GPU 0
        "pid": str(proc.pid),
        "user": "?" if hidden or host.user is None else host.user,
        "role": NOT_VISIBLE if hidden else role.text,
        "role_short": NOT_VISIBLE if hidden else role.label or role.engine,
        "instance": inst.label if inst else "",
        "vram": _mib(proc.used_mib),
        "cpu": "" if hidden or host.cpu_pct is None else f"{host.cpu_pct:.1f}",
        "rss": "" if hidden or host.rss_mib is None else f"{host.rss_mib:,}",
        "command": reason if hidden else host.title,
    }
    sort = {
        "gpu": proc.gpu_index,
        "pid": proc.pid,
        "vram": -1 if proc.used_mib is None else proc.used_mib,
        "cpu": -1.0 if hidden or host.cpu_pct is None else host.cpu_pct,
        "rss": -1 if hidden or host.rss_mib is None else host.rss_mib,
    }
    if hidden:
        head, tail = f"pid {proc.pid} not visible here ({reason}) · GPU {cells['gpu']} · ", " MiB"
    else:
        head = f"pid {proc.pid} · {cells['user']} · {role.text} · GPU {cells['gpu']} · "
        tail = f" MiB · {' '.join(host.cmdline) or host.title}"
    if inst is not None:
        tail += f" · instance {inst.label}"
    for fact in _fact_texts(facts):
        tail += f" · {fact}"
    row = Row(process_key(proc), "process", cells, head + cells["vram"] + tail, inst.key if inst else None,
              hidden, proc.pid)
    return row, sort, head, tail


def instance_summary(inst: Instance) -> str:
    """Engine, TP and memory per GPU: what stopping the instance would give back."""
    tp = f" TP{inst.tp_size}" if inst.tp_size else ""
    per_gpu = " · ".join(f"GPU{g} {mib:,}" for g, mib in (inst.per_slice_mib if inst.on_slices else inst.per_gpu_mib).items())
    unknown = " + unreported" if inst.unknown_mib else ""
    return f"{inst.engine}{tp} · {per_gpu}{unknown}"


def _instance_row(snapshot: NodeSnapshot, inst: Instance, collapsed: bool) -> tuple[Row, dict[str, Any]]:
    root = snapshot.host_process(inst.root_pid)
    members = {m.pid: m.host for m in inst.members}
    cpu = [h.cpu_pct for h in members.values() if h is not None and h.cpu_pct is not None]
    rss = [h.rss_mib for h in members.values() if h is not None and h.rss_mib is not None]
    total = f"{inst.total_mib:,}" + ("+?" if inst.unknown_mib else "")
    cells = {
        "gpu": ",".join(inst.per_slice_mib) if inst.on_slices else gpu_ranges(inst.gpu_indices),
        "pid": str(inst.root_pid),
        "user": (root.user if root and root.user else "?"),
        "role": f"{COLLAPSED if collapsed else EXPANDED} {inst.name}",
        "role_short": f"{COLLAPSED if collapsed else EXPANDED} {inst.name}",
        "instance": inst.label,
        "vram": total,
        "cpu": f"{sum(cpu):.1f}" if cpu else "",
        "rss": f"{sum(rss):,}" if rss else "",
        "command": instance_summary(inst),
    }
    sort = {
        "gpu": min(inst.gpu_indices, default=-1),
        "pid": inst.root_pid,
        "vram": inst.total_mib,
        "cpu": sum(cpu) if cpu else -1.0,
        "rss": sum(rss) if rss else -1,
    }
    detail = (
        f"{inst.label} · {total} MiB in all · {instance_summary(inst)} · "
        f"pids {' '.join(str(m.pid) for m in inst.members)}"
    )
    return Row(f"i:{inst.key}", "instance", cells, detail, inst.key), sort


def _sort_value(row: Row, sort: dict[str, Any], column: str) -> Any:
    if column in sort:
        return sort[column]
    return row.cells[column].lstrip(f"{EXPANDED}{COLLAPSED}├└ ").casefold()


def _ordered(items: list, reverse: bool) -> list:
    """(key, sort value, ...) items sorted by value; ties keep ascending key order whichever the direction."""
    items.sort(key=_KEY)
    items.sort(key=_VALUE, reverse=reverse)
    return items


_KEY, _VALUE = operator.itemgetter(0), operator.itemgetter(1)


def _matches(row: Row, needle: str) -> bool:
    return any(needle in text.casefold() for text in row.cells.values())


@dataclass(frozen=True)
class RowView:
    """What the user chose for the table: its sort, grouping, filter and folded instances. Rows
    are built from a snapshot and a view; the app builds them off the UI thread for the view the
    table had when the sample began."""

    sort_column: str = "vram"
    reverse: bool = True
    grouped: bool = True
    filter_text: str = ""
    collapsed: frozenset[str] = frozenset()


def build_rows(snapshot: NodeSnapshot, instances: tuple[Instance, ...], view: RowView = RowView(),
               memo: RowMemo | None = None) -> Rows:
    """The table's rows in display order; ``memo`` keeps process rows from one build to the next.

    Groups sort by the instance's total (or its header's text) and members sort inside their
    group, so an instance never splits. A filter keeps an instance whole when its header
    matches, else only the members that match.
    """
    memo = memo or RowMemo()
    grouped, collapsed, sort_column, reverse = view.grouped, view.collapsed, view.sort_column, view.reverse
    needle = view.filter_text.strip().casefold()
    owner = instance_of(instances)
    groups: dict[Any, list[tuple[GpuProcess, Instance | None]]] = {}  # by instance, or alone
    for proc in snapshot.gpu_processes:
        inst = owner.get((proc.gpu_index, proc.pid))
        key = inst.key if inst is not None and grouped else (proc.pid, proc.gpu_index, proc.kind)
        groups.setdefault(key, []).append((proc, inst))

    def entry(made: _Made, proc: GpuProcess, branch: str = "") -> Row | tuple:
        """The row, made now where a filter reads it, else what ``Rows`` makes it from."""
        return made.at(proc.used_mib, branch) if needle else (made, proc.used_mib, branch)

    ordered: list[tuple[str, Any, list]] = []  # (its first row's key, sort value, its rows)
    for procs in groups.values():
        inst = procs[0][1] if grouped else None
        if inst is not None and len(procs) > 1:
            header, header_sort = _instance_row(snapshot, inst, inst.key in collapsed)
            members = []
            for proc, _ in procs:
                made = memo.made(snapshot, proc, inst)
                members.append((made.row.key, made.sort_value(sort_column, proc.used_mib), made, proc))
            members = _ordered(members, reverse)
            if needle and not _matches(header, needle):
                members = [m for m in members if _matches(m[2].at(m[3].used_mib, ""), needle)]
                if not members:
                    continue
            items: list = [header]
            if inst.key not in collapsed:
                last = len(members) - 1
                items += [entry(made, proc, "└ " if n == last else "├ ")
                          for n, (_, _, made, proc) in enumerate(members)]
            ordered.append((header.key, _sort_value(header, header_sort, sort_column), items))
        else:
            for proc, inst in procs:
                made = memo.made(snapshot, proc, inst)
                item = entry(made, proc)
                if needle and not _matches(item, needle):
                    continue
                ordered.append((made.row.key, made.sort_value(sort_column, proc.used_mib), [item]))
    ordered = _ordered(ordered, reverse)
    memo.done()
    items = [item for _, _, group in ordered for item in group]
    return Rows(tuple(item.key if type(item) is Row else item[0].row.key for item in items), items)
