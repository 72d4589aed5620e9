"""`python -m clinic`: the staff's command line (see clinic/__main__.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from clinic import handoffs, production
from clinic.audit import hash_id
from clinic.calendar_feed import doctor_calendar
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.delivery import Outbox
from clinic.errors import ClinicError
from clinic.migrate import upgrade_to_latest
from clinic.models import BOOKED, Appointment, BlockedTime, Doctor, WorkingHours
from clinic.profile import ProfileError, load_profile
from clinic.profile_store import has_profile, import_profile, load_clinic_profile
from clinic.retention import purge
from clinic.settings import (
    DEFAULT_PROFILE_PATH,
    Settings,
    SettingsError,
    load_settings,
    shell_exports,
    value_of,
    variables,
)
from clinic.slots import day_bounds
from clinic.templates import WEEKDAYS, TemplateError
from connectors.graph_account import check_token
from connectors.lock_keys import LockKeys
from entrypoints import console_cli, feed_cli, reminders, setup_cli

# Name, working hours (weekday, opens, closes), the visit types offered (by their place in
# the profile: 0 is the first).
DEMO_DOCTORS = [
    (
        "Dr. Demo",
        [(d, time(o), time(c)) for d in range(5) for o, c in ((9, 12), (13, 17))],
        [0],
    ),
    (
        "Dr. Smith",
        [(d, time(8), time(12)) for d in range(6)] + [(d, time(14), time(18)) for d in (1, 3)],
        [0, 2],
    ),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "settings":
            return print_settings(settings, args)
        if args.command == "init":
            upgrade_to_latest(settings.database_url)
            print("Database schema is up to date.")
            if setup_cli.adopt_packaged_profile(
                Clinic(create_database_engine(settings.database_url), settings)
            ):
                print("The clinic's facts and visit types now live in the database (from")
                print("clinic/profile.yml): check them in the staff console, or import your own")
                print("with `python -m clinic profile import FILE`.")
            return 0
        clinic = Clinic(create_database_engine(settings.database_url), settings)
        return args.handler(clinic, args)
    except (ClinicError, SettingsError, TemplateError, ProfileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m clinic", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="create or upgrade the database schema")

    settings = commands.add_parser("settings", help="the settings in effect (secrets hidden)")
    settings.add_argument(
        "--export", nargs="+", metavar="NAME", help="shell `export` lines for these variables"
    )
    settings.add_argument(
        "--check-production",
        action="store_true",
        help="fail, naming the variable, when a secret production needs is missing",
    )

    seed = commands.add_parser("seed", help="add demo data")
    seed.add_argument("--demo", action="store_true", required=True, help="one demo doctor")
    seed.add_argument("--if-empty", action="store_true", help="only when there is no doctor yet")
    seed.add_argument(
        "--doctors",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: also a second doctor, who offers a second visit type",
    )
    seed.set_defaults(handler=seed_demo)

    doctors = commands.add_parser("doctors", help="list doctors and their hours")
    feed_cli.add_arguments(doctors)
    doctors.set_defaults(handler=list_doctors)

    appointments = commands.add_parser("appointments", help="list appointments")
    appointments.add_argument("--json", action="store_true", help="one JSON object per line")
    appointments.add_argument("--day", type=_date, help="only this day (YYYY-MM-DD)")
    appointments.add_argument("--doctor", type=int, help="only this doctor id")
    appointments.add_argument("--all", action="store_true", help="past ones too")
    appointments.set_defaults(handler=list_appointments)

    block = commands.add_parser("block", help="block a time range (lunch, holiday)")
    block.add_argument(
        "--from",
        dest="start",
        type=_local_datetime,
        required=True,
        help="start, clinic time: 'YYYY-MM-DD HH:MM' or a date",
    )
    block.add_argument(
        "--to",
        dest="end",
        type=_local_datetime,
        required=True,
        help="end, clinic time: 'YYYY-MM-DD HH:MM' or a date (exclusive)",
    )
    block.add_argument("--reason", required=True)
    block.add_argument("--doctor", type=int, help="a doctor id (default: the whole clinic)")
    block.set_defaults(handler=add_block)

    remind = commands.add_parser("remind", help="send the reminders that are due")
    remind.add_argument("--loop", action="store_true", help="keep running")
    remind.add_argument("--interval", type=_positive_int, default=60, help="seconds between runs")
    remind.set_defaults(handler=send_reminders)

    purge = commands.add_parser(
        "purge", help="delete conversations idle past CONVERSATION_RETENTION_DAYS"
    )
    purge.set_defaults(handler=run_purge)

    outbox = commands.add_parser("outbox", help="replies not sent yet, and replies given up")
    outbox.add_argument("--failed", action="store_true", help="only those given up")
    outbox.set_defaults(handler=list_outbox)

    handoffs = commands.add_parser("handoffs", help="conversations staff took over, newest first")
    handoffs.set_defaults(handler=list_handoffs)

    calendar = commands.add_parser("calendar", help="a doctor's iCalendar feed on stdout")
    calendar.add_argument("doctor_id", type=int)
    calendar.add_argument("--days-back", type=_positive_int, default=30)
    calendar.set_defaults(handler=print_calendar)
    console_cli.add_commands(commands)
    setup_cli.add_commands(commands, lambda clinic: check_token(clinic.settings))
    return parser


def seed_demo(clinic: Clinic, args: argparse.Namespace) -> int:
    """Dr. Demo: Mon-Fri 9:00-17:00, lunch 12:00-13:00, 30-minute slots, consultations. With
    `--doctors 2` also Dr. Smith: Mon-Sat 8:00-12:00 and Tue, Thu 14:00-18:00, for
    consultations and procedures, so two doctors and two visit types can be tried."""
    with transaction(clinic.engine) as session:
        if args.if_empty and session.scalar(select(func.count()).select_from(Doctor)):
            print("Doctors are already set up; no demo doctor added.")
            return 0
    if not has_profile(clinic):
        import_profile(clinic, load_profile(DEFAULT_PROFILE_PATH))
        print("Added the demo clinic's facts and visit types (clinic/profile.yml).")
    keys = [v.key for v in load_clinic_profile(clinic).visit_types]
    with transaction(clinic.engine) as session:
        for name, hours, visits in DEMO_DOCTORS[: args.doctors]:
            existing = session.scalar(select(Doctor).where(Doctor.name == name))
            if existing is not None:
                print(f"{name} already present (id {existing.id}).")
                continue
            offered = ",".join(keys[i] for i in visits if i < len(keys))
            doctor = Doctor(
                name=name, timezone=clinic.settings.timezone, slot_minutes=30, visit_types=offered
            )
            session.add(doctor)
            session.flush()
            for weekday, opens, closes in hours:
                session.add(
                    WorkingHours(
                        doctor_id=doctor.id, weekday=weekday, start_time=opens, end_time=closes
                    )
                )
            print(f"Added {name} (id {doctor.id}), offering {offered.replace(',', ', ')}.")
    return 0


def list_doctors(clinic: Clinic, args: argparse.Namespace) -> int:
    if args.feed_urls:
        return feed_cli.print_feed_links(clinic)
    if args.rotate_feed is not None:
        return feed_cli.print_rotated_link(clinic, args.rotate_feed)
    with transaction(clinic.engine) as session:
        for doctor in session.scalars(select(Doctor).order_by(Doctor.id)):
            hours = session.execute(
                select(WorkingHours.weekday, WorkingHours.start_time, WorkingHours.end_time)
                .where(WorkingHours.doctor_id == doctor.id)
                .order_by(WorkingHours.weekday, WorkingHours.start_time)
            ).all()
            summary = ", ".join(f"{WEEKDAYS[w]} {s:%H:%M}-{e:%H:%M}" for w, s, e in hours)
            state = "" if doctor.active else " (inactive)"
            print(
                f"{doctor.id}\t{doctor.name}{state}\t{doctor.timezone}\t"
                f"{doctor.slot_minutes} min\t{summary or 'no hours'}"
            )
    return 0


def list_appointments(clinic: Clinic, args: argparse.Namespace) -> int:
    zone = clinic.settings.zone
    query = select(Appointment, Doctor.timezone).join(Doctor).order_by(Appointment.start_at)
    if args.day:
        bounds = day_bounds(args.day, zone)
        query = query.where(Appointment.start_at >= bounds.start, Appointment.start_at < bounds.end)
    elif not args.all:
        query = query.where(Appointment.start_at >= day_bounds(clinic.today(), zone).start)
    if args.doctor:
        query = query.where(Appointment.doctor_id == args.doctor)
    with transaction(clinic.engine) as session:
        rows = session.execute(query).all()
    for appointment, doctor_zone in rows:
        start = appointment.start_at.astimezone(ZoneInfo(doctor_zone))
        end = appointment.end_at.astimezone(ZoneInfo(doctor_zone))
        if args.json:
            print(
                json.dumps(
                    {
                        "id": appointment.id,
                        "doctor_id": appointment.doctor_id,
                        "patient_id": appointment.patient_id,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "status": appointment.status,
                    }
                )
            )
        else:
            print(
                f"{appointment.id}\t{start:%Y-%m-%d %H:%M}-{end:%H:%M}\t"
                f"doctor {appointment.doctor_id}\tpatient {appointment.patient_id}\t"
                f"{appointment.status}"
            )
    return 0


def add_block(clinic: Clinic, args: argparse.Namespace) -> int:
    zone = clinic.settings.zone
    start, end = args.start.replace(tzinfo=zone), args.end.replace(tzinfo=zone)
    if end <= start:
        print("error: --to must be after --from", file=sys.stderr)
        return 2
    with transaction(clinic.engine) as session:
        if args.doctor is not None and session.get(Doctor, args.doctor) is None:
            print(f"error: no doctor with id {args.doctor}", file=sys.stderr)
            return 2
        session.add(
            BlockedTime(
                doctor_id=args.doctor, start_at=start, end_at=end, reason=args.reason.strip()[:200]
            )
        )
        overlapping = (
            select(func.count())
            .select_from(Appointment)
            .where(
                Appointment.status == BOOKED, Appointment.start_at < end, Appointment.end_at > start
            )
        )
        if args.doctor is not None:
            overlapping = overlapping.where(Appointment.doctor_id == args.doctor)
        booked = session.scalar(overlapping)
    who = f"doctor {args.doctor}" if args.doctor is not None else "the whole clinic"
    print(f"Blocked {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} for {who}.")
    if booked:
        print(
            f"Note: {booked} booked appointment(s) fall in this block and were kept; "
            "contact those patients if they must move."
        )
    return 0


def send_reminders(clinic: Clinic, args: argparse.Namespace) -> int:
    return reminders.send_reminders(clinic, args, partial(run_purge, clinic, args))


def run_purge(clinic: Clinic, _args: argparse.Namespace) -> int:
    url = clinic.settings.tracker_store_url
    tracker_engine = create_database_engine(url) if url else None
    try:
        purged = purge(clinic, tracker_engine, LockKeys.from_settings(clinic.settings))
    finally:
        if tracker_engine is not None:
            tracker_engine.dispose()
    print(
        f"Purged (older than {clinic.settings.retention_days} days): {purged.events} "
        f"conversation events, {purged.messages} messages, {purged.replies} replies, "
        f"{purged.handoffs} hand-offs, {purged.locks} lock keys; "
        f"{purged.erasures} unfinished erasures finished.",
        flush=True,
    )
    return 0


def print_settings(settings: Settings, args: argparse.Namespace) -> int:
    """Every setting with its value (secrets and passwords hidden), or `export` lines."""
    if args.export:
        print(shell_exports(settings, args.export))
        return 0
    if args.check_production:  # the same check as the containers' start
        return 0 if production.check(settings, sys.stderr) else 1
    for variable in variables():
        name = variable.metadata["env"]
        print(f"{name}={_shown(name, value_of(settings, name))}\t# {variable.metadata['meaning']}")
    return 0


def _shown(name: str, value: str) -> str:
    if value and name.endswith(("_TOKEN", "_SECRET", "_KEY")):
        return "(set)"
    if value and name.endswith("_URL") and "@" in value:
        return make_url(value).render_as_string(hide_password=True)
    return value


def list_outbox(clinic: Clinic, args: argparse.Namespace) -> int:
    """Replies waiting or given up: ids, age, hashed recipient and why; never their text."""
    outbox = Outbox(clinic.engine, "cli", timedelta(0), clinic.settings.id_hash_key)
    replies = outbox.listing(args.failed)
    now = clinic.now()
    for reply in replies:
        age = int((now - reply.created_at).total_seconds() // 60)
        recipient = hash_id(reply.recipient_id, clinic.settings.id_hash_key)
        print(
            f"{reply.id}\t{reply.status}\t{age} min old\t{reply.attempts} tries\t"
            f"recipient {recipient}\t{reply.error or ''}"
        )
    state = "given up" if args.failed else "waiting or given up"
    print(f"{len(replies)} replies {state}.")
    return 0


def list_handoffs(clinic: Clinic, _args: argparse.Namespace) -> int:
    """Hand-offs by the patient's short reference (as in the logs), state and age; the
    Instagram inbox shows the conversation itself, so no patient text here."""
    settings, now = clinic.settings, clinic.now()
    with transaction(clinic.engine) as session:
        views = handoffs.listing(session, now, settings.handoff_timeout, settings.staff_pause)
    for view in views:
        staff = f"staff wrote {_age(now, view.staff_at)} ago" if view.staff_at else "no staff reply"
        print(
            f"{view.ref}\t{view.state.replace('_', ' ')}\t{_age(now, view.opened_at)} old\t{staff}"
        )
    waiting = sum(view.state != "closed" for view in views)
    print(f"{len(views)} hand-offs, {waiting} open.")
    return 0


def _age(now: datetime, then: datetime) -> str:
    minutes = max(0, int((now - then).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def print_calendar(clinic: Clinic, args: argparse.Namespace) -> int:
    sys.stdout.write(doctor_calendar(clinic, args.doctor_id, args.days_back))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-02-05") from None


def _local_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time like '2026-02-05 14:00' or a date like 2026-02-05"
        ) from None
    if value.tzinfo is not None:
        raise argparse.ArgumentTypeError("give clinic-local times without an offset")
    return value
