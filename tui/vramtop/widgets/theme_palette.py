"""The command palette's theme switcher with theme names as plain text.

A theme's name comes from a YAML file that anyone with a home directory can write; Textual's own
theme provider reads names as markup, so a theme named ``[/x]`` raised in the palette.
"""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits
from textual.content import Content
from textual.theme import ThemeProvider


class PlainThemeProvider(ThemeProvider):
    """Textual's theme provider, with each name shown as the text it is."""

    async def discover(self) -> Hits:
        for name, callback in self.commands:
            yield DiscoveryHit(Content(name), callback, text=name)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback in self.commands:
            score, offsets = matcher.fuzzy_search.match(matcher.query, name)
            if score > 0:
                shown = Content(name)
                for offset in offsets:
                    shown = shown.stylize(matcher.match_style, offset, offset + 1)
                yield Hit(score, shown, callback, text=name)
