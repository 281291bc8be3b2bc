"""The YAML files vramtop reads (the config, themes, the what-if state): plain data, bounded.

A file is read only when it is a regular file (a FIFO or a device is refused, never waited on)
and only up to ``MAX_BYTES``. Anchors and aliases are refused: an alias "bomb" expands a few
lines into gigabytes, and none of these files needs them. So is nesting deeper than
``MAX_DEPTH``, which PyYAML would otherwise follow into a RecursionError. Every failure is a
``YamlError`` with one line naming the line and the problem, quoting at most a few characters of
the file; a missing file is ``FileNotFoundError``, for callers to whom that means "defaults".
PyYAML is imported by the first parse, not with this module: a start-up with no config file, or
a caller that only quotes a value in a message, does not pay for it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from vramtop.regular_file import NotRegularFile, open_regular

MAX_BYTES = 1 << 20  # the shipped themes and a full config are a few KB
MAX_DEPTH = 32


class YamlError(Exception):
    """A YAML file vramtop cannot use; the message is one line (without the file's name)."""


def one_line(text: object, limit: int = 80) -> str:
    """``text`` from a file or a parser, safe for a one-line message: printable, cut short."""
    flat = "".join(c if c.isprintable() else " " for c in str(text))
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def quote(value: object, limit: int = 24) -> str:
    """A value read from a file, for a message: its repr, at most ``limit`` characters."""
    return one_line(repr(value), limit)


@cache
def _plain_loader() -> type:
    """SafeLoader without anchors and aliases, and with a bound on nesting (made once, on first use)."""
    import yaml

    class PlainLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise yaml.composer.ComposerError(None, None, "anchors and aliases (& and *) are not allowed",
                                                  event.start_mark)
            if self._depth >= MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  event.start_mark)
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return PlainLoader


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The text of a regular file of at most ``max_bytes``; YamlError in one line otherwise."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise YamlError(f"cannot read it ({exc.strerror or exc})") from None
    except NotRegularFile as exc:
        raise YamlError(str(exc)) from None
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise YamlError(f"cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise YamlError(f"larger than {max_bytes // 1024:,} KiB, more than any vramtop file needs")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not a text file (byte {exc.start} is not UTF-8)") from None


def parse(text: str) -> Any:
    """Plain YAML data from ``text``; YamlError in one line for anything else."""
    import yaml

    loader = None
    try:
        loader = _plain_loader()(text)
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(line + one_line(problem)) from None
    except RecursionError:  # a guard above the depth bound; not expected
        raise YamlError(f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def load(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    """The plain data of the YAML file at ``path`` (see the module's contract)."""
    return parse(read_text(path, max_bytes))
