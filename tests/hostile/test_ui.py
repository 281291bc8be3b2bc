"""Hostile input to the live view and the command line: text that reads as markup from every
place outside text enters the screen (process titles, a Ray dashboard, a theme file, what a user
types), a driver that stops answering mid-run, bad numbers on the command line, a pipe closed
early, a crash, and read-only mode.

Process titles are real: children titled with setproctitle, listed by the stand-in NVML driver
under their real PIDs. The Ray dashboard is a real HTTP server on 127.0.0.1. The command line runs
as a child process, as a user runs it.
"""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time

import psutil
import pytest

import fakenvml
from engine_tree import Proc, proc_tree
from test_ray_client import SERVE_OK, Dashboard
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.ray.poller import RayPoller
from vramtop.sources.live import LiveSource
from vramtop.sources.demo import DemoSource
from vramtop.sources.replay import ReplaySource
from vramtop.widgets.gpu_bars import GpuPanel
from vramtop.widgets.jump_dialog import JumpDialog
from vramtop.widgets.process_table import ProcessTable
from vramtop.widgets.stop_dialog import StopDialog

CLOSER = "[/x]"  # a closing tag with nothing open: Textual's markup parser raises on it
BOLD = "[bold]oops[/bold] [link=https://example.invalid]click[/link]"


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    """Themes and the what-if state come from the test's own folders, never the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("NO_COLOR", raising=False)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(pilot, condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            await pilot.pause()
            return True
        await pilot.pause(0.05)
    return condition()


def notices(app) -> str:
    """The text of the notifications on screen, unwrapped."""
    return "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))


def live_app(**kwargs) -> tuple[VramtopApp, LiveSource]:
    """The app on this machine's (stand-in) driver; tests ask for samples with ``sample_now``."""
    source = LiveSource()
    return VramtopApp(source, Config(interval=3600.0), **kwargs), source


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---- markup from outside is shown as the text it is ----------------------------------------------


async def test_titles_with_markup_are_listed_highlighted_judged_and_stopped_as_text(fake_nvml):
    # Any local user picks their process's title (setproctitle, as vLLM and Ray do). A Serve
    # replica is titled ray::ServeReplica:<app>:<deployment> (python/ray/serve/_private/common.py,
    # DeploymentID.to_replica_actor_class_name; Ray starts it under the raylet, src/ray/raylet/
    # worker_pool.cc), so whoever names a deployment names the instance vramtop shows.
    procs = (
        Proc("raylet", argv=("raylet", "--node_ip_address=127.0.0.1")),
        Proc("replica", f"ray::ServeReplica:{CLOSER}:[bold]Dep[/bold]", "raylet", {0: 500, 1: 500}),
        Proc("engine", "VLLM::EngineCore", "replica", {0: 1_000}),
        Proc("w0", "VLLM::Worker_TP0", "engine", {0: 9_000}),
        Proc("w1", "VLLM::Worker_TP1", "engine", {1: 9_000}),
    )
    with fakenvml.spawn_processes(CLOSER, BOLD) as (closer, bold), proc_tree(*procs) as tree:
        for p in procs:
            for gpu, mib in p.gpu_mib.items():
                fake_nvml.add_process(gpu, tree.pid[p.name], mib)
        fake_nvml.add_process(2, closer, 1_500)
        fake_nvml.add_process(3, bold, 700)
        fake_nvml.write()
        app, source = live_app()
        try:
            async with app.run_test(size=(160, 45), notifications=True) as pilot:
                assert await wait_for(pilot, lambda: app.snapshot is not None and len(app.snapshot.gpu_processes) == 7)
                text = screen_text(app)
                assert CLOSER in text and "[bold]oops[/bold]" in text
                assert f"{CLOSER}/[bold]Dep[/bold]" in text  # the instance, named by its replica

                table = app.query_one(ProcessTable)
                table.move_cursor(row=[r.key for r in table.rows].index(f"p:{closer}:2"))
                await pilot.pause()
                assert f"pid {closer}" in screen_text(app) and CLOSER in app.query_one("#detail").text

                await pilot.press("slash", *CLOSER)  # a filter typed as markup keeps its row
                assert await wait_for(pilot, lambda: f"Processes · filter: {CLOSER}" in screen_text(app))
                kept = [r.key for r in table.rows]  # the title, and the instance its replica names
                assert f"p:{closer}:2" in kept and f"i:ray:{tree.pid['replica']}" in kept and f"p:{bold}:3" not in kept
                await pilot.press("escape")
                await pilot.pause()

                await pilot.press("w")  # the what-if panel lists the instance as one to stop
                assert await wait_for(pilot, lambda: app.query("#f-stopped"))
                stopped = app.query_one("#f-stopped")
                prompts = [str(stopped.get_option_at_index(i).prompt) for i in range(stopped.option_count)]
                assert any(p.startswith(f"{CLOSER}/[bold]Dep[/bold] (GPUs 0,1,") for p in prompts)
                model = app.query_one("#f-model")
                model.focus()
                model.value = CLOSER  # typed model names reach the error line
                await pilot.pause()
                assert CLOSER in str(app.query_one("#e-model").render())
                await pilot.press("escape")
                await pilot.pause()
                table.focus()

                await pilot.press("k")
                assert await wait_for(pilot, lambda: isinstance(app.screen, StopDialog))
                assert f"Stop pid {closer} ({CLOSER})?" in screen_text(app)
                await pilot.press("y")  # SIGTERM, then the notification names the title
                assert await wait_for(pilot, lambda: not isinstance(app.screen, StopDialog))
                assert await wait_for(pilot, lambda: f"pid {closer} ({CLOSER}) stopped" in notices(app))
                assert gone(closer) and not gone(bold)
        finally:
            source.close()


