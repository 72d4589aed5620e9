"""The staff console's two heaviest pages, timed on the server: a doctor's week holding 400
appointments, and the whole clinic's day with 5 doctors.

The week: one doctor working every day 8:00-20:00 on 10-minute slots (504 slots), 400 of
them booked by 400 patients. The day (Tuesday): that doctor's 72 visits and four more
doctors, 9:00-17:00 on 15-minute slots, with 24 visits each. Each page is rendered by
the console's Flask application in this process (what a request costs the server,
without the network), signed in, after two warm-up
requests; the figure is the median and the slowest of --requests renderings. On SQLite,
and on PostgreSQL when TEST_POSTGRES_URL (or the local server) answers.
Run: .venv/bin/python bench/console.py [--requests N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clinic.context import Clinic  # noqa: E402
from clinic.db import create_database_engine, transaction  # noqa: E402
from clinic.migrate import upgrade_to_latest  # noqa: E402
from clinic.models import Appointment, Doctor, Patient, WorkingHours  # noqa: E402
from clinic.schedule import week_start  # noqa: E402
from clinic.settings import Settings  # noqa: E402
from tests.console_support import console_app, signed_in  # noqa: E402
from tests.databases import temporary_postgres_database  # noqa: E402

ZONE_NAME = "America/New_York"


def fill(clinic: Clinic, monday: date) -> int:
    """The week's doctor (400 visits) and the day's five doctors (24 visits each, on
    Tuesday); the week's doctor's id."""
    zone = clinic.settings.zone
    with transaction(clinic.engine) as session:
        week_doctor = Doctor(name="Dr. Week", timezone=ZONE_NAME, slot_minutes=10)
        day_doctors = [
            Doctor(name=f"Dr. Day {n}", timezone=ZONE_NAME, slot_minutes=15) for n in range(1, 5)
        ]
        session.add_all([week_doctor, *day_doctors])
        session.flush()
        for weekday in range(7):
            session.add(WorkingHours(doctor_id=week_doctor.id, weekday=weekday,
                                     start_time=time(8), end_time=time(20)))  # fmt: skip
            for doctor in day_doctors:
                session.add(WorkingHours(doctor_id=doctor.id, weekday=weekday,
                                         start_time=time(9), end_time=time(17)))  # fmt: skip
        slots = [
            datetime.combine(monday + timedelta(days=d), time(8), tzinfo=zone)
            + timedelta(minutes=10 * n)
            for d in range(7)
            for n in range(72)
        ]
        for number, start in enumerate(slots[:400]):
            _visit(session, week_doctor.id, start, 10, number)
        tuesday = monday + timedelta(days=1)
        for doctor in day_doctors:
            for n in range(24):
                start = datetime.combine(tuesday, time(9), tzinfo=zone) + timedelta(minutes=20 * n)
                _visit(session, doctor.id, start, 15, 1000 + doctor.id * 100 + n)
        return week_doctor.id


def _visit(session, doctor_id: int, start: datetime, minutes: int, number: int) -> None:  # noqa: ANN001
    patient = Patient(
        instagram_id=f"BENCH_{number}",
        name=f"Bench Patient {chr(65 + number % 26)}",
        phone=f"+1202555{100 + number % 100:04d}",
        consent_status="granted",
        created_at=datetime.now(timezone.utc),
    )
    session.add(patient)
    session.flush()
    session.add(
        Appointment(
            doctor_id=doctor_id,
            patient_id=patient.id,
            start_at=start,
            end_at=start + timedelta(minutes=minutes),
            source="instagram" if number % 3 else "phone",
        )
    )


def timed(client, path: str, requests: int) -> tuple[float, float, int]:  # noqa: ANN001
    """Median and slowest milliseconds of `requests` GETs, and the page's size."""
    for _ in range(2):
        answer = client.get(path)
        assert answer.status_code == 200, answer.status_code
    times = []
    for _ in range(requests):
        started = clock.perf_counter()
        answer = client.get(path)
        times.append(1000 * (clock.perf_counter() - started))
    return statistics.median(times), max(times), len(answer.data)


def run(database_url: str, label: str, requests: int) -> None:
    # A Monday morning in the clinic's zone, so every slot of the week is still ahead.
    now = datetime(2026, 2, 2, 12, 0, tzinfo=timezone.utc)
    clinic = Clinic(
        create_database_engine(database_url),
        Settings(database_url=database_url, timezone=ZONE_NAME),
        lambda: now,
    )
    monday = week_start(now.date())
    doctor_id = fill(clinic, monday)
    client, _ = signed_in(console_app(clinic), clinic, "desk")
    week = timed(client, f"/week?doctor={doctor_id}&week={monday.isoformat()}", requests)
    day = timed(client, f"/?day={(monday + timedelta(days=1)).isoformat()}", requests)
    for name, (median, slowest, size) in (("week, 400 visits", week), ("day, 5 doctors", day)):
        print(
            f"{label:10} {name:18} median {median:6.1f} ms   slowest {slowest:6.1f} ms   "
            f"{size / 1024:5.0f} KiB"
        )
    clinic.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade_to_latest(url)
        run(url, "SQLite", args.requests)
    try:
        with temporary_postgres_database("clinic_bench") as url:
            run(url, "PostgreSQL", args.requests)
    except RuntimeError as error:
        print(f"PostgreSQL skipped: {error}")


if __name__ == "__main__":
    main()
