"""Containers from cgroup paths, and the hidden-PID notice proved inside a real PID namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from telemetry_support import snapshot_of
from vramtop.telemetry import containers
from vramtop.telemetry.poller import TelemetryPoller

CID = "3f2a9c1b7d4e" + "a" * 52
POD = "0b6d2f4e-8c1a-4b3d-9e2f-1a2b3c4d5e6f"


@pytest.mark.parametrize("cgroup, runtime, pod_uid", [
    (f"0::/system.slice/docker-{CID}.scope\n", "docker", None),
    (f"12:memory:/docker/{CID}\n11:cpu:/docker/{CID}\n", "docker", None),
    (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD.replace('-', '_')}.slice/"
     f"cri-containerd-{CID}.scope\n", "containerd", POD),
    (f"0::/kubepods.slice/kubepods-pod{POD.replace('-', '_')}.slice/crio-{CID}.scope\n", "cri-o", POD),
    (f"4:memory:/kubepods/besteffort/pod{POD}/{CID}\n", "containerd", POD),
    (f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope/container\n", "podman", None),
])
def test_cgroup_paths_name_the_container(cgroup, runtime, pod_uid):
    info = containers.parse_cgroup(cgroup)
    assert (info.runtime, info.container_id, info.pod_uid) == (runtime, CID, pod_uid)
    assert info.label == (f"pod {POD[:8]}" if pod_uid else f"{runtime} {CID[:12]}")


@pytest.mark.parametrize("cgroup", ["0::/\n", "0::/user.slice/user-1000.slice/session-3.scope\n", ""])
def test_host_processes_have_no_container(cgroup):
    assert containers.parse_cgroup(cgroup) is None


def test_this_test_process_is_read_from_proc():
    # the runner may itself be in a container; the reader must agree with the parser either way
    import os

    with open(f"/proc/{os.getpid()}/cgroup") as fh:
        expected = containers.parse_cgroup(fh.read())
    assert containers.read_container(os.getpid()) == expected


_INSIDE = textwrap.dedent("""
    import json, sys
    from vramtop.snapshot import GpuInfo, GpuProcess, NodeSnapshot
    from vramtop.sources.processes import ProcessReader
    from vramtop.telemetry.containers import in_own_pid_namespace
    from vramtop.telemetry.poller import TelemetryPoller
    pid = int(sys.argv[1])
    hosts, hidden, ancestors, errors = ProcessReader().read({pid})
    snap = NodeSnapshot(timestamp=1.0, hostname="c", source="test",
        gpus=(GpuInfo(0, "NVIDIA A10", "GPU-0", 23028, 513, 5000, 17515),),
        gpu_processes=(GpuProcess(pid, 0, 5000, host=hosts.get(pid), hidden_reason=hidden.get(pid)),))
    tel = TelemetryPoller(environ={}).poll(snap)
    print(json.dumps({"own": in_own_pid_namespace(), "hidden": pid in hidden,
                      "used_mib": snap.gpu_processes[0].used_mib, "notices": list(tel.notices)}))
""")


def test_hidden_pids_in_a_real_pid_namespace_get_one_notice_with_the_fix():
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    gpu_user = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", _INSIDE,
                              str(gpu_user.pid)], capture_output=True, text=True, timeout=60)
        if run.returncode != 0 and ("Operation not permitted" in run.stderr or "unshare failed" in run.stderr):
            pytest.skip(f"the kernel refuses a new PID namespace here: {run.stderr.strip().splitlines()[-1]}")
        assert run.returncode == 0, run.stderr
        inside = json.loads(run.stdout)
        assert inside["own"] is True and inside["hidden"] is True and inside["used_mib"] == 5000
        (notice,) = inside["notices"]
        assert f"PID {gpu_user.pid}" in notice and "--pid=host" in notice and "hostPID: true" in notice

        # the same process seen from outside the namespace is named, so nothing is said
        outside = TelemetryPoller(environ={}).poll(snapshot_of({gpu_user.pid: (0, 5000)}))
        assert outside.notices == ()
    finally:
        gpu_user.kill()
        gpu_user.wait()


def test_no_notice_when_the_namespace_is_the_hosts_even_if_a_pid_is_gone():
    snap = snapshot_of({2**22 + 7: (0, 100)})  # a PID that does not exist anywhere
    assert snap.gpu_processes[0].host is None
    assert containers.hidden_pid_notice(snap, own_namespace=False) is None
    assert "--pid=host" in containers.hidden_pid_notice(snap, own_namespace=True)
