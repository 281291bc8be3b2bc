"""The ``vramtop watch --when`` grammar, what a rule says of one snapshot, and its episodes. Pure.

::

    RULE      := CONDITION [ "for" DURATION ]
    CONDITION := FIGURE OP NUMBER
               | "candidate:" NAME "turns" ( "green" | "yellow" | "red" )
    FIGURE    := ( "gpu" | "gpu" INDEX | "node" ) "." FIELD
    FIELD     := free_mib | used_mib | reserved_mib | total_mib            (gpu and node)
               | utilization_pct | temperature_c | power_w                 (gpu only)
    OP        := "<" | "<=" | ">" | ">=" | "==" | "!="
    DURATION  := NUMBER ( "s" | "m" | "h" )

``gpu.FIELD`` holds when any GPU's figure holds (a lost GPU, or one without that figure, never
does); ``gpu2.FIELD`` looks at GPU 2 alone. A candidate is one of the config file's
``candidates`` by its name. A rule fires once per episode: when it has held for the whole
DURATION (at once without one), and again only after it stopped holding and held anew. A rule
that already holds when watching starts has an episode in progress: it fires.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Callable

from vramtop.fit import GREEN, RED, YELLOW
from vramtop.snapshot import NodeSnapshot


class RuleError(ValueError):
    """A rule that does not parse; the message is one line saying where and what is expected."""


GPU_FIELDS = ("free_mib", "used_mib", "reserved_mib", "total_mib", "utilization_pct", "temperature_c", "power_w")
NODE_FIELDS = ("free_mib", "used_mib", "reserved_mib", "total_mib")
VERDICTS = (GREEN, YELLOW, RED)
OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
}
_UNITS = {"s": 1, "m": 60, "h": 3600}
_NUMBER = r"-?\d+(?:\.\d+)?"
_FIGURE = re.compile(rf"(?P<scope>gpu|node)(?P<index>\d+)?\.(?P<field>\w+)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>\S+)")
_CANDIDATE = re.compile(r"candidate:(?P<name>\S+)\s+turns\s+(?P<verdict>\S+)")
_FOR = re.compile(r"(?P<condition>.*?)\s+for\s+(?P<duration>.+)")
_DURATION = re.compile(rf"(?P<amount>{_NUMBER})(?P<unit>[smh])")


@dataclass(frozen=True)
class Rule:
    """One parsed rule: a figure compared with a number, or a candidate's verdict."""

    text: str
    for_s: float = 0.0
    scope: str = "gpu"  # "gpu", "node" or "candidate"
    gpu: int | None = None  # gpuN: that GPU alone
    field: str = ""
    op: str = ""
    threshold: float = 0.0
    candidate: str = ""
    verdict: str = ""

    def check(self, snapshot: NodeSnapshot, verdict: str | None = None) -> tuple[bool, str]:
        """Whether the rule's condition holds on ``snapshot`` (``verdict``: the candidate's, for
        a candidate rule), and one line saying what was seen."""
        if self.scope == "candidate":
            return verdict == self.verdict, f"candidate {self.candidate} is {verdict or 'not judged'}"
        compare = OPS[self.op]
        if self.scope == "node":
            value = getattr(snapshot, self.field)
            return compare(value, self.threshold), f"node {self.field} {value:g}"
        seen = []
        for g in snapshot.gpus:
            if g.lost or (self.gpu is not None and g.index != self.gpu):
                continue
            value = getattr(g, self.field)
            if value is not None and compare(value, self.threshold):
                seen.append(f"GPU {g.index} {self.field} {value:g}")
        if seen:
            return True, ", ".join(seen)
        where = f"GPU {self.gpu}" if self.gpu is not None else "no GPU"
        return False, f"{where}: {self.field} {self.op} {self.threshold:g} does not hold"


def _duration(duration: str, text: str) -> float:
    m = _DURATION.fullmatch(duration)
    if m is None or float(m["amount"]) < 0:
        raise RuleError(f"rule {text!r}: 'for' wants a duration like 30s, 2m or 1h, got {duration!r}")
    return float(m["amount"]) * _UNITS[m["unit"]]


def parse(text: str, candidates: tuple[str, ...] = ()) -> Rule:
    """A rule from its text; raises ``RuleError`` (one line) naming what is wrong.
    ``candidates``: the names a candidate rule may use."""
    body = " ".join(text.split())
    for_s = 0.0
    if m := _FOR.fullmatch(body):
        body, for_s = m["condition"], _duration(m["duration"], text)
    if m := _CANDIDATE.fullmatch(body):
        name, verdict = m["name"], m["verdict"].lower()
        if verdict not in VERDICTS:
            raise RuleError(f"rule {text!r}: a candidate turns green, yellow or red, not {m['verdict']!r}")
        if name not in candidates:
            known = ", ".join(candidates) if candidates else "none: add 'candidates:' to the config file"
            raise RuleError(f"rule {text!r}: no candidate named {name!r} (known: {known})")
        return Rule(text, for_s, "candidate", candidate=name, verdict=verdict)
    if m := _FIGURE.fullmatch(body):
        scope, field = m["scope"], m["field"]
        known = GPU_FIELDS if scope == "gpu" else NODE_FIELDS
        if m["index"] is not None and scope == "node":
            raise RuleError(f"rule {text!r}: 'node' takes no index (gpu2.free_mib names one GPU)")
        if field not in known:
            raise RuleError(f"rule {text!r}: {scope} has no figure {field!r} (known: {', '.join(known)})")
        if not re.fullmatch(_NUMBER, m["value"]):
            raise RuleError(f"rule {text!r}: {field} is compared with a number, got {m['value']!r}")
        return Rule(text, for_s, scope, int(m["index"]) if m["index"] is not None else None, field, m["op"],
                    float(m["value"]))
    raise RuleError(f"rule {text!r}: expected FIGURE OP NUMBER [for DURATION] (e.g. 'gpu.free_mib < 1024 for 2m') "
                    "or 'candidate:NAME turns green|yellow|red'")


class Episode:
    """When a rule has held since, and whether this episode already fired."""

    def __init__(self, for_s: float) -> None:
        self.for_s = for_s
        self.since: float | None = None
        self.fired = False

    def step(self, now: float, holds: bool) -> bool:
        """Feed one observation; True exactly once per episode, when it has held ``for_s``."""
        if not holds:
            self.since, self.fired = None, False
            return False
        if self.since is None:
            self.since = now
        if not self.fired and now - self.since >= self.for_s:
            self.fired = True
            return True
        return False
