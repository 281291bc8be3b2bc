"""Launch reservations: the node-wide record of memory promised to engines that are starting.

Two engines started at once each see the other's memory as free and one fails after minutes of
loading. ``vramtop launch`` therefore judges and records under one lock: in the runtime
directory (``/run/vramtop`` as root, else ``$XDG_RUNTIME_DIR/vramtop``, else
``/tmp/vramtop-UID``) (or ``$VRAMTOP_RUNTIME_DIR``; ``paths.runtime_dir``) the file ``lock`` is held with ``flock`` while a launch reads the node and
the reservations and writes its own, ``<launcher pid>.json``: the model, MiB per GPU still
promised, and when the promise ends. A launcher shrinks its record as its process's memory
appears in NVML and removes it once the memory has settled, the process exited, or the hold
timed out.

vramtop runs as root on shared nodes, so everything here is read as hostile: the directory must
be a real directory owned by this user and writable by no one else; each record is opened with
``O_NOFOLLOW``, must be a regular file of this user, and is read to at most ``MAX_BYTES``. A
record that fails any check is ignored with one notice naming the file and why. A record whose
launcher is dead (or whose hold has ended) is stale: it counts for nothing and the next launch
removes it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from vramtop import paths

MAX_BYTES = 4096
MAX_FILES = 256
_NAME = re.compile(r"^(\d{1,9})\.json$")
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class ReservationError(Exception):
    """The runtime directory cannot be used safely (one line: which and why)."""


@dataclass(frozen=True)
class Reservation:
    """Memory promised to one launch: ``gpus`` maps a GPU index (as text) to MiB still promised."""

    pid: int  # the launcher
    model: str
    gpus: Mapping[str, int]
    since: float
    until: float
    child: int | None = None

    def to_json(self) -> dict:
        return {"pid": self.pid, "child": self.child, "model": self.model, "gpus": dict(self.gpus),
                "since": self.since, "until": self.until}


def check_dir(path: Path) -> str | None:
    """Why ``path`` is unsafe to trust (None: a directory of this user that only it can write)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid != os.geteuid():
        return f"{path} belongs to uid {st.st_uid}, not to this user"
    if st.st_mode & 0o022:
        return f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def ensure_dir(path: Path | None = None) -> Path:
    """The runtime directory, created (mode 700) if missing; ``ReservationError`` if unsafe."""
    path = path or paths.runtime_dir()
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ReservationError(f"cannot create {path}: {exc.strerror}") from None
    why = check_dir(path)
    if why:
        raise ReservationError(why)
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the node-wide admission lock of the runtime directory ``path``."""
    try:
        fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ReservationError(f"cannot open {path / 'lock'}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise ReservationError(f"{path / 'lock'} is not a regular file of this user")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse(raw: bytes, pid: int) -> Reservation:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a JSON reservation") from None
    if not isinstance(data, dict) or data.get("pid") != pid:
        raise ValueError("its pid does not match its name")
    gpus = data.get("gpus")
    model, since, until, child = data.get("model"), data.get("since"), data.get("until"), data.get("child")
    if not (isinstance(gpus, dict) and len(gpus) <= 64
            and all(isinstance(k, str) and len(k) <= 16 and type(v) is int and 0 <= v < 1 << 40
                    for k, v in gpus.items())):
        raise ValueError("'gpus' is not a map of GPU to MiB")
    if not isinstance(model, str) or len(model) > 512:
        raise ValueError("'model' is not a short text")
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (since, until)):
        raise ValueError("'since' and 'until' are not times")
    if child is not None and type(child) is not int:
        raise ValueError("'child' is not a PID")
    return Reservation(pid, model, dict(gpus), float(since), float(until), child)


def read(path: Path, now: float | None = None) -> tuple[list[Reservation], list[int], list[str]]:
    """The live reservations in ``path``, the launcher PIDs of stale ones, and one notice per
    file ignored for being unsafe or malformed."""
    now = time.time() if now is None else now
    live: list[Reservation] = []
    stale: list[int] = []
    notices: list[str] = []
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        return [], [], [f"cannot list {path}: {exc.strerror}"]
    names = [n for n in names if _NAME.match(n)]
    if len(names) > MAX_FILES:
        notices.append(f"{len(names) - MAX_FILES} reservation(s) in {path} left unread (more than {MAX_FILES})")
        names = names[:MAX_FILES]
    for name in names:
        pid = int(_NAME.match(name).group(1))
        try:
            r = _read_one(path / name, pid)
        except ValueError as exc:
            notices.append(f"ignored reservation {path / name}: {exc}")
            continue
        if r is None:
            continue
        if not _alive(r.pid) or now > r.until:
            stale.append(r.pid)
        else:
            live.append(r)
    return live, stale, notices


def _read_one(file: Path, pid: int) -> Reservation | None:
    try:
        fd = os.open(file, _OPEN_FLAGS)
    except FileNotFoundError:
        return None  # removed since it was listed
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("it is a symbolic link") from None
        raise ValueError(exc.strerror) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_uid != os.geteuid():
            raise ValueError(f"it belongs to uid {st.st_uid}, not to this user")
        if st.st_size > MAX_BYTES:
            raise ValueError(f"{st.st_size:,} bytes, more than a reservation's {MAX_BYTES:,}")
        raw = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise ValueError(f"more than a reservation's {MAX_BYTES:,} bytes")
    return _parse(raw, pid)


def write(path: Path, r: Reservation) -> None:
    """Record (or replace) ``r`` atomically as ``<pid>.json``; hold the lock while calling."""
    tmp = path / f".{r.pid}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(r.to_json(), f)
    os.replace(tmp, path / f"{r.pid}.json")


def remove(path: Path, pid: int) -> None:
    """Drop the record of launcher ``pid`` (gone already is fine); hold the lock while calling."""
    try:
        os.unlink(path / f"{pid}.json")
    except FileNotFoundError:
        pass


def promised_mib(reservations: list[Reservation]) -> dict[str, int]:
    """MiB promised per GPU (index as text) over ``reservations``."""
    out: dict[str, int] = {}
    for r in reservations:
        for gpu, mib in r.gpus.items():
            out[gpu] = out.get(gpu, 0) + mib
    return out


def for_snapshot() -> tuple[tuple, list[str]]:
    """The live reservations of this user's runtime directory as the snapshot holds them, and a
    notice per record (or directory) ignored; nothing when there is no directory. Never writes:
    stale records are left to the next launch."""
    from vramtop.snapshot import LaunchReservation

    path = paths.runtime_dir()
    if not os.path.lexists(path):
        return (), []
    why = check_dir(path)
    if why:
        return (), [why]
    live, _, notices = read(path)
    out = tuple(
        LaunchReservation(r.model, tuple((int(g), mib) for g, mib in r.gpus.items() if g.isdigit() and mib > 0),
                          r.since, r.pid)
        for r in live)
    return tuple(r for r in out if r.gpu_mib), notices
