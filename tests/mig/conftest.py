import pytest


@pytest.fixture(autouse=True)
def _no_user_state(tmp_path, monkeypatch):
    """The app must not read the user's themes or what-if state, nor write there."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
