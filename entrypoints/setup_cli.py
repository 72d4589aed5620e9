"""`python -m clinic profile import FILE | export` and `python -m clinic status`: the
clinic's profile as a file (for clinics that keep it under version control), and the
Instagram connection's health in a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from sqlalchemy import func, select

from clinic.connection import ConnectionHealth, TokenCheck, connection_health
from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import Doctor
from clinic.profile import ProfileError, load_profile
from clinic.profile_store import export_profile, has_profile, import_profile
from clinic.settings import DEFAULT_PROFILE_PATH


def add_commands(
    commands: argparse._SubParsersAction, check_token: Callable[[Clinic], TokenCheck]
) -> None:
    profile = commands.add_parser("profile", help="the clinic's facts and visit types as YAML")
    actions = profile.add_subparsers(dest="profile_command", required=True)
    load = actions.add_parser("import", help="replace them with a file's (profile export's form)")
    load.add_argument("file", type=Path)
    load.set_defaults(handler=import_file)
    dump = actions.add_parser("export", help="print them as YAML")
    dump.set_defaults(handler=print_profile)

    status = commands.add_parser(
        "status", help="the Instagram connection: token, last message, inbox, outbox"
    )
    status.set_defaults(handler=lambda clinic, _args: print_status(clinic, check_token(clinic)))


def import_file(clinic: Clinic, args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.file)
    except (OSError, yaml.YAMLError) as error:
        raise ProfileError(f"{args.file} can't be read: {error}") from error
    import_profile(clinic, profile)
    print(
        f"Imported {profile.name}: {len(profile.visit_types)} visit types, "
        f"{len(profile.topics)} topics. The bot uses them from its next message."
    )
    return 0


def print_profile(clinic: Clinic, _args: argparse.Namespace) -> int:
    sys.stdout.write(export_profile(clinic))
    return 0


def adopt_packaged_profile(clinic: Clinic) -> bool:
    """A clinic set up before its profile moved into the database (it has doctors, no
    facts yet) keeps what clinic/profile.yml said; True if it was imported."""
    with transaction(clinic.engine) as session:
        doctors = session.scalar(select(func.count()).select_from(Doctor))
    if not doctors or has_profile(clinic):
        return False
    import_profile(clinic, load_profile(DEFAULT_PROFILE_PATH))
    return True


def print_status(clinic: Clinic, token: TokenCheck) -> int:
    health = connection_health(clinic, token)
    for line in status_lines(health):
        print(line)
    return 0 if health.token.ok else 1


def status_lines(health: ConnectionHealth) -> list[str]:
    token = health.token
    lines = [
        f"Instagram token: connected as @{token.username}"
        if token.ok
        else f"Instagram token: NOT working: {token.error}",
        "Last message received: "
        + (
            health.last_message_at.isoformat(timespec="seconds")
            if health.last_message_at
            else "never"
        ),
        f"Messages waiting in the inbox: {health.inbox_waiting}",
        f"Replies failed in the outbox: {health.outbox_failed}",
    ]
    return lines
