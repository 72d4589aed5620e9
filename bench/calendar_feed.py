"""A doctor's calendar feed over HTTP: one year of a full-time doctor's bookings.

About 4,000 appointments (16 a day, 5 days a week, 50 weeks) from tomorrow on, in a SQLite
clinic, served by the rasa server of make serve at /calendar/<id>.ics. The server starts
on the filled database and warms the feeds (logged); times are measured by the client:
the first GET after the server started, a GET after each new booking, a full GET of an
unchanged feed, and a conditional GET answered 304. Every answer reads the database;
events already serialized are reused.
Run: .venv/bin/python bench/calendar_feed.py [--requests N]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from email.message import Message
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from icalendar import Calendar  # noqa: E402

from clinic.context import Clinic  # noqa: E402
from clinic.db import create_database_engine, transaction  # noqa: E402
from clinic.feed_links import feed_url, rotate_feed  # noqa: E402
from clinic.migrate import upgrade_to_latest  # noqa: E402
from clinic.models import Appointment  # noqa: E402
from clinic.settings import load_settings  # noqa: E402
from tests.factories import add_appointment, add_doctor, add_patient  # noqa: E402
from tests.servers import ROOT, http_get, running_stack  # noqa: E402

WARMED = re.compile(r"calendar feeds warmed: (\d+) doctors in (\d+) ms")
ENV = {  # placeholders: no message is sent
    "INSTAGRAM_VERIFY_TOKEN": "bench-verify",
    "INSTAGRAM_APP_SECRET": "bench-secret",
    "INSTAGRAM_ACCESS_TOKEN": "bench-token",
    "INSTAGRAM_GRAPH_URL": "http://127.0.0.1:9/v21.0",
    "ACTION_SERVER_URL": "http://127.0.0.1:9/webhook",
}


def fill_a_year(clinic: Clinic, doctor_id: int, patient_id: int) -> int:
    first = (clinic.now() + timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
    rows = []
    for day in range(350):
        start_of_day = first + timedelta(days=day)
        if start_of_day.weekday() >= 5:
            continue
        for slot in range(16):
            start = start_of_day + timedelta(minutes=30 * slot)
            rows.append(
                Appointment(
                    doctor_id=doctor_id,
                    patient_id=patient_id,
                    start_at=start,
                    end_at=start + timedelta(minutes=30),
                )
            )
    with transaction(clinic.engine) as session:
        session.add_all(rows)
    return len(rows)


def book_one(clinic: Clinic, doctor_id: int, day: int) -> None:
    start = (clinic.now() + timedelta(days=400 + day)).replace(microsecond=0)
    add_appointment(clinic, doctor_id, None, start)


def timed_get(url: str, **headers: str) -> tuple[float, int, bytes, Message]:
    started = time.perf_counter()
    status, answer_headers, body = http_get(url, **headers)
    return time.perf_counter() - started, status, body, answer_headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{Path(folder) / 'feed.db'}"
        os.environ["DATABASE_URL"] = database_url
        upgrade_to_latest(database_url)
        with running_stack(database_url, Path(folder), **ENV) as servers:
            settings = load_settings(servers.env)
            clinic = Clinic(create_database_engine(database_url), settings)
            doctor = add_doctor(clinic)
            count = fill_a_year(clinic, doctor, add_patient(clinic).id)
            rasa_url = servers.start_rasa(
                credentials=ROOT / "credentials.yml", api=False, ready_path="/webhooks/instagram/"
            )
            served = load_settings({**servers.env, "PUBLIC_URL": rasa_url})
            url = feed_url(served, doctor, rotate_feed(clinic, doctor))
            warmed = WARMED.search(_wait_for_log(servers, WARMED))
            first, _, body, headers = timed_get(url)  # the first since the server started
            events = len(Calendar.from_ical(body).walk("VEVENT"))
            full = [timed_get(url)[0] for _ in range(args.requests)]
            etag = headers["ETag"]
            cached = [timed_get(url, **{"If-None-Match": etag})[0] for _ in range(args.requests)]
            statuses = {timed_get(url, **{"If-None-Match": etag})[1]}
            after_booking = []
            for day in range(5):  # a new booking each time: the feed changed
                book_one(clinic, doctor, day)
                after_booking.append(timed_get(url, **{"If-None-Match": etag})[0])
    print(f"{count} appointments, {events} events, {len(body) / 1024:.0f} KiB")
    print(f"feeds warmed when the server started: {warmed[1]} doctor(s) in {warmed[2]} ms")
    print(f"first GET after the server started: {1000 * first:.0f} ms")
    print(f"GET after a new booking: {spread(after_booking)}")
    print(f"full GET: {spread(full)}")
    print(f"conditional GET ({statuses}): {spread(cached)}")


def spread(values: list[float]) -> str:
    ordered = sorted(1000 * value for value in values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.0f} ms, p95 {p95:.0f} ms, max {ordered[-1]:.0f} ms"


def _wait_for_log(servers, pattern: re.Pattern, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = servers.logs()
        if pattern.search(logs):
            return logs
        time.sleep(0.1)
    raise TimeoutError("the rasa server did not log that the feeds were warmed")


if __name__ == "__main__":
    main()
