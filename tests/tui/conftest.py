import pytest


@pytest.fixture(autouse=True)
def _no_user_themes(tmp_path, monkeypatch):
    """The user's own theme folder and what-if state must not change what the tests see, and
    the tests must not write into the user's state directory."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("NO_COLOR", raising=False)
