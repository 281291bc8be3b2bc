"""What ``vramtop watch`` does on each sample: check the rule, and act once per episode."""

from __future__ import annotations

import sys
import time
from typing import Any

from vramtop.exporter import notify, rules
from vramtop.exporter.candidates import judge


def say(message: str) -> None:
    print(f"vramtop watch: {message}", file=sys.stderr, flush=True)


class Watcher:
    """One rule over successive snapshots, and what to do when it fires."""

    def __init__(self, rule: rules.Rule, candidates: tuple = (), argv: list[str] | None = None,
                 hook: notify.Webhook | None = None) -> None:
        self.rule = rule
        self.candidate = tuple(c for c in candidates if c.name == rule.candidate)
        self.argv = argv
        self.hook = hook
        self.episode = rules.Episode(rule.for_s)
        self.children: list = []

    def observe(self, snapshot, now: float) -> dict[str, Any] | None:
        """Check ``snapshot``; the event when the rule fires on it, else None."""
        verdict = judge(self.candidate, snapshot)[0].result.verdict if self.candidate else None
        holds, detail = self.rule.check(snapshot, verdict)
        if not self.episode.step(now, holds):
            return None
        since = time.time() - (now - self.episode.since)
        return {"rule": self.rule.text, "detail": detail, "hostname": snapshot.hostname,
                "since": round(since, 3), "fired_at": round(time.time(), 3)}

    def act(self, event: dict[str, Any]) -> None:
        """Print, run, post; a failure is one line and the watch goes on."""
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {event['rule']}: {event['detail']}", flush=True)
        if self.argv:
            try:
                self.children.append(notify.run_command(self.argv, event))
            except notify.NotifyError as exc:
                say(str(exc))
        if self.hook is not None:
            try:
                notify.post(self.hook, event)
            except notify.NotifyError as exc:
                say(str(exc))

    def reap(self) -> None:
        """Collect finished commands, saying so when one failed."""
        for child in [c for c in self.children if c.poll() is not None]:
            self.children.remove(child)
            if child.returncode:
                say(f"the command {self.argv[0]} exited with status {child.returncode}")
