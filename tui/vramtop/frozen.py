"""Copies of frozen dataclass records with a few fields changed, for the per-process paths of a tick.

On a busy node every process's memory moves each tick, and the live source and the grouping each
make a record or two per process from the last tick's (the process table, one per row it shows).
``dataclasses.replace`` calls the class's ``__init__`` (a guarded assignment per field, its
defaults and checks again); a record whose fields are already known good needs only its field
table copied and the changes set.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

_set = object.__setattr__  # past a frozen dataclass's guard


def fresh(record: T, **changes) -> T:
    """A copy of ``record`` (a frozen dataclass with no ``__slots__``) with ``changes``; its other
    fields are taken as they are, not checked again."""
    fields = record.__dict__.copy()  # the table copied at once, not entry by entry
    fields.update(changes)
    copy = object.__new__(type(record))
    _set(copy, "__dict__", fields)
    return copy
