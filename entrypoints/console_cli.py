"""`python -m clinic console` and `python -m clinic staff …`: the staff console and its
accounts, from the command line."""

from __future__ import annotations

import argparse
import sys

from clinic.context import Clinic
from clinic.models import ROLES
from clinic.staff import add_staff, disable_staff, has_staff, list_staff, new_link, sign_in_url


def add_commands(commands: argparse._SubParsersAction) -> None:
    console = commands.add_parser(
        "console", help="serve the staff console on CONSOLE_HOST:CONSOLE_PORT"
    )
    console.set_defaults(handler=run_console)

    staff = commands.add_parser("staff", help="staff accounts of the console")
    actions = staff.add_subparsers(dest="staff_command", required=True)
    add = actions.add_parser("add", help="a new account; prints its one-time sign-in link")
    add.add_argument("email")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument(
        "--if-none", action="store_true", help="only when there is no staff account yet"
    )
    add.set_defaults(handler=add_member)
    listing = actions.add_parser("list", help="every account, its role and state")
    listing.set_defaults(handler=list_members)
    disable = actions.add_parser("disable", help="the account can no longer sign in")
    disable.add_argument("email")
    disable.set_defaults(handler=disable_member)
    link = actions.add_parser("link", help="a new one-time sign-in link (a forgotten password)")
    link.add_argument("email")
    link.set_defaults(handler=new_member_link)


def run_console(clinic: Clinic, _args: argparse.Namespace) -> int:
    from connectors.graph_account import check_token
    from console.server import serve  # Flask and its kin load only for this command

    serve(clinic.settings, lambda: check_token(clinic.settings))
    return 0


def add_member(clinic: Clinic, args: argparse.Namespace) -> int:
    if args.if_none and has_staff(clinic):
        return 0
    token = add_staff(clinic, args.email, args.role)
    print(f"Added {args.email.strip().lower()} ({args.role}). One-time sign-in link (48 hours):")
    print(sign_in_url(clinic.settings, token))
    return 0


def list_members(clinic: Clinic, _args: argparse.Namespace) -> int:
    members = list_staff(clinic)
    for member in members:
        state = "active" if member.active else "disabled"
        if member.active and not member.has_password:
            state = "link sent"
        print(f"{member.email}\t{member.role}\t{state}")
    print(f"{len(members)} staff accounts.", file=sys.stderr)
    return 0


def disable_member(clinic: Clinic, args: argparse.Namespace) -> int:
    disable_staff(clinic, args.email)
    print(f"{args.email.strip().lower()} can no longer sign in.")
    return 0


def new_member_link(clinic: Clinic, args: argparse.Namespace) -> int:
    token = new_link(clinic, args.email)
    print(f"New one-time sign-in link for {args.email.strip().lower()} (48 hours):")
    print(sign_in_url(clinic.settings, token))
    return 0
