"""Opening a file someone else made: only a regular file, and never waiting to find out.

vramtop runs as root and reads files whose paths users give it or control (recordings, config,
themes, the what-if state, the spec cache, a Ray token, a basic-auth file). A FIFO given as one would block the reader forever and ``/dev/zero``
would never end, so the file is opened without blocking and refused unless it is a regular file,
before a byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegularFile(Exception):
    """The path names a folder, a FIFO, a device or a socket; the message says which kind."""


def open_regular(path: str | Path) -> int:
    """A descriptor for reading ``path``; ``OSError`` when it cannot be opened, ``NotRegularFile``
    ("a folder, not a file" or "not a regular file") when it is no regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile("a folder, not a file" if stat.S_ISDIR(mode) else "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd
