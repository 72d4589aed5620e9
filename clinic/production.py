"""`python -m clinic.production [COMMAND ARGS…]`: the containers' start (deploy/Dockerfile.*).

Runs the check `make serve` runs (`python -m clinic settings --check-production`): with any
problem it prints one `error:` line per problem and exits 1, before the server starts; else
it prints a `WARNING:` line per warning (debug logs on) and execs COMMAND in its place.
Without a COMMAND it only checks.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from clinic.settings import (
    Settings,
    SettingsError,
    load_settings,
    production_problems,
    production_warnings,
)


def check(settings: Settings, err: TextIO) -> bool:
    """Prints what keeps these settings from production, or its warnings; True to start."""
    problems = production_problems(settings)
    for problem in problems:
        print(f"error: {problem}", file=err)
    if problems:
        return False
    for warning in production_warnings(settings):
        print(f"WARNING: {warning}", file=err)
    return True


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        allowed = check(load_settings(), sys.stderr)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not allowed:
        return 1
    if argv:
        sys.stderr.flush()
        os.execvp(argv[0], argv)  # noqa: S606 - the command docker was given, in our place
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
