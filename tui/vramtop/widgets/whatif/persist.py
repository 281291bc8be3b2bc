"""The what-if panel's memory between runs: the form as last left, recent candidates and pins.

Kept in ``$XDG_STATE_HOME/vramtop/whatif.yaml`` (``~/.local/state`` when unset; ``paths``), read
as ``yamlfile`` reads YAML (bounded, no aliases) and written atomically. A file that cannot be
read, or holds anything but a state vramtop wrote, starts fresh with one line saying why.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from vramtop import paths, yamlfile
from vramtop.widgets.whatif.form import FormState

STATE_VERSION = 1
RECENT_LIMIT = 8  # how many last candidates are remembered


@dataclass(frozen=True)
class WhatIfMemory:
    """What the panel remembers: the form as last left, recent candidates (newest first), pins."""

    current: FormState | None = None
    recent: tuple[FormState, ...] = ()
    pins: tuple[FormState, ...] = ()

    def remember(self, form: FormState) -> "WhatIfMemory":
        """``form`` becomes current and the newest recent candidate (a model must be set)."""
        if not form.model.strip():
            return replace(self, current=form)
        recent = (form,) + tuple(f for f in self.recent if f != form)
        return replace(self, current=form, recent=recent[:RECENT_LIMIT])

    def pin(self, form: FormState) -> "WhatIfMemory":
        """Pin ``form`` (pinning it twice keeps one)."""
        if form in self.pins:
            return self
        return replace(self, pins=self.pins + (form,))

    def unpin(self, index: int) -> "WhatIfMemory":
        return replace(self, pins=self.pins[:index] + self.pins[index + 1:])

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "current": self.current.to_dict() if self.current else None,
            "recent": [f.to_dict() for f in self.recent],
            "pins": [f.to_dict() for f in self.pins],
        }

    @classmethod
    def from_dict(cls, data: Any) -> "WhatIfMemory":
        if not isinstance(data, dict):
            raise ValueError(f"the file must hold a mapping, not {type(data).__name__}")
        version = data.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"unknown version {yamlfile.quote(version)} (this vramtop writes {STATE_VERSION})")
        for key in ("recent", "pins"):
            if not isinstance(data.get(key, []), list):
                raise ValueError(f"'{key}' must be a list")
        current = data.get("current")
        return cls(
            current=FormState.from_dict(current) if current is not None else None,
            recent=tuple(FormState.from_dict(f) for f in data.get("recent", []))[:RECENT_LIMIT],
            pins=tuple(FormState.from_dict(f) for f in data.get("pins", [])),
        )


def load_memory(path: Path | None = None) -> tuple[WhatIfMemory, str | None]:
    """The remembered state, and a one-line warning when the file had to be ignored."""
    path = path or paths.whatif_state_file()
    try:
        return WhatIfMemory.from_dict(yamlfile.load(path)), None
    except FileNotFoundError:
        return WhatIfMemory(), None
    except (yamlfile.YamlError, ValueError) as exc:
        return WhatIfMemory(), f"{path}: {exc}; starting fresh"


def save_memory(memory: WhatIfMemory, path: Path | None = None) -> str | None:
    """Write atomically; a one-line warning if it cannot be written (the panel keeps working)."""
    path = path or paths.whatif_state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".whatif-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                yaml.safe_dump(memory.to_dict(), f, sort_keys=False, allow_unicode=True)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        return f"{path}: cannot save the what-if state ({exc.strerror or exc})"
    return None
