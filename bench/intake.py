"""The commits on a turn's path: the inbox's, before Meta's 200 (a delivery of one message,
and one of twenty), and a reply's, before it is sent.

`Inbox.accept` on SQLite and PostgreSQL, one patient per message, up to 4 claimed at once
as the channel does; the line is emptied between commits (untimed), as turns end in a
running server. `Outbox.add` for a reply, each to a patient with nothing else pending.
Reports wall time p50/p90 and this process's CPU time per commit.
Run: .venv/bin/python bench/intake.py [--commits N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from clinic.db import create_database_engine  # noqa: E402
from clinic.delivery import Inbox, NewMessage, Outbox  # noqa: E402
from clinic.migrate import upgrade_to_latest  # noqa: E402
from tests.databases import temporary_postgres_database  # noqa: E402

SENDERS = 40
_END_TURNS = text("UPDATE inbox_messages SET status = 'done' WHERE status = 'pending'")


def measure(url: str, label: str, commits: int) -> None:
    engine = create_database_engine(url)
    inbox = Inbox(engine, "bench", timedelta(seconds=15), "bench-key", max_pending=100_000)
    written = 0

    def batch(size: int) -> list[NewMessage]:
        nonlocal written
        written += size
        return [
            NewMessage(f"m.{uuid.uuid4().hex}", f"BENCH_{n % SENDERS}", n, "text", "hi")
            for n in range(written - size, written)
        ]

    for size in (1, 20):
        walls, cpus = [], []
        for _ in range(commits // size + 10):
            messages = batch(size)
            wall, cpu = time.perf_counter(), time.process_time()
            inbox.accept(messages, claim_up_to=4)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            with engine.begin() as connection:
                connection.execute(_END_TURNS)
        report(f"{label:>10}, inbox, {size:2} per commit", walls, cpus)
    outbox = Outbox(engine, "bench", timedelta(seconds=15), "bench-key")
    walls, cpus = [], []
    for n in range(commits + 10):
        wall, cpu = time.perf_counter(), time.process_time()
        outbox.add(f"BENCH_REPLY_{n}", f"m.{n}", 0, {"text": "Hello! How can I help?"})
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    report(f"{label:>10}, a reply", walls, cpus)
    engine.dispose()


def report(what: str, walls: list[float], cpus: list[float]) -> None:
    walls, cpus = walls[10:], cpus[10:]  # warm-up
    print(
        f"{what}: p50 {1000 * statistics.median(walls):.2f} ms,"
        f" p90 {1000 * sorted(walls)[int(0.9 * len(walls))]:.2f} ms,"
        f" CPU {1000 * statistics.mean(cpus):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=300, help="of one message")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/intake.db"
        upgrade_to_latest(url)
        measure(url, "SQLite", args.commits)
    with temporary_postgres_database("clinic_bench") as url:
        measure(url, "PostgreSQL", args.commits)


if __name__ == "__main__":
    main()
