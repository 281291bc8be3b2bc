import pytest


@pytest.fixture(autouse=True)
def _no_user_themes(tmp_path, monkeypatch):
    """The user's own theme folder must not change what the tests see."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NO_COLOR", raising=False)
