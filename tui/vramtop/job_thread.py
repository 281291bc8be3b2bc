"""A long-lived thread that runs the live view's recurring jobs, one at a time, asked for from the
UI thread: the samples of the node, and the side column's judging of the what-if pins.

``start(arg)`` runs ``work(arg)`` on the thread (blocking reads, analysis) and hands what it
returns to ``deliver`` (which posts it to the UI: Textual's ``post_message`` may be called from
any thread). A request while a job runs is refused, so jobs never overlap, even when a driver
call hangs. ``work`` must not raise: a failure is something it returns, for ``deliver`` to show.

One thread for the life of the view rather than a Textual thread worker a job: each worker ended
in a reference cycle (the worker and the task whose context names it as the active worker) that
only a full collection frees, and the app keeps those to about one a minute (see
``app.FULL_COLLECT_S``); at five samples a second that was some 300 cycles, and the snapshots
they held, between passes. A worker also cost the UI thread a task, a future and two state-change
messages a job.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


class JobThread:
    """``start(arg)`` runs ``deliver(work(arg))`` on the thread unless a job is under way."""

    def __init__(self, name: str, work: Callable[[Any], Any], deliver: Callable[[Any], Any]) -> None:
        self._work, self._deliver = work, deliver
        self._wake = threading.Condition()
        self._asked: tuple[Any] | None = None
        self._busy = False  # from a request accepted until its result is handed over
        self._stopped = False
        threading.Thread(target=self._run, name=f"vramtop {name}", daemon=True).start()

    @property
    def busy(self) -> bool:
        """A job is asked for or under way."""
        return self._busy

    def start(self, arg: Any) -> bool:
        """Ask for a job on ``arg``; False (and nothing done) while one is under way."""
        with self._wake:
            if self._busy or self._stopped:
                return False
            self._busy, self._asked = True, (arg,)
            self._wake.notify()
            return True

    def stop(self) -> None:
        """No job after the one under way, if any; its result is still handed over."""
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._asked is None and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                (arg,), self._asked = self._asked, None
            result = self._work(arg)
            # Free before the result is handed over: whoever it reaches may ask for the next at once.
            with self._wake:
                self._busy = False
            self._deliver(result)
