"""``vramtop fit`` reads this node's GPUs only where no ``--on`` plans on paper GPUs; where the
driver cannot be opened it says so in one line, with the ways to plan without one (exit 3)."""

import json
import subprocess
import sys

import fakenvml


def fit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vramtop", "fit", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_without_a_driver_fit_says_why_in_one_line_and_how_to_plan_anyway(tmp_path):
    scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
    scenario.fault("nvmlInit", None, "DRIVER_NOT_LOADED")
    scenario.write()
    done = fit("medgemma-4b-it", env=scenario.env())
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == ("vramtop fit: the NVIDIA driver is not loaded (NVML: Driver Not Loaded) "
                           "(use --demo or --on NxSIZE to plan without a GPU)\n")

    on_paper = fit("medgemma-4b-it", "--on", "2x24GiB", "--json", env=scenario.env())  # the driver is not asked
    assert on_paper.returncode == 0, on_paper.stderr
    assert json.loads(on_paper.stdout)["node"]["label"] == "2x24576 MiB on paper"


def test_the_live_node_is_the_stand_in_drivers(tmp_path):
    scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")  # GPU 0 has 32 MiB free, the others about 1.2 GiB
    scenario.write()
    done = fit("medgemma-4b-it", "--json", env=scenario.env())
    assert done.returncode == 2, done.stderr  # vLLM would not start: 0.9 of 22,515 MiB is not free anywhere
    gpus = json.loads(done.stdout)["node"]["gpus"]
    assert [(g["gpu_index"], g["total_mib"], g["free_mib"]) for g in gpus] == [
        (0, 23_028, 32), (1, 23_028, 1_256), (2, 23_028, 1_254), (3, 23_028, 1_364)]
