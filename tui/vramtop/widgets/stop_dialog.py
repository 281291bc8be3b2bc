"""The confirmation before stopping a process or a serving instance.

It names every process that stops (PID and title) and how much memory each GPU gets back, sends SIGTERM on "y", waits the
grace period while the processes end, and only then offers SIGKILL, which needs its own key
("K") because it drops the requests in flight. Read-only mode and unstoppable targets show why
and offer nothing. The app pushes it and gets a ``StopOutcome`` back::

    plan = actions.plan_for_instance(snapshot, instance)      # or plan_for_process(snapshot, pid)
    self.push_screen(StopDialog(plan, self.stopper), self.on_stop_outcome)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from vramtop.actions import GRACE_S, READONLY_MESSAGE, StopPlan, Stopper, Target


@dataclass(frozen=True)
class StopOutcome:
    """``action``: "stopped", "killed", "cancelled", "left running" or "failed"."""

    action: str
    message: str


def freed_text(plan: StopPlan) -> str:
    """"Frees GPU 0: 20,730 MiB · GPU 1: 20,730 MiB (41,460 MiB in all)"."""
    if not plan.per_gpu_mib:
        return "Frees no GPU memory that the driver reports."
    per_gpu = " · ".join(f"GPU {g}: {mib:,} MiB" for g, mib in sorted(plan.per_gpu_mib.items()))
    total = f" ({plan.total_mib:,} MiB in all)" if len(plan.per_gpu_mib) > 1 else ""
    return f"Frees {per_gpu}{total}"


MAX_NAMED = 12  # processes named one per line; beyond, a count


def target_text(target: Target) -> str:
    """"pid 4101 VLLM::Worker_TP0": the PID and what the process calls itself."""
    return f"pid {target.pid} {target.title[:48]}".rstrip()


class StopDialog(ModalScreen[StopOutcome]):
    """SIGTERM after one confirmation, SIGKILL after a second, nothing in read-only mode."""

    DEFAULT_CSS = """
    StopDialog { align: center middle; }
    StopDialog > #stop-box { width: 72; max-width: 100%; height: auto; border: thick $error; background: $surface; padding: 0 1; }
    StopDialog #stop-title { text-style: bold; }
    StopDialog #stop-status { color: $warning; }
    StopDialog #stop-buttons { height: auto; align-horizontal: right; }
    StopDialog Button { margin-left: 1; min-width: 10; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("n", "cancel", "Cancel", show=False),
        Binding("y", "confirm", "Stop (SIGTERM)"),
        Binding("K", "kill", "Kill (SIGKILL)"),
    ]

    def __init__(self, plan: StopPlan, stopper: Stopper, grace_s: float = GRACE_S, poll_s: float = 0.2) -> None:
        super().__init__()
        self.plan = plan
        self.stopper = stopper
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.stage = "confirm"  # confirm -> waiting -> stubborn -> killing; or refused
        self._sent_at = 0.0
        if stopper.readonly or plan.refusal:
            self.stage = "refused"

    def compose(self) -> ComposeResult:
        lines = [freed_text(self.plan)]
        if len(self.plan.term) > 1:
            lines.append(f"Sends SIGTERM to these {len(self.plan.term)} processes:")
            lines += [f"  {target_text(t)}" for t in self.plan.term[:MAX_NAMED]]
            if len(self.plan.term) > MAX_NAMED:
                lines.append(f"  and {len(self.plan.term) - MAX_NAMED} more")
        else:
            lines.append(f"Sends SIGTERM to {', '.join(map(target_text, self.plan.term)) or 'nothing'}.")
        lines.append(f"{len(self.plan.watch)} process(es) must end.")
        if self.plan.note:
            lines.append(self.plan.note)
        with Vertical(id="stop-box"):
            yield Static(f"Stop {self.plan.label}?", id="stop-title", markup=False)
            yield Static("\n".join(lines), id="stop-body", markup=False)
            yield Static(self._refusal() if self.stage == "refused" else "y: stop · Esc: cancel",
                         id="stop-status", markup=False)
            with Horizontal(id="stop-buttons"):
                yield Button("Stop (SIGTERM)", id="term", variant="error", disabled=self.stage == "refused")
                yield Button("Kill (SIGKILL)", id="kill", variant="error")
                yield Button("Close" if self.stage == "refused" else "Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#kill").display = False
        self.query_one("#cancel" if self.stage == "refused" else "#term").focus()

    def _refusal(self) -> str:
        return READONLY_MESSAGE if self.stopper.readonly else (self.plan.refusal or "")

    def _status(self, text: str) -> None:
        self.query_one("#stop-status", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"term": self.action_confirm, "kill": self.action_kill, "cancel": self.action_cancel}[event.button.id]()

    def action_cancel(self) -> None:
        if self.stage == "stubborn":
            self.dismiss(StopOutcome("left running", f"still running: pid {', '.join(map(str, self.stopper.remaining(self.plan)))}"))
        elif self.stage in ("confirm", "refused"):
            self.dismiss(StopOutcome("cancelled", self._refusal() if self.stage == "refused" else "nothing was stopped"))

    def action_confirm(self) -> None:
        if self.stage != "confirm":
            return
        result = self.stopper.terminate(self.plan)
        if not result.ok:
            self.stage = "refused"
            self.dismiss(StopOutcome("failed", result.message))
            return
        self.stage = "waiting"
        self._sent_at = time.monotonic()
        self.query_one("#term", Button).disabled = True
        self._status(f"{result.message}; waiting up to {self.grace_s:g} s for the processes to end…")
        self.set_interval(self.poll_s, self._check)

    def _check(self) -> None:
        if self.stage not in ("waiting", "stubborn", "killing"):
            return
        left = self.stopper.remaining(self.plan)
        if not left:
            action = "killed" if self.stage == "killing" else "stopped"
            self.dismiss(StopOutcome(action, f"{self.plan.label} {action}. {freed_text(self.plan)}"))
            self.stage = "done"
            return
        if self.stage == "waiting" and time.monotonic() - self._sent_at >= self.grace_s:
            self.stage = "stubborn"
            self.query_one("#kill").display = True
            self.query_one("#kill", Button).focus()
            self.query_one("#cancel", Button).label = "Leave running"
            self._status(f"Still running after {self.grace_s:g} s: pid {', '.join(map(str, left))}. "
                         "K: SIGKILL (drops requests in flight) · Esc: leave running")

    def action_kill(self) -> None:
        if self.stage != "stubborn":
            return
        result = self.stopper.kill(self.plan, confirmed=True)
        if not result.ok:
            self.dismiss(StopOutcome("failed", result.message))
            return
        self.stage = "killing"
        self._status(f"{result.message}; waiting for the processes to go…")
