"""The user's settings: defaults, then the YAML config file, then the command line.

Each value remembers where it came from, so ``--print-config`` can say why it is what it is.
A malformed file is one line naming the file, the line and the problem; the file is read as
``yamlfile`` reads YAML (bounded, no aliases), and every number must lie in its range.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vramtop import paths, yamlfile
from vramtop.analysis.states import Thresholds
from vramtop.yamlfile import quote


class ConfigError(Exception):
    """A config file vramtop cannot use; the message is one line naming file, line and problem."""


@dataclass(frozen=True)
class Config:
    """Every setting, documented in the README's configuration table."""

    interval: float = 1.0  # seconds between samples
    theme: str = "vramtop-dark"
    critical_free_mib: int = 1024  # a GPU is critical below this much free memory
    low_free_pct: float = 10.0  # ... and low below this share of its total free
    ray_address: str | None = None  # Ray dashboard URL; None: environment, then 127.0.0.1:8265
    ray_timeout: float = 2.0  # seconds before a Ray dashboard request counts as slow
    ray_interval: float = 5.0  # seconds between Ray polls
    telemetry_interval: float = 2.0  # seconds between reads of the serving engines' metrics
    report_lang: str = "en"  # the language of the report the live view writes (r): en or es
    candidates: tuple = ()  # headroom candidates to export: what-if forms with a name (exporter.candidates)
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # key -> where from

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.critical_free_mib, self.low_free_pct)


_KEYS = {f.name: f for f in fields(Config) if f.name != "sources"}
REPORT_LANGS = ("en", "es")  # what vramtop.report writes


# The range each number may take: a span of time that is 0, negative, NaN or infinite would
# spin a loop or never tick; thresholds outside these mean nothing.
RANGES: dict[str, tuple[float, float]] = {
    "interval": (0.1, 3600.0),
    "ray_timeout": (0.1, 600.0),
    "ray_interval": (0.5, 86400.0),
    "telemetry_interval": (0.5, 86400.0),
    "critical_free_mib": (0, 1 << 30),
    "low_free_pct": (0.0, 100.0),
}


def _coerce(key: str, value: Any, where: str) -> Any:
    want = _KEYS[key].type
    if key == "candidates":  # checked where they are judged; imported only when the key is set
        from vramtop.exporter.candidates import parse_candidates

        try:
            return parse_candidates(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: 'candidates': {exc}") from None
    if "float" in want or "int" in want:
        low, high = RANGES[key]
        whole = "int" in want
        number: Any = None
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                number = float(value)
            except (ValueError, OverflowError):
                pass
        if number is None or not low <= number <= high or (whole and not number.is_integer()):
            kind = "a whole number" if whole else "a number"
            unit = " (seconds)" if key in ("interval", "ray_timeout", "ray_interval", "telemetry_interval") else ""
            raise ConfigError(f"{where}: '{key}' must be {kind} from {low:g} to {high:g}{unit}, got {quote(value)}")
        return int(number) if whole else number
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: '{key}' must be text, got {quote(value)}")
    if key == "report_lang" and value not in REPORT_LANGS:
        raise ConfigError(f"{where}: 'report_lang' must be one of {', '.join(REPORT_LANGS)}, got {quote(value)}")
    return value


def _key_lines(text: str) -> dict[str, int]:
    """The line of each top-level ``key:`` (its first), read in one pass."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        key, colon, _ = line.partition(":")
        if colon and key and not key[0].isspace():
            lines.setdefault(key.strip().strip("'\""), number)
    return lines


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then ``path`` (or the default file if it exists), then ``overrides``."""
    cfg = Config()
    sources = {k: "default" for k in _KEYS}
    explicit = path is not None
    path = path or paths.config_file()
    if path.exists() or explicit:
        try:
            text = yamlfile.read_text(path)
            data = yamlfile.parse(text)
        except FileNotFoundError:
            raise ConfigError(f"{path}: cannot read config file (No such file or directory)") from None
        except yamlfile.YamlError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the file must hold 'key: value' settings, not a {type(data).__name__}")
        lines = _key_lines(text)
        for key, value in data.items():
            where = f"{path}: line {lines.get(str(key), '?')}"
            if key not in _KEYS:
                raise ConfigError(f"{where}: unknown setting {quote(key)} (known: {', '.join(sorted(_KEYS))})")
            cfg = replace(cfg, **{key: _coerce(key, value, where)})
            sources[key] = f"{path}:{lines.get(key, '?')}"
    for key, value in (overrides or {}).items():
        if value is not None:
            cfg = replace(cfg, **{key: _coerce(key, value, "command line")})
            sources[key] = "command line"
    return replace(cfg, sources=sources)
