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
widget with none. The pieces kept are those Textual's would keep: the same widgets in the same
order, each line cut at the same places, the first piece given for a place kept.

Installed once; where Textual's compositor no longer looks the way this relies on, nothing is
changed.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from textual._compositor import Compositor
from textual.geometry import Region
from textual.strip import Strip

_installed = False


def render_chops(self: Any, crop: Region, is_rendered_line: Callable[[int], bool]) -> list[dict[int, Strip | None]]:
    """Each screen line's pieces, by the cell each starts at, for the lines ``is_rendered_line``
    names (the others' pieces None), from the widgets that touch ``crop``."""
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
        lines = [line for line in range(y, y + height) if is_rendered_line(line)
                 and any(chops[line][cut] is None for cut in cuts[line] if x <= cut < end)]
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


def install() -> bool:
    """Replace ``Compositor._render_chops`` (once); False where the compositor is not as expected."""
    global _installed
    if _installed:
        return True
    original = getattr(Compositor, "_render_chops", None)
    if (original is None or list(inspect.signature(original).parameters) != ["self", "crop", "is_rendered_line"]
            or not all(isinstance(getattr(Compositor, name, None), property) for name in ("cuts", "visible_widgets"))):
        return False
    render_chops.__wrapped__ = original  # type: ignore[attr-defined]
    Compositor._render_chops = render_chops  # type: ignore[method-assign]
    _installed = True
    return True
