"""Start-up: the one-shot commands import what they use. ``vramtop --once --json`` and
``vramtop fit`` run in a child process (``python -X importtime`` lists every module it imported),
on the stand-in driver with a real vLLM process tree; neither may import Textual, and the
one-shot picture may not import the subcommands' own modules (the recording format, the report,
the launcher; the fit model is there only because the telemetry's KV check uses it)."""

import subprocess
import sys

import fakenvml
from engine_tree import engine_tree


def imported(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "vramtop", *args],
                            env=env, capture_output=True, text=True, timeout=60)
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return result, modules


def top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_once_json_imports_neither_textual_nor_subcommands(tmp_path):
    with engine_tree(2) as (_, workers):
        scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
        for gpu, pid in enumerate(workers):
            scenario.add_process(gpu, pid, 20_730)
        scenario.write()
        result, modules = imported(["--once", "--json", "--no-ray"], scenario.env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"instances"' in result.stdout  # it did the whole picture, not an early exit
    assert "vramtop.sampler" in modules and "vramtop.once" in modules  # the listing is complete
    assert not top(modules) & {"textual", "rich"}
    subcommands = {"vramtop.fit.cli", "vramtop.record", "vramtop.recording", "vramtop.report.cli",
                   "vramtop.report.build", "vramtop.exporter.cli", "vramtop.exporter.watch", "vramtop.launch.cli"}
    assert not subcommands & modules


def test_fit_imports_no_textual():
    result, modules = imported(["fit", "medgemma-4b-it", "--on", "1x24GiB", "--json"])
    assert result.returncode in (0, 1, 2), result.stderr[-2000:]
    assert "vramtop.fit.verdict" in modules
    assert "textual" not in top(modules)
    assert not {"vramtop.recording", "vramtop.report.build", "vramtop.launch.cli", "prometheus_client"} & modules


def test_help_still_lists_every_subcommand():
    result, _ = imported(["--help"])
    assert result.returncode == 0
    for name in ("fit", "record", "report", "export", "watch", "launch"):
        assert name in result.stdout
