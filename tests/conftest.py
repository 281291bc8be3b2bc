# ---- fake NVML (stand-in libnvidia-ml.so.1): see tests/fakenvml.py ------------------------------
import pytest

import fakenvml


def pytest_configure(config):
    # Before any test can load a library: pynvml in this process must find the stand-in.
    try:
        fakenvml.load_in_process()
    except RuntimeError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def fake_nvml(tmp_path, monkeypatch):
    """The seed's 4x A10 node served by the stand-in NVML, no processes yet.

    Yields a written ``fakenvml.Scenario`` whose file ``VRAMTOP_FAKE_NVML_SCENARIO`` names; change
    it and call ``write()`` again, even while something polls it.
    """
    scenario = fakenvml.seed_a10(tmp_path / "nvml-scenario.txt")
    scenario.write()
    monkeypatch.setenv(fakenvml.SCENARIO_ENV, str(scenario.path))
    yield scenario
    # A test that left NVML initialised must not leak that state into the next one.
    import pynvml

    while fakenvml.stub().vramtopFakeNvmlInitCount() > 0:
        pynvml.nvmlShutdown()


# ---- end of fake NVML ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_user_folders(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's own config, state or cache (a saved what-if pin or
    theme would change what a test sees, and a test's pins would change the user's screen):
    each test, and every child it starts, gets empty XDG folders of its own. A test that
    needs particular folders sets them again."""
    root = tmp_path_factory.mktemp("xdg")
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(root / name.lower()))
