"""One line under a serving instance: what its engine says, and a sparkline of its throughput.

Mount one per instance and feed it from each snapshot's telemetry::

    line = TelemetryLine(id=f"tel-{safe_id(instance.key)}")
    ...
    line.show(snapshot.telemetry.for_instance(instance.key) if snapshot.telemetry else None)

An unreachable endpoint is shown dimmed, never as an error.
"""

from __future__ import annotations

import re

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from vramtop.telemetry.model import OK, InstanceTelemetry


def safe_id(key: str) -> str:
    """A widget id for an instance key (``vllm:4000`` -> ``vllm-4000``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)


class TelemetryLine(Widget):
    """The instance's summary line, with generated tok/s as a sparkline once there are rates."""

    DEFAULT_CSS = """
    TelemetryLine { height: 1; layout: horizontal; }
    TelemetryLine > #tel-summary { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    TelemetryLine > #tel-spark { width: 16; height: 1; margin-left: 1; }
    TelemetryLine.-quiet > #tel-summary { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="tel-summary", markup=False)
        yield Sparkline([], id="tel-spark")

    def on_mount(self) -> None:
        self.query_one("#tel-spark").display = False

    def show(self, telemetry: InstanceTelemetry | None) -> None:
        """Show ``telemetry`` (None: this instance's engine is not polled)."""
        summary = self.query_one("#tel-summary", Static)
        spark = self.query_one("#tel-spark", Sparkline)
        if telemetry is None:
            summary.update("metrics: not polled")
            self.set_class(True, "-quiet")
            spark.display = False
            return
        summary.update(telemetry.summary)
        self.set_class(telemetry.status != OK, "-quiet")
        history = list(telemetry.generation_history)
        spark.display = len(history) >= 2
        if spark.display:
            spark.data = history
