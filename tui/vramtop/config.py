"""The user's settings: defaults, then the YAML config file, then the command line.

Each value remembers where it came from, so ``--print-config`` can say why it is what it is.
A malformed file is one line naming the file, the line and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from vramtop.analysis.states import Thresholds


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


def default_path() -> Path:
    """``$XDG_CONFIG_HOME/vramtop/config.yaml`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vramtop" / "config.yaml"


def _coerce(key: str, value: Any, where: str) -> Any:
    want = _KEYS[key].type
    if key == "candidates":  # checked where they are judged; imported only when the key is set
        from vramtop.exporter.candidates import parse_candidates

        try:
            return parse_candidates(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: 'candidates': {exc}") from None
    try:
        if "float" in want:
            if isinstance(value, bool):
                raise TypeError
            out = float(value)
            if out <= 0 and key in ("interval", "ray_timeout", "ray_interval", "telemetry_interval"):
                raise ValueError
            return out
        if "int" in want:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if value is not None and not isinstance(value, str):
            raise TypeError
        if key == "report_lang" and value not in REPORT_LANGS:
            raise ConfigError(f"{where}: 'report_lang' must be one of {', '.join(REPORT_LANGS)}, got {value!r}")
        return value
    except (TypeError, ValueError):
        kind = "a positive number" if "float" in want else "a whole number" if "int" in want else "text"
        raise ConfigError(f"{where}: '{key}' must be {kind}, got {value!r}") from None


def load(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then ``path`` (or the default file if it exists), then ``overrides``."""
    cfg = Config()
    sources = {k: "default" for k in _KEYS}
    explicit = path is not None
    path = path or default_path()
    if path.exists() or explicit:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{path}: {line}{problem}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the file must hold 'key: value' settings, not a {type(data).__name__}")
        lines = {k: i + 1 for i, ln in enumerate(text.splitlines()) for k in data if ln.startswith(f"{k}:")}
        for key, value in data.items():
            where = f"{path}: line {lines.get(key, '?')}"
            if key not in _KEYS:
                raise ConfigError(f"{where}: unknown setting '{key}' (known: {', '.join(sorted(_KEYS))})")
            cfg = replace(cfg, **{key: _coerce(key, value, where)})
            sources[key] = f"{path}:{lines.get(key, '?')}"
    for key, value in (overrides or {}).items():
        if value is not None:
            cfg = replace(cfg, **{key: _coerce(key, value, "command line")})
            sources[key] = "command line"
    return replace(cfg, sources=sources)
