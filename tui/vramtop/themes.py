"""Colour themes as YAML files -> Textual ``Theme`` objects.

Shipped themes live in the package's ``themes`` folder (the repository's top-level ``themes/``
in a source checkout); a user's own go in ``$XDG_CONFIG_HOME/vramtop/themes/`` and win on a
name clash. Files are read as ``yamlfile`` reads YAML (bounded, no aliases). A file vramtop
cannot use is skipped with one line naming the file and the problem.

A theme file holds Textual's theme fields plus ``variables`` for vramtop's own colours::

    name: my-theme
    dark: true
    primary: "#4c9be8"
    variables:
      vram-used: "#4c9be8"      # any of APP_VARIABLES; unset ones follow the theme's palette
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.theme import Theme

from vramtop import paths, yamlfile

# vramtop's own colour variables; ``variable_defaults`` derives each from a theme's palette.
APP_VARIABLES = {
    "vram-used": "primary",
    "vram-reserved": "warning",
    "vram-free": "success",
    "state-critical": "error",
    "state-low": "warning",
    "state-ok": "success",
    "state-lost": "secondary",
    "state-unknown": "secondary",
}

_COLOUR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent",
                  "foreground", "background", "surface", "panel", "boost")
_OTHER_FIELDS = {"name": str, "dark": bool, "ansi": bool, "luminosity_spread": float,
                 "text_alpha": float, "variables": dict}


@dataclass(frozen=True)
class ThemeError:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"theme {self.path.name}: {self.message}"


def bundled_dir() -> Path:
    """The shipped themes: inside the package when installed from a wheel, else the checkout's."""
    inside = Path(__file__).parent / "themes"
    return inside if inside.is_dir() else Path(__file__).resolve().parents[2] / "themes"


def variable_defaults(theme: Theme) -> dict[str, str]:
    """vramtop's variables for a theme that does not set them, from the theme's own palette."""
    palette = theme.to_color_system().generate()
    return {name: palette[source] for name, source in APP_VARIABLES.items()}


def parse_theme(data: object, path: Path) -> Theme:
    """One theme from a file's YAML data; ``ValueError`` with a one-line reason otherwise."""
    if not isinstance(data, dict):
        raise ValueError("the file must hold 'field: value' lines")
    unknown = [k for k in data if k not in _COLOUR_FIELDS and k not in _OTHER_FIELDS]
    if unknown:
        raise ValueError(f"unknown field {yamlfile.quote(unknown[0])}")
    for key in ("name", "primary"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"'{key}' is required")
    for key in _COLOUR_FIELDS:
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"'{key}' must be a colour in quotes, e.g. \"#1e1e2e\"")
    for key, kind in _OTHER_FIELDS.items():
        if key in data and not isinstance(data[key], kind):
            raise ValueError(f"'{key}' must be {kind.__name__}")
    variables = {str(k): str(v) for k, v in (data.get("variables") or {}).items()}
    theme = Theme(**{k: v for k, v in data.items() if k != "variables"}, variables=variables)
    try:
        theme.to_color_system().generate()
    except Exception as exc:  # Textual's colour parser: say which value, never a traceback
        raise ValueError(f"bad colour ({yamlfile.one_line(exc)})") from None
    return theme


def load_dir(folder: Path) -> tuple[list[Theme], list[ThemeError]]:
    themes: list[Theme] = []
    errors: list[ThemeError] = []
    if not folder.is_dir():
        return themes, errors
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            themes.append(parse_theme(yamlfile.load(path), path))
        except FileNotFoundError:  # removed while the folder was read
            continue
        except (yamlfile.YamlError, ValueError) as exc:
            errors.append(ThemeError(path, str(exc)))
    return themes, errors


def load_themes(folders: list[Path] | None = None) -> tuple[dict[str, Theme], list[ThemeError]]:
    """Themes by name from the shipped folder, then the user's (later folders win)."""
    found: dict[str, Theme] = {}
    errors: list[ThemeError] = []
    for folder in folders if folders is not None else [bundled_dir(), paths.user_themes_dir()]:
        themes, errs = load_dir(folder)
        found.update({t.name: t for t in themes})
        errors.extend(errs)
    return found, errors
