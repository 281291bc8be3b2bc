"""What a terminal shows of an output of text, cursor moves and SGR sequences: the tests of the
app's own output compare screens with what Textual's output shows, cell by cell."""

from __future__ import annotations

import re

_SET = {"1": "bold", "2": "dim", "3": "italic", "4": "underline", "5": "blink", "6": "blink2", "7": "reverse",
        "8": "conceal", "9": "strike", "21": "underline2", "51": "frame", "52": "encircle", "53": "overline"}
_OFF = {"22": ("bold", "dim"), "23": ("italic",), "24": ("underline", "underline2"), "25": ("blink", "blink2"),
        "27": ("reverse",), "28": ("conceal",), "29": ("strike",), "54": ("frame", "encircle"), "55": ("overline",)}
DEFAULT = (frozenset(), None, None)
# SGR or a cursor move; a link's start or end (OSC 8: its target, empty at the end); text.
_PARTS = re.compile(r"\x1b\[(?P<codes>[0-9;]*)(?P<final>[mH])|\x1b\]8;[^;]*;(?P<link>[^\x1b]*)\x1b\\|(?P<text>[^\x1b]+)")


def screen(output: str) -> tuple[dict[tuple[int, int], tuple], tuple]:
    """The cells ``output`` writes, by (row, column) from 1: (character, attributes, foreground,
    background); and the style the terminal is left in. Knows the SGR codes Textual writes, cursor
    moves (CUP) and line breaks; any other sequence fails the test."""
    attrs: set[str] = set()
    fg = bg = link = None
    row = col = 1
    cells = {}
    for part in _PARTS.finditer(output):
        sequence, final, text = part["codes"], part["final"], part["text"]
        if part["link"] is not None:
            link = part["link"] or None
            continue
        if text:
            for ch in text:
                if ch == "\n":
                    row += 1
                elif ch == "\r":
                    col = 1
                else:
                    cells[row, col] = (ch, frozenset(attrs), fg, bg, link)
                    col += 1
            continue
        if final == "H":
            row, col = (int(n) for n in sequence.split(";"))
            continue
        codes = sequence.split(";") if sequence else ["0"]
        while codes:
            code = codes.pop(0)
            if code == "0":
                attrs.clear()
                fg = bg = None
            elif code in _SET:
                attrs.add(_SET[code])
            elif code in _OFF:
                attrs.difference_update(_OFF[code])
            elif code in ("38", "48"):
                mode = codes.pop(0)
                colour = (code, mode, *[codes.pop(0) for _ in range(1 if mode == "5" else 3)])
                fg, bg = (colour, bg) if code == "38" else (fg, colour)
            elif code in ("39", "49"):
                fg, bg = (None, bg) if code == "39" else (fg, None)
            elif 30 <= int(code) <= 37 or 90 <= int(code) <= 97:
                fg = code
            elif 40 <= int(code) <= 47 or 100 <= int(code) <= 107:
                bg = code
            else:
                raise AssertionError(f"code {code} not known")
    assert "".join(m.group(0) for m in _PARTS.finditer(output)) == output, "a sequence not known"
    return cells, (frozenset(attrs), fg, bg)
