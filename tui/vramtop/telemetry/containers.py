"""Which container each process runs in, and whether vramtop itself is boxed in a PID namespace.

NVML reports host PIDs. In a container with its own PID namespace those PIDs mean nothing (the
driver "does not support pid-namespaces"), so the processes look hidden; the fix is to share the
host's: ``docker run --pid=host`` or Kubernetes ``hostPID: true``. The other way round, from the
host, ``/proc/PID/cgroup`` names the container (Docker, containerd, CRI-O, Podman) and the
Kubernetes pod a GPU process belongs to.
"""

from __future__ import annotations

import os
import re

from vramtop.snapshot import NodeSnapshot
from vramtop.telemetry.model import ContainerInfo

# The initial PID namespace's inode number (PROC_PID_INIT_INO), stable since Linux 3.8.
INIT_PID_NS_INODE = 0xEFFFFFFC

_ID = r"([0-9a-f]{64})"
_PATTERNS = (
    (re.compile(rf"/docker[-/]{_ID}(?:\.scope)?$"), "docker"),
    (re.compile(rf"/cri-containerd[-:]{_ID}(?:\.scope)?$"), "containerd"),
    (re.compile(rf"/crio[-:]{_ID}(?:\.scope)?$"), "cri-o"),
    (re.compile(rf"/libpod-{_ID}(?:\.scope)?(?:/container)?$"), "podman"),
    (re.compile(rf"/kubepods[^\s]*/{_ID}$"), "containerd"),  # cgroupfs driver: the bare ID
)
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


def parse_cgroup(text: str) -> ContainerInfo | None:
    """The container named by the contents of ``/proc/PID/cgroup``; None on the bare host."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1].strip()
        for pattern, runtime in _PATTERNS:
            if m := pattern.search(path):
                pod = _POD_UID.search(path)
                pod_uid = pod.group(1).replace("_", "-") if pod and "kubepods" in path else None
                return ContainerInfo(runtime=runtime, container_id=m.group(1), pod_uid=pod_uid)
    return None


def read_container(pid: int, proc: str = "/proc") -> ContainerInfo | None:
    """The container of ``pid``; for a Kubernetes pod also its name (HOSTNAME in its
    environment, readable as root or as the same user). None when not in a container or not
    readable."""
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as fh:
            info = parse_cgroup(fh.read())
    except OSError:
        return None
    if info is None or info.pod_uid is None:
        return info
    try:
        with open(f"{proc}/{pid}/environ", "rb") as fh:
            env = dict(kv.split(b"=", 1) for kv in fh.read().split(b"\0") if b"=" in kv)
    except OSError:
        return info
    name = env.get(b"HOSTNAME")
    return ContainerInfo(info.runtime, info.container_id, info.pod_uid, name.decode(errors="replace")) if name else info


def in_own_pid_namespace(proc: str = "/proc") -> bool | None:
    """Whether vramtop runs in a PID namespace other than the host's (None: cannot tell).

    The initial namespace has a fixed inode; where /proc hides it, the kernel thread daemon
    (PID 2, ``kthreadd``), which only the initial namespace shows, decides.
    """
    try:
        return os.stat(f"{proc}/self/ns/pid").st_ino != INIT_PID_NS_INODE
    except OSError:
        pass
    try:
        with open(f"{proc}/2/comm", encoding="utf-8") as fh:
            return fh.read().strip() != "kthreadd"
    except OSError:
        return True if os.path.isdir(f"{proc}/self") else None


def hidden_pid_notice(snapshot: NodeSnapshot, own_namespace: bool | None) -> str | None:
    """One line when GPU processes are hidden because vramtop sits in its own PID namespace."""
    hidden = [p for p in snapshot.gpu_processes if p.host is None]
    if not hidden or not own_namespace:
        return None
    pids = sorted({p.pid for p in hidden})
    total = len({p.pid for p in snapshot.gpu_processes})
    shown = ", ".join(str(p) for p in pids[:4]) + (" …" if len(pids) > 4 else "")
    return (
        f"vramtop runs in its own PID namespace, so {len(pids)} of {total} GPU processes "
        f"(PID {shown}) cannot be named; their memory is still shown by PID. "
        "Run it in the host's PID namespace: docker run --pid=host, or hostPID: true in the Kubernetes pod spec"
    )

