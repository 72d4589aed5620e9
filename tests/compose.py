"""docker-compose.yml as its tests read it: services, and values with ${…} filled in."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# ${NAME}, ${NAME:-default}, ${NAME:?error}: the forms the compose file uses.
_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}")


def services() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def networks() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["networks"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """`value` as compose fills it in from `env`; a missing `:?` variable raises KeyError."""

    def fill(match: re.Match) -> str:
        name, form, word = match.groups()
        if env.get(name):
            return env[name]
        if form == "?":
            raise KeyError(f"{name}: {word}")
        return word or ""

    return _VARIABLE.sub(fill, value)


def template_names(text: str) -> set[str]:
    """The ${NAME}s a template (an nginx one, say) expects from the environment."""
    return {match.group(1) for match in _VARIABLE.finditer(text)}
