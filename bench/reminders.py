"""Reminders that arrive: a simulated week, and 5,000 reminders due at once.

1. A simulated week, with a frozen clock that moves an hour at a time: 200 scripted
   patients each book a visit 1 to 14 days ahead (their last message is the booking), and
   the reminder job runs every hour, as `remind --loop` would. Two runs side by side on the
   same bookings: Instagram alone (no Twilio), and with texts (the fake Twilio; 1 patient
   in 100 said "no texts", by default). The figure: the share of visits whose reminder was
   delivered.
2. 5,000 reminders due at once, sent by `python -m clinic remind` (a real process) through
   the fake Twilio at TWILIO_MESSAGES_PER_SECOND: the time it took, the rate it held, its
   peak memory, and how many texts arrived (each once).
Run: .venv/bin/python bench/reminders.py [--patients 200] [--no-texts 0.01] [--burst 5000]
     [--rate 100]
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, or_, select  # noqa: E402

from clinic.application import ClinicApp, Wish  # noqa: E402
from clinic.context import Clinic  # noqa: E402
from clinic.db import create_database_engine, transaction  # noqa: E402
from clinic.migrate import upgrade_to_latest  # noqa: E402
from clinic.models import Appointment, Notification, OutboxMessage, Patient  # noqa: E402
from clinic.outbox import Outbox  # noqa: E402
from clinic.patients import note_message  # noqa: E402
from clinic.reminders import queue_due_reminders  # noqa: E402
from clinic.settings import Settings  # noqa: E402
from connectors.fake_graph import FakeGraphApi  # noqa: E402
from connectors.fake_twilio import ACCOUNT_SID, FakeTwilio  # noqa: E402
from connectors.graph_api import GraphApiClient  # noqa: E402
from connectors.graph_messages import text_messages  # noqa: E402
from connectors.outbox import OutboxSender  # noqa: E402
from connectors.sms_client import TwilioTexts  # noqa: E402
from tests.databases import with_demo_profile  # noqa: E402
from tests.factories import add_doctor  # noqa: E402
from tests.servers import BIN, ROOT, stack_environment  # noqa: E402

MONDAY = datetime(2026, 2, 2, 13, 0, tzinfo=timezone.utc)  # 8:00 in New York


class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class Week:
    visits: int
    delivered: Counter  # channel -> reminders sent through it
    missed_no_texts: int  # undelivered reminders of patients who said "no texts"
    missed_other: int  # any other undelivered reminder (the figure that must be 0)
    said_no_texts: int


def simulated_week(patients: int, texts: bool, no_texts: float, seed: int = 7) -> Week:
    """One run; the same bookings (and the same patients saying "no texts") every run."""
    rng = random.Random(seed)
    folder = tempfile.mkdtemp()
    url = f"sqlite:///{folder}/week.db"
    upgrade_to_latest(url)
    with_demo_profile(url)
    with (
        FakeGraphApi(access_token="t") as graph,
        FakeTwilio(auth_token="w", deliver=False) as twilio,
    ):
        extra = dict(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token="w",
            twilio_from="+12025550100",
            twilio_api_url=twilio.base_url,
            twilio_rate=1000.0,
        )
        settings = Settings(database_url=url, **(extra if texts else {}))
        clock = Clock(MONDAY)
        clinic = Clinic(create_database_engine(url), settings, clock)
        app = ClinicApp(clinic)
        for n in range(6):
            add_doctor(clinic, name=f"Dr. Week {n}", hours={
                d: [(datetime.min.time().replace(hour=8), datetime.min.time().replace(hour=18))]
                for d in range(7)
            })  # fmt: skip
        refused = set()
        # The bookings come in over the week's first three days; each visit 1-14 days later.
        for n in range(patients):
            clock.moment = MONDAY + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
            sender = f"IG_BENCH_{n}"
            app.grant_consent(sender)
            app.save_details(sender, "PATIENT TEST", f"+1202555{100 + n % 100:04d}")
            if rng.random() < no_texts:
                app.choose_texts(sender, False)
                refused.add(sender)
            note_message(clinic, sender)
            day = clock.moment.date() + timedelta(days=rng.randint(1, 14))
            found = app.first_day_with_slots(day, Wish())
            app.book_for(sender, found.offers[rng.randrange(len(found.offers))], clock())
        # A family's phone is shared: keep each number to one patient in this simulation.
        with transaction(clinic.engine) as session:
            for number, patient in enumerate(session.scalars(select(Patient).order_by(Patient.id))):
                patient.phone = f"+1{201 + number // 100}555{100 + number % 100:04d}"
        key = settings.id_hash_key
        outbox = Outbox(clinic.engine, "week", timedelta(seconds=15), key, clock)
        client = GraphApiClient("t", base_url=graph.base_url)
        sender_ = OutboxSender(
            outbox, client, timedelta(minutes=3), key, None,
            TwilioTexts(settings) if texts else None, settings.twilio_rate,
        )  # fmt: skip
        clock.moment = MONDAY
        render = _render
        while clock.moment < MONDAY + timedelta(days=18):
            queue_due_reminders(clinic, outbox, render, text_messages)
            while sender_.poll():
                pass
            clock.moment += timedelta(hours=1)
        client.close()
        with transaction(clinic.engine) as session:
            visits = session.scalar(select(func.count()).select_from(Appointment))
            delivered = Counter(
                session.scalars(
                    select(OutboxMessage.channel).where(
                        OutboxMessage.origin.like("reminder:%"), OutboxMessage.status == "sent"
                    )
                )
            )
            missed = session.scalars(
                select(Patient.instagram_id)
                .join(Appointment, Appointment.patient_id == Patient.id)
                .join(Notification, Notification.appointment_id == Appointment.id, isouter=True)
                .where(or_(Notification.status.is_(None), Notification.status != "sent"))
            ).all()
        clinic.engine.dispose()
    no_texts_missed = sum(1 for sender in missed if sender in refused)
    return Week(visits, delivered, no_texts_missed, len(missed) - no_texts_missed, len(refused))


def _render(start: datetime, zone, channel: str) -> str:  # noqa: ANN001
    return f"Reminder ({channel}): your appointment is on {start.astimezone(zone):%b %d %H:%M}."


def burst(count: int, rate: float) -> dict:
    """`python -m clinic remind` sending `count` reminders due at once at `rate` a second."""
    folder = tempfile.mkdtemp()
    url = f"sqlite:///{folder}/burst.db"
    upgrade_to_latest(url)
    with_demo_profile(url)
    clinic = Clinic(create_database_engine(url), Settings(database_url=url))
    doctors = [add_doctor(clinic, name=f"Dr. Burst {n}") for n in range(50)]
    soon = (datetime.now(timezone.utc) + timedelta(hours=6)).replace(second=0, microsecond=0)
    with transaction(clinic.engine) as session:
        for n in range(count):
            patient = Patient(
                instagram_id=f"IG_BURST_{n}",
                name="PATIENT TEST",
                # 555-0100..0199 in fifty area codes: fictional numbers that reach no one.
                phone=f"+1{201 + n // 100}555{100 + n % 100:04d}",
                consent_status="granted",
                created_at=soon,
            )
            session.add(patient)
            session.flush()
            start = soon + timedelta(minutes=10 * (n // len(doctors)))
            session.add(
                Appointment(
                    doctor_id=doctors[n % len(doctors)],
                    patient_id=patient.id,
                    start_at=start,
                    end_at=start + timedelta(minutes=10),
                )
            )
    clinic.engine.dispose()
    with FakeTwilio(auth_token="burst", deliver=False) as twilio:
        env = stack_environment(
            url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN="burst",
            TWILIO_FROM="+12025550100",
            TWILIO_API_URL=twilio.base_url,
            TWILIO_MESSAGES_PER_SECOND=str(rate),
            REMINDER_LEAD_HOURS="48",
        )
        started = time.monotonic()
        subprocess.run(
            [str(BIN / "python"), "-m", "clinic", "remind"], cwd=ROOT, env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        texts = twilio.texts
    times = sorted(t.created for t in texts)
    sending = times[-1] - times[0] if len(times) > 1 else 0.0
    per_number = Counter(t.to for t in texts)
    return {
        "texts": len(texts),
        "distinct": len(per_number),
        "twice": sum(1 for c in per_number.values() if c > 1),
        "elapsed": elapsed,
        "rate": (len(times) - 1) / sending if sending else 0.0,
        "peak_mib": peak_kib / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--no-texts", type=float, default=0.01, help="share saying no texts")
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    for texts in (False, True):
        week = simulated_week(args.patients, texts, args.no_texts)
        sent = sum(week.delivered.values())
        how = "with texts    " if texts else "Instagram only"
        channels = ", ".join(f"{n} by {channel}" for channel, n in sorted(week.delivered.items()))
        print(
            f"simulated week, {how}: {sent}/{week.visits} reminders delivered "
            f"({100 * sent / week.visits:.1f}%: {channels or 'none'}); not delivered: "
            f"{week.missed_no_texts} of patients who said no texts ({week.said_no_texts} did), "
            f"{week.missed_other} others"
        )
    figures = burst(args.burst, args.rate)
    print(
        f"burst: {figures['texts']} texts to {figures['distinct']} numbers "
        f"({figures['twice']} twice) in {figures['elapsed']:.1f} s; held "
        f"{figures['rate']:.1f}/s for a configured {args.rate:g}/s; peak memory of "
        f"`remind` {figures['peak_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
