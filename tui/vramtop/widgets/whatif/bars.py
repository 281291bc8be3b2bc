"""Per-GPU bars of what a candidate needs against what is free, one line per GPU.

One ``render()`` of a few Text lines (no child widgets, no timers), so a keystroke redraws it in
well under a millisecond. The bar spans the GPU's total: what stays in use, then the candidate's
need drawn over the free part; a need larger than the free memory fills the free part in the
"short" colour and ends in ``▶``. The figures after the bar say the same in numbers, so the line
reads without colour too.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from vramtop.fit.verdict import GpuNeed
from vramtop.units import gib

_FIGURES = 19  # " 20.2/  1.2 GiB ✗" after the bar


class NeedBars(Widget):
    """``show(needs)`` draws a legend, then one line per GPU the candidate would use."""

    COMPONENT_CLASSES = {"needbars--used", "needbars--need", "needbars--short", "needbars--free"}
    DEFAULT_CSS = """
    NeedBars { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    NeedBars > .needbars--used { color: $text-muted; }
    NeedBars > .needbars--need { color: $success; }
    NeedBars > .needbars--short { color: $error; }
    NeedBars > .needbars--free { color: $text-disabled; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._needs: tuple[GpuNeed, ...] = ()

    def show(self, needs: tuple[GpuNeed, ...]) -> None:
        if needs != self._needs:
            grew = len(needs) != len(self._needs)
            self._needs = needs
            self.refresh(layout=grew)

    def get_content_height(self, container, viewport, width: int) -> int:
        return 1 + len(self._needs) if self._needs else 1

    def render(self) -> Text:
        if not self._needs:
            return Text("no GPU figures yet", style=self.get_component_rich_style("needbars--free"))
        used_style = self.get_component_rich_style("needbars--used")
        need_style = self.get_component_rich_style("needbars--need")
        short_style = self.get_component_rich_style("needbars--short")
        free_style = self.get_component_rich_style("needbars--free")
        width = max(4, self.size.width - 7 - _FIGURES)
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("      ")
        out.append("▓", style=used_style)
        out.append(" in use ")
        out.append("█", style=need_style)
        out.append(" needed ")
        out.append("░", style=free_style)
        out.append(" free")
        tail = "need/free GiB"
        figures_at = 7 + width + 1  # "GPU0 ▕" + the bar + "▏"
        if len(out.plain) + 1 + len(tail) <= self.size.width:
            out.append(" " * max(1, figures_at - len(out.plain)) + tail)
        for need in self._needs:
            out.append("\n")
            total = max(need.total_mib, 1)
            free = max(0, min(need.free_mib, total))
            used_cells = round((total - free) / total * width)
            free_cells = width - used_cells
            need_cells = min(free_cells, round(min(need.needed_mib, free) / total * width))
            if need.needed_mib > 0 and need_cells == 0 and free_cells > 0:
                need_cells = 1
            out.append(f"GPU{need.gpu_index:<2}", style="bold")
            out.append("▕")
            out.append("▓" * used_cells, style=used_style)
            if need.fits:
                out.append("█" * need_cells, style=need_style)
                out.append("░" * (free_cells - need_cells), style=free_style)
                out.append("▏")
            else:
                out.append("█" * free_cells, style=short_style)
                out.append("▶", style=short_style)
            mark = "✓" if need.fits else "✗"
            out.append(f" {gib(need.needed_mib, unit=False):>5}/{gib(need.free_mib, unit=False):>5} GiB {mark}",
                       style=need_style if need.fits else short_style)
        return out
