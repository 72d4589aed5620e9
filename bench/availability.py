"""How `available_slots` scales with the size of the appointments table.

Builds three databases per backend with 1k, 10k and 100k appointments spread
over a year and 20 doctors, then times one day's slots for one doctor,
interleaving the sizes so machine noise hits all of them alike.
Run: .venv/bin/python bench/availability.py [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from clinic.availability import available_slots  # noqa: E402
from clinic.context import Clinic  # noqa: E402
from clinic.db import create_database_engine, transaction  # noqa: E402
from clinic.migrate import upgrade_to_latest  # noqa: E402
from clinic.models import Appointment, Doctor, Patient, WorkingHours  # noqa: E402
from clinic.settings import Settings  # noqa: E402
from tests.databases import temporary_postgres_database  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
DOCTORS = 20
YEAR_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
MEASURED_DAY = date(2026, 6, 16)
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


def fill(url: str, appointments: int, seed: int = 7) -> Clinic:
    """Doctors working every day 8-18, and `appointments` random 30-minute bookings."""
    settings = Settings(database_url=url, horizon_days=400)
    clinic = Clinic(create_database_engine(url), settings, clock=lambda: NOW)
    rng = random.Random(seed)
    per_doctor_slots = 365 * 48
    starts = rng.sample(range(DOCTORS * per_doctor_slots), appointments)
    with transaction(clinic.engine) as session:
        session.execute(
            insert(Doctor),
            [
                {
                    "id": d,
                    "name": f"Dr. {d}",
                    "timezone": "America/New_York",
                    "slot_minutes": 30,
                    "active": 1,
                }
                for d in range(1, DOCTORS + 1)
            ],
        )
        session.execute(
            insert(WorkingHours),
            [
                {
                    "doctor_id": d,
                    "weekday": w,
                    "start_time": clock_time(8),
                    "end_time": clock_time(18),
                }
                for d in range(1, DOCTORS + 1)
                for w in range(7)
            ],
        )
        session.execute(
            insert(Patient),
            [{"id": 1, "instagram_id": "BENCH", "consent_status": "granted", "created_at": NOW}],
        )
        rows = []
        for index in starts:
            doctor, slot = divmod(index, per_doctor_slots)
            start = YEAR_START + timedelta(minutes=30 * slot)
            rows.append(
                {
                    "doctor_id": doctor + 1,
                    "patient_id": 1,
                    "start_at": start,
                    "end_at": start + timedelta(minutes=30),
                    "status": "booked",
                    "notes": "",
                    "created_at": NOW,
                }
            )
        for chunk in range(0, len(rows), 5_000):
            session.execute(insert(Appointment), rows[chunk : chunk + 5_000])
    with clinic.engine.begin() as connection:
        # What autovacuum does soon after a bulk load: fresh planner statistics.
        connection.exec_driver_sql("ANALYZE")
    return clinic


def measure(clinics: dict[int, Clinic], rounds: int) -> dict[int, float]:
    timings: dict[int, list[float]] = {size: [] for size in clinics}
    for _ in range(rounds):
        for size, clinic in clinics.items():  # interleaved: same noise for every size
            started = time.perf_counter()
            available_slots(clinic, 1, MEASURED_DAY)
            timings[size].append(time.perf_counter() - started)
    return {size: statistics.median(values) for size, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        backends: dict[str, list[str]] = {"sqlite": [], "postgresql": []}
        for size in SIZES:
            sqlite_url = f"sqlite:///{folder / f'{size}.db'}"
            upgrade_to_latest(sqlite_url)
            backends["sqlite"].append(sqlite_url)
            backends["postgresql"].append(
                stack.enter_context(temporary_postgres_database("clinic_bench"))
            )
        print(f"available_slots for one day, median of {args.rounds} interleaved calls")
        for backend, urls in backends.items():
            clinics = {size: fill(url, size) for size, url in zip(SIZES, urls, strict=True)}
            medians = measure(clinics, args.rounds)
            figures = ", ".join(f"{size // 1000}k: {medians[size] * 1e3:.2f} ms" for size in SIZES)
            ratio = medians[100_000] / medians[1_000]
            print(f"{backend:<10} {figures}; 100k/1k = {ratio:.2f}")
            for clinic in clinics.values():
                clinic.engine.dispose()


if __name__ == "__main__":
    main()
