"""50 patients book the same slot at the same moment, on SQLite and PostgreSQL.

Each attempt has its own connection (no pool). Reports the latency of every
attempt (p50/p99 over all rounds) and how many attempts succeeded per round.
Run: .venv/bin/python bench/contention.py [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.pool import NullPool  # noqa: E402

from clinic.booking import book  # noqa: E402
from clinic.context import Clinic  # noqa: E402
from clinic.db import create_database_engine  # noqa: E402
from clinic.errors import SlotTakenError  # noqa: E402
from clinic.migrate import upgrade_to_latest  # noqa: E402
from clinic.patients import record_consent  # noqa: E402
from clinic.settings import Settings  # noqa: E402
from tests.databases import temporary_postgres_database  # noqa: E402
from tests.factories import add_doctor  # noqa: E402

ZONE = ZoneInfo("America/New_York")
NOW = datetime(2026, 2, 2, 13, tzinfo=timezone.utc)
FIRST_DAY = date(2026, 2, 3)


def prepare(url: str, threads: int) -> list[int]:
    clinic = Clinic(create_database_engine(url), Settings(database_url=url), lambda: NOW)
    add_doctor(
        clinic, {day: [(clock_time(9), clock_time(17))] for day in range(7)}, name="Dr. Bench"
    )
    patients = [record_consent(clinic, f"BENCH_{i}").id for i in range(threads)]
    clinic.engine.dispose()
    return patients


def race(url: str, patients: list[int], start: datetime) -> tuple[list[float], int]:
    clinics = [
        Clinic(
            create_database_engine(url, poolclass=NullPool), Settings(database_url=url), lambda: NOW
        )
        for _ in patients
    ]
    barrier = threading.Barrier(len(patients))
    latencies: list[float] = []
    successes: list[int] = []

    def attempt(clinic: Clinic, patient_id: int) -> None:
        barrier.wait()
        began = time.perf_counter()
        try:
            book(clinic, 1, patient_id, start)
            successes.append(patient_id)
        except SlotTakenError:
            pass
        latencies.append(time.perf_counter() - began)

    workers = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clinics, patients, strict=True)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for clinic in clinics:
        clinic.engine.dispose()
    return latencies, len(successes)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, temporary_postgres_database("clinic_bench") as pg:
        sqlite = f"sqlite:///{folder}/contention.db"
        upgrade_to_latest(sqlite)
        urls = {"sqlite": sqlite, "postgresql": pg}
        patients = {name: prepare(url, args.threads) for name, url in urls.items()}
        results: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name in urls}
        for round_number in range(args.rounds):
            start = datetime.combine(
                FIRST_DAY + timedelta(days=round_number), clock_time(10), tzinfo=ZONE
            )
            for name, url in urls.items():  # interleaved rounds: same machine noise for both
                latencies, booked = race(url, patients[name], start)
                results[name][0].extend(latencies)
                results[name][1].append(booked)
        print(f"{args.threads} concurrent bookings of one slot, {args.rounds} rounds")
        for name, (latencies, booked) in results.items():
            print(
                f"{name:<10} p50 {statistics.median(latencies) * 1e3:6.1f} ms  "
                f"p99 {percentile(latencies, 0.99) * 1e3:6.1f} ms  "
                f"successes per round {sorted(set(booked))} (of {args.threads})"
            )


if __name__ == "__main__":
    main()
