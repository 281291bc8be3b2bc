"""The terminal driver: Textual's POSIX driver with an input thread that sleeps until a key comes.

Textual's input thread wakes ten times a second, key or no key, to time out a lone Escape: on a
node at rest that was a quarter of vramtop's CPU (``bench/race_nvitop.sh``). This one waits on the
terminal with no timeout, except in the second after input came (a key sequence may be half
read: then it wakes every escape delay, as Textual's does, so a lone Escape is still a key), and
the driver's exit event wakes it through a pipe, so quitting does not wait either.
"""

from __future__ import annotations

import os
import selectors
import threading
import time
from codecs import getincrementaldecoder

from textual import constants
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

AFTER_INPUT_S = 1.0  # how long after input the thread keeps waking to finish a half-read sequence


class _WakingEvent(threading.Event):
    """An event whose ``set`` also writes to a pipe, for a thread blocked in ``select``."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def set(self) -> None:
        super().set()
        try:
            os.write(self._wake_fd, b"\0")
        except OSError:  # the pipe is full (it is already awake) or closed (it has ended)
            pass


class QuietDriver(LinuxDriver):
    """``LinuxDriver`` whose input thread blocks until input, or its exit event, comes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.exit_event = _WakingEvent(self._wake_w)

    def run_input_thread(self) -> None:
        """Read the terminal and post its events; as Textual's, less the idle wake-ups."""
        selector = selectors.DefaultSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        last_input = -AFTER_INPUT_S

        def handle(ready: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            nonlocal last_input
            for key, _ in ready:
                if key.fd == self._wake_r:
                    while True:  # empty the pipe; the exit event is what counts
                        try:
                            if not os.read(self._wake_r, 64):
                                break
                        except BlockingIOError:
                            break
                    continue
                raw = os.read(self.fileno, 4096)
                if not raw:  # the terminal closed: nothing more will come from it
                    selector.unregister(self.fileno)
                    continue
                last_input = time.monotonic()
                for event in parser.feed(decode(raw, final=final)):
                    self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                recent = time.monotonic() - last_input < AFTER_INPUT_S
                handle(selector.select(constants.ESCAPE_DELAY if recent else None))
            handle(selector.select(0), final=True)
        finally:
            selector.close()
            try:
                for _ in parser.feed(""):
                    pass
            except (EOFError, ParseError):  # input ended mid-sequence: nothing more to post
                pass
