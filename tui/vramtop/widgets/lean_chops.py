"""A repaint renders the lines it writes, of the widgets that show on them.

For a repaint of some regions, Textual's compositor (``Compositor._render_chops``) takes the box
around all of them and asks every widget that box touches for all of its lines, front to back,
then keeps, line by line, the pieces no widget in front has given yet, on the lines it writes.
A tick that changes the header and one table row asks the screen, its containers, the GPU panel
and the table for every line they have (some 280 lines a tick at 8 GPUs x 64 processes), each
passed through the styles cache and the line filters, to write a few dozen of them; and the
containers' lines are all behind the widgets they hold.

``install`` replaces ``_render_chops`` with one that asks each widget only for the lines from its
first to its last line written where a piece of it is still to be filled, and asks nothing of a
widget with none. It also replaces ``render_partial_update``, which hands it the spans to write on
each line: a widget none of a line's spans reaches is not asked for that line (a tick that changes a
table's VRAM column and the header wrote nothing of the side column beside the table, but had it
drawn all its lines). The pieces kept are those Textual's would keep where the update writes them:
the same widgets in the same order, each line cut at the same places, the first piece given for a
place kept; a piece no span overlaps is left out, which the update (``lean_updates``) skips.

Installed once; where Textual's compositor no longer looks the way this relies on, nothing is
changed.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.strip import Strip

_installed = False


Spans = dict[int, list[tuple[int, int]]]  # by screen line, the (start, end) cells an update writes


def _to_fill(chops_line: dict[int, Strip | None], line_cuts: list[int], x: int, end: int,
             spans: list[tuple[int, int]] | None) -> bool:
    """Whether a widget from cell ``x`` to ``end`` has a piece of this line still to fill that the
    update writes: one a span overlaps (``spans`` empty: the whole line is written; None: none)."""
    if spans is None:
        return False
    after = None  # the cut after a piece, walking the line's cuts from its right end
    for cut in reversed(line_cuts):
        if cut < end and cut >= x and chops_line[cut] is None:
            if not spans:
                return True
            for x1, x2 in spans:
                if cut < x2 and after > x1:
                    return True
        elif cut < x:
            return False
        after = cut
    return False


def render_chops(self: Any, crop: Region, is_rendered_line: Callable[[int], bool],
                 spans: Spans | None = None) -> list[dict[int, Strip | None]]:
    """Each screen line's pieces, by the cell each starts at, for the lines ``is_rendered_line``
    names (the others' pieces None), from the widgets that touch ``crop``; given ``spans``, only
    from widgets a span on the line reaches."""
    def written(line: int) -> list[tuple[int, int]] | None:
        if spans is not None:
            return spans.get(line)
        return [] if is_rendered_line(line) else None

    cuts = self.cuts
    chops: list[dict[int, Strip | None]] = [dict.fromkeys(line_cuts[:-1]) for line_cuts in cuts]
    overlaps = crop.overlaps
    for widget, (region, clip) in self.visible_widgets.items():
        if not overlaps(clip):
            continue
        x, y, width, height = region.intersection(clip)
        if not (width and height):
            continue
        end = x + width
        lines = [line for line in range(y, y + height) if _to_fill(chops[line], cuts[line], x, end, written(line))]
        if not lines:
            continue  # nothing of it written, or all of it behind widgets in front
        top = lines[0]
        strips = widget.render_lines(Region(x - region.x, top - region.y, width, lines[-1] - top + 1))
        for line in lines:
            line_cuts = [cut for cut in cuts[line] if x <= cut <= end]
            chops_line = chops[line]
            for cut, piece in zip(line_cuts, strips[line - top].divide([cut - x for cut in line_cuts[1:]])):
                if chops_line[cut] is None:
                    chops_line[cut] = piece
    return chops


def render_partial_update(self: Any) -> ChopsUpdate | None:
    """Textual's partial update, its pieces from the widgets each line's spans reach."""
    regions = self._dirty_regions.copy()
    self._dirty_regions.clear()
    if not regions:
        return None
    crop = Region.from_union(regions).intersection(self.size.region)
    spans = list(self._regions_to_spans(regions))
    by_line: Spans = {}
    for y, x1, x2 in spans:
        by_line.setdefault(y, []).append((x1, x2))
    chops = render_chops(self, crop, by_line.__contains__, by_line)
    return ChopsUpdate(chops, spans, [line_cuts[1:] for line_cuts in self.cuts])


def install() -> bool:
    """Replace ``Compositor._render_chops`` and ``render_partial_update`` (once); False where the
    compositor is not as expected."""
    global _installed
    if _installed:
        return True
    original = getattr(Compositor, "_render_chops", None)
    partial = getattr(Compositor, "render_partial_update", None)
    if (original is None or list(inspect.signature(original).parameters) != ["self", "crop", "is_rendered_line"]
            or partial is None or list(inspect.signature(partial).parameters) != ["self"]
            or not callable(getattr(Compositor, "_regions_to_spans", None))
            or not hasattr(Compositor(), "_dirty_regions")
            or list(inspect.signature(ChopsUpdate).parameters) != ["chops", "spans", "chop_ends"]
            or not all(isinstance(getattr(Compositor, name, None), property) for name in ("cuts", "visible_widgets"))):
        return False
    render_chops.__wrapped__ = original  # type: ignore[attr-defined]
    render_partial_update.__wrapped__ = partial  # type: ignore[attr-defined]
    Compositor._render_chops = render_chops  # type: ignore[method-assign]
    Compositor.render_partial_update = render_partial_update  # type: ignore[method-assign]
    _installed = True
    return True