async def test_a_jump_typed_as_markup_is_refused_in_one_plain_line(tmp_path):
    rec = tmp_path / "demo.vtrec"
    made = subprocess.run([sys.executable, "-m", "vramtop", "record", "-o", str(rec), "--demo", "--no-ray",
                           "--duration", "2", "--interval", "1"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    app = VramtopApp(ReplaySource(rec), Config(interval=3600.0))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        for typed in (CLOSER, "[bold]"):
            await pilot.press("g")
            assert await wait_for(pilot, lambda: isinstance(app.screen, JumpDialog))
            await pilot.press(*typed, "enter")
            assert await wait_for(pilot, lambda: f"cannot read '{typed}'" in notices(app))
            assert app.is_running


async def test_themes_named_in_markup_are_listed_searched_and_chosen_as_text(tmp_path):
    themes = tmp_path / "xdg" / "vramtop" / "themes"
    themes.mkdir(parents=True)
    (themes / "closer.yaml").write_text(f'name: "{CLOSER}"\nprimary: "#4c9be8"\n')
    (themes / "bold.yaml").write_text('name: "[bold]loud[/bold]"\nprimary: "#e84c4c"\n')
    app = VramtopApp(DemoSource(), Config(interval=3600.0))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        app.action_change_theme()  # ctrl+p's "Theme" command
        assert await wait_for(pilot, lambda: CLOSER in screen_text(app))
        assert "[bold]loud[/bold]" in screen_text(app)
        await pilot.press(*"/x")  # searched: each hit highlights the letters that matched
        assert await wait_for(pilot, lambda: CLOSER in screen_text(app) and "vramtop-dark" not in screen_text(app))
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: app.theme == CLOSER)


@pytest.fixture
def dashboard():
    d = Dashboard()
    yield d
    d.server.shutdown()
    d.server.server_close()


async def test_names_and_messages_from_the_ray_dashboard_are_shown_as_text(dashboard):
    serve = {"applications": {CLOSER: {"status": "RUNNING", "deployments": {"[bold]D": {
        **SERVE_OK["applications"]["app"]["deployments"]["D"],
        "status": "UPDATING", "message": f"replica {CLOSER} waits [red]forever[/red]",
    }}}}}
    dashboard.set("/api/serve/applications/", body=serve)
    app = VramtopApp(DemoSource(), Config(interval=3600.0, ray_interval=3600.0),
                     ray_poller=RayPoller(dashboard.address, timeout=2.0, environ={}))
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        await pilot.press("R")

        def shown() -> bool:  # the Ray state rides on the next sample once its poll is back
            app.sample_now()
            return f"{CLOSER}/[bold]D" in screen_text(app)

        assert await wait_for(pilot, shown)
        assert f"Ray: replica {CLOSER} waits [red]forever[/red]" in screen_text(app)


# ---- figures the driver no longer gives are never shown as live --------------------------------


def colours(panel: GpuPanel, index: int) -> set:
    """The foreground colours of the visible cells of a GPU's line."""
    return {seg.style.color for seg in panel.strips_of(index)[0] if seg.text.strip() and seg.style is not None}


async def test_a_gpu_name_with_markup_and_escapes_is_drawn_as_text(fake_nvml):
    """The driver's name of a GPU (in cluster mode, a peer's) is text: its markup stays as typed,
    its control characters never reach the terminal; a note too long for a narrow pane ends in
    an ellipsis."""
    fake_nvml.gpus[0].name = "[bold red]A10[/]\x1b[2J\x07"
    fake_nvml.fault("nvmlDeviceGetTemperature", 0, "UNKNOWN")
    fake_nvml.write()
    app, _ = live_app()
    async with app.run_test(size=(260, 45)) as pilot:  # wide: the name is the first field to go
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        panel = app.query_one(GpuPanel)
        line = panel.strips_of(0)[0].text
        assert len(line) == panel.scrollable_content_region.width
        assert "[bold red]A10[/]\ufffd[2J\ufffd" in line and "\x1b" not in line and "\x07" not in line
        await pilot.resize_terminal(26, 30)
        await pilot.pause()
        _, note = panel.strips_of(0)
        assert note.cell_length == panel.scrollable_content_region.width
        assert note.text.endswith("…") and note.text.startswith("   ⚠ temperature: ")  # cut, not wrapped


async def test_when_the_driver_fails_mid_run_the_last_figures_are_greyed_and_aged(fake_nvml):
    app, source = live_app()
    try:
        async with app.run_test(size=(160, 45), notifications=True) as pilot:
            assert await wait_for(pilot, lambda: app.snapshot is not None)
            panel = app.query_one(GpuPanel)
            live_colours = colours(panel, 0)
            assert len(live_colours) >= 3  # state word, used, reserved and free in their colours
            fake_nvml.fault("*", None, "UNKNOWN")  # every call of the driver fails from now on
            fake_nvml.write()
            first = app.snapshot
            app.sample_now()
            assert await wait_for(pilot, lambda: app.snapshot is not first)
            text = screen_text(app)
            ages = {b.stale_age for b in panel.bars}
            (age,) = ages  # one driver, one failed read: the same age on every GPU
            assert age >= int(app.snapshot.timestamp - first.timestamp)  # since the last good read, before ``first``
            assert text.count(f"not live: last read {age} s ago") == 4
            assert "still live" not in text and "4 GPUs (4 not live)" in text
            assert all(len(colours(panel, i)) == 1 for i in range(4))  # greyed: one colour for the whole line
            assert f"{first.gpus[0].free_mib:,} free" in text  # the last figures, said to be old

            await pilot.pause(2.1)
            second = app.snapshot
            app.sample_now()
            assert await wait_for(pilot, lambda: app.snapshot is not second)
            (later,) = {b.stale_age for b in panel.bars}
            assert later >= age + 2 and screen_text(app).count(f"not live: last read {later} s ago") == 4

            fake_nvml.clear_faults()
            fake_nvml.write()
            third = app.snapshot
            app.sample_now()
            assert await wait_for(pilot, lambda: app.snapshot is not third)
            assert "not live" not in screen_text(app) and colours(panel, 0) == live_colours
    finally:
        source.close()


# ---- read-only mode sends no signal and writes no file -------------------------------------------


async def test_readonly_sends_no_signal_and_writes_no_file(fake_nvml, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # where r, ctrl+r and ctrl+s would write
    state = tmp_path / "state"
    with fakenvml.spawn_processes("python3 serve.py") as (pid,):
        fake_nvml.add_process(0, pid, 2_000)
        fake_nvml.write()
        app, source = live_app(readonly=True)
        try:
            async with app.run_test(size=(160, 45), notifications=True) as pilot:
                assert await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.gpu_processes)
                for key, what in (("r", "writing a report"), ("ctrl+r", "saving a recording"),
                                  ("ctrl+s", "saving a screenshot")):
                    await pilot.press(key)
                    assert await wait_for(pilot, lambda: f"read-only mode (--readonly): {what} is turned off"
                                          in notices(app))
                await pilot.press("ctrl+p", *"Screenshot", "enter")  # the palette's own screenshot too
                await pilot.pause(0.5)

                await pilot.press("k")
                assert await wait_for(pilot, lambda: isinstance(app.screen, StopDialog))
                assert "read-only mode" in screen_text(app)
                await pilot.press("y")
                await pilot.pause(0.3)
                await pilot.press("escape")

                await pilot.press("w")  # the what-if panel: used, changed, closed
                assert await wait_for(pilot, lambda: app.query("#f-model"))
                app.query_one("#f-model").value = "medgemma-4b-it"
                await pilot.press("plus")
                await pilot.pause()
                await pilot.press("escape")
                await pilot.pause()
            assert not gone(pid)
            assert list(work.iterdir()) == []
            assert not state.exists() or [p for p in state.rglob("*") if p.is_file()] == []
        finally:
            source.close()


async def test_readonly_resolves_no_model_over_the_network(tmp_path, monkeypatch):
    # Resolving 'name:tag' would read the Ollama registry and cache the spec on disk.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with socket.socket() as closed:  # a registry address where nothing listens, should a read slip through
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("VRAMTOP_OLLAMA_REGISTRY", f"http://127.0.0.1:{closed.getsockname()[1]}")
    app = VramtopApp(DemoSource(), Config(interval=3600.0), readonly=True)
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press("w")
        assert await wait_for(pilot, lambda: app.query("#f-model"))
        app.query_one("#f-model").value = "nosuchmodel:7b"
        assert await wait_for(pilot, lambda: "read-only mode (--readonly): nosuchmodel:7b is not fetched"
                              in str(app.query_one("#wi-model-source").render()))
    assert not (tmp_path / "cache").exists() or [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


# ---- the command line -----------------------------------------------------------------------------


def vramtop(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vramtop", *args], capture_output=True, text=True,
                          timeout=60, **kwargs)


@pytest.mark.parametrize("value", ["nan", "0", "0.05", "-1", "inf", "-inf", "1e999", "soon"])
def test_an_interval_that_is_not_a_finite_positive_number_is_one_line_and_exit_3(value):
    result = vramtop("--demo", "--once", f"--interval={value}")
    assert result.returncode == 3 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "--interval" in line and repr(value) in line


@pytest.mark.parametrize("flag", ["--duration", "--interval"])
def test_record_refuses_a_duration_or_interval_of_nan_in_one_line(tmp_path, flag):
    out = tmp_path / "x.vtrec"
    result = vramtop("record", "-o", str(out), "--demo", flag, "nan")
    assert result.returncode == 3 and not out.exists()
    (line,) = result.stderr.splitlines()
    assert line.startswith("vramtop record: error:") and flag in line


@pytest.mark.parametrize("fmt", ["--json", "--csv"])
def test_a_reader_that_closed_the_pipe_gets_no_traceback(fmt):
    # `vramtop --once --json | head -c 10` where head has already gone: the writes meet EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "vramtop", "--demo", "--no-ray", "--once", fmt],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert result.returncode == 1 and result.stderr == ""


def test_head_reads_the_first_bytes_and_vramtop_ends_quietly():
    shell = subprocess.run(
        [
            "bash", "-c",
            f"set -o pipefail; {sys.executable} -m vramtop --demo --no-ray --once --json | head -c 10; "
            "echo; echo rc=${PIPESTATUS[0]}",
        ],
        capture_output=True, text=True, timeout=60,
    )
    assert shell.stdout.startswith("{") and shell.stdout.rstrip().splitlines()[-1] in ("rc=0", "rc=1")
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr


# A bug put into a real widget of the real app, in a child process run as a user runs vramtop
# (on a terminal): the exit status and the lines on stderr are what the user gets.
CRASHING = r"""
import sys
from vramtop.widgets import node_header

def header_pieces(*args, **kwargs):
    raise RuntimeError("a bug in the header")

node_header.header_pieces = header_pieces
from vramtop.cli import main
sys.exit(main(["--demo", "--no-ray"]))
"""


def test_a_crash_in_the_live_view_exits_70_with_one_line_after_the_traceback():
    leader, follower = pty.openpty()
    child = subprocess.Popen([sys.executable, "-c", CRASHING], stdin=follower, stdout=follower, stderr=follower,
                             env=dict(os.environ, TERM="xterm-256color"), start_new_session=True)
    os.close(follower)
    terminal = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                terminal += chunk
            elif child.poll() is not None:
                break
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(leader)
    assert child.returncode == 70
    # What the user reads once Textual has left the alternate screen: the traceback, then one line.
    assert b"\x1b[?1049l" in terminal
    after = terminal.rpartition(b"\x1b[?1049l")[2].decode(errors="replace")
    assert "a bug in the header" in after
    lines = [line for line in after.replace("\r", "").splitlines() if line.strip()]
    assert lines[-1].startswith("vramtop: the live view stopped on an internal error")


def test_a_crash_in_a_command_exits_70_with_one_line_after_the_traceback(tmp_path):
    # A bug in --once's output, put there the same way.
    code = ("import sys\nfrom vramtop import once\n"
            "def to_json(*a, **k):\n    raise KeyError('a bug in the JSON')\n"
            "once.to_json = to_json\nfrom vramtop.cli import main\n"
            "sys.exit(main(['--demo', '--no-ray', '--once', '--json']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 70 and result.stdout == ""
    assert "Traceback" in result.stderr and "a bug in the JSON" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("vramtop: internal error (KeyError")
