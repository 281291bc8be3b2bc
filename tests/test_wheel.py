"""The wheel a user installs: built from this tree, installed apart from it, it runs the demo
and finds its themes (which live outside the package in the source tree)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    if build.returncode != 0:
        pytest.fail(f"wheel build failed: {build.stderr.strip().splitlines()[-1:]}")
    (wheel,) = (tmp / "dist").glob("vramtop_llm-*.whl")
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return target


def run(target: Path, *args: str) -> subprocess.CompletedProcess:
    # The installed copy comes first on the path; the dependencies come from this environment.
    env = dict(os.environ, PYTHONPATH=str(target))
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, cwd=target.parent)


def test_installed_wheel_runs_the_demo_from_its_own_files(installed):
    where = run(installed, "-c", "import vramtop; print(vramtop.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed)
    result = run(installed, "-m", "vramtop", "--demo", "--once", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["node"]["free_mib"] == 3_906


def test_installed_wheel_ships_every_theme_and_the_model_catalog(installed):
    probe = ("import json; from vramtop import themes; from vramtop.fit import specs; "
             "found, errors = themes.load_themes([themes.bundled_dir()]); "
             "print(json.dumps([str(themes.bundled_dir()), sorted(found), len(errors), len(specs.catalog_names())]))")
    folder, names, errors, models = json.loads(run(installed, "-c", probe).stdout)
    assert Path(folder).is_relative_to(installed)
    shipped = sorted(p.stem for p in (ROOT / "themes").glob("*.yaml"))
    assert names == shipped and errors == 0 and models >= 28
