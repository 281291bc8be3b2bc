"""Config: defaults, file, command line, and one clear line for a bad file."""

import pytest

from vramtop import config
from vramtop.config import ConfigError


def test_file_then_command_line_and_where_each_came_from(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("interval: 2.5\ncritical_free_mib: 2048\ntheme: vramtop-light\n")
    cfg = config.load(path, {"theme": "vramtop-high-contrast", "interval": None})
    assert cfg.interval == 2.5 and cfg.critical_free_mib == 2048
    assert cfg.theme == "vramtop-high-contrast"
    assert cfg.sources["interval"] == f"{path}:1"
    assert cfg.sources["theme"] == "command line"
    assert cfg.sources["low_free_pct"] == "default"
    assert cfg.thresholds.critical_free_mib == 2048


@pytest.mark.parametrize(
    "text, expect",
    [
        ("interval: [1, 2\n", "line 2"),
        ("interval: fast\n", "line 1: 'interval' must be a number from 0.1 to 3600 (seconds), got 'fast'"),
        ("interval: -1\n", "'interval' must be a number from 0.1 to 3600 (seconds), got -1"),
        ("interval: 0\n", "'interval' must be a number from 0.1 to 3600"),
        ("interval: .nan\n", "'interval' must be a number from 0.1 to 3600 (seconds), got nan"),
        ("interval: .inf\n", "got inf"),
        ("interval: -.inf\n", "got -inf"),
        ("interval: 'nan'\n", "got 'nan'"),
        ("interval: true\n", "got True"),
        ("interval: [1]\n", "got [1]"),
        ("ray_timeout: 1e400\n", "'ray_timeout' must be a number from 0.1 to 600"),
        ("telemetry_interval: 1000000000000000000000000000000\n", "got 100000000000000000000..."),
        ("critical_free_mib: 1.5\n", "'critical_free_mib' must be a whole number"),
        ("critical_free_mib: -1\n", "'critical_free_mib' must be a whole number from 0"),
        ("low_free_pct: 101\n", "'low_free_pct' must be a number from 0 to 100"),
        ("x" * 1000 + ": 1\n", "unknown setting 'xxxxxxxxxxxxxxxxxxxx..."),
        ("report_lang: " + "x" * 5000 + "\n", "got 'xxxxxxxxxxxxxxxxxxxx..."),
        ("colour: red\n", "unknown setting 'colour'"),
        ("report_lang: fr\n", "line 1: 'report_lang' must be one of en, es, got 'fr'"),
        ("- just\n- a list\n", "not a list"),
    ],
)
def test_malformed_file_is_one_line_naming_file_line_and_problem(tmp_path, text, expect):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert str(path) in message and expect in message and "\n" not in message
    assert len(message) < len(str(path)) + 250  # what the file says is quoted a few characters long


def test_a_binary_file_is_one_line_too(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"interval: 1\n\xe8\x00\xff")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert str(err.value) == f"{path}: not a text file (byte 12 is not UTF-8)"


def test_missing_explicit_file_is_an_error_but_missing_default_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config.load().interval == 1.0
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.yaml")
