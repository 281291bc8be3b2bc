import pytest


@pytest.fixture(autouse=True)
def _own_state_and_config(tmp_path, monkeypatch):
    """Each test gets its own what-if state file and no user themes."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "state" / "vramtop" / "whatif.yaml"
