"""The reminder job's guarantees with real processes on PostgreSQL: two `python -m clinic
remind --loop` workers racing over the same due reminders, one of them killed with SIGKILL
in the middle of its batch and started again. The fake Twilio counts: every reminder
text is sent once, none is missed."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.models import Notification
from clinic.settings import Settings
from connectors.fake_twilio import ACCOUNT_SID, FakeTwilio
from tests.databases import temporary_postgres_database
from tests.factories import add_appointment, add_doctor
from tests.helpers import wait_until
from tests.servers import BIN, Stack, stack_environment

PATIENTS = 60  # phones +1 202 555 0100 .. 0159: fictional numbers that reach no one


def _booked_soon(clinic: Clinic) -> list[str]:
    """A visit 12 to 18 hours from now for each patient (all due), none of whom wrote on
    Instagram: texts only."""
    from clinic.models import Patient

    doctors = [add_doctor(clinic, name=f"Dr. Worker {n}") for n in range(5)]
    first = (datetime.now(timezone.utc) + timedelta(hours=12)).replace(second=0, microsecond=0)
    phones = []
    with transaction(clinic.engine) as session:
        for n in range(PATIENTS):
            phone = f"+1202555{100 + n:04d}"
            session.add(
                Patient(
                    instagram_id=f"IG_TEST_WORKER_{n}",
                    name="PATIENT TEST",
                    phone=phone,
                    consent_status="granted",
                    created_at=datetime.now(timezone.utc),
                )
            )
            phones.append(phone)
    with transaction(clinic.engine) as session:
        ids = session.scalars(select(Patient.id).order_by(Patient.id)).all()
    for n, patient_id in enumerate(ids):
        start = first + timedelta(minutes=30 * (n // len(doctors)))
        add_appointment(clinic, doctors[n % len(doctors)], patient_id, start)
    return phones


def test_two_workers_and_one_killed_mid_batch_send_each_reminder_once(tmp_path):
    with temporary_postgres_database() as url, FakeTwilio(auth_token="workers") as twilio:
        clinic = Clinic(create_database_engine(url), Settings(database_url=url))
        phones = _booked_soon(clinic)
        env = stack_environment(
            url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN="workers",
            TWILIO_FROM="+12025550100",
            TWILIO_API_URL=twilio.base_url,
            TWILIO_MESSAGES_PER_SECOND="10",  # a batch of 60 takes 6 s: time to kill one
            INBOX_LEASE_SECONDS="3",
        )
        stack = Stack(env, tmp_path)
        command = [str(BIN / "python"), "-m", "clinic", "remind", "--loop", "--interval", "1"]
        try:
            first = stack._start("remind-a", command)
            stack._start("remind-b", command)
            assert wait_until(lambda: len(twilio.texts) >= 15, 120), (
                len(twilio.texts),
                twilio.refused[:3],
            )
            first.stop(signal.SIGKILL)  # mid-batch: some rows leased to it, maybe one in flight
            stack._start("remind-a-again", command)
            assert wait_until(lambda: len(twilio.texts) >= PATIENTS, 180), stack.logs()[-3000:]

            def settled() -> bool:
                with transaction(clinic.engine) as session:
                    states = session.scalars(select(Notification.status)).all()
                return len(states) == PATIENTS and set(states) == {"sent"}

            assert wait_until(settled, 60), stack.logs()[-3000:]
        finally:
            stack.stop()
        sent = Counter(text.to for text in twilio.texts)
        assert sorted(sent) == sorted(phones)  # none missed
        assert set(sent.values()) == {1}  # none twice
        clinic.engine.dispose()
