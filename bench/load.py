"""Load test: N new patients book through signed webhooks on a production-shaped stack.

2 rasa replicas (Instagram channel with its durable inbox and outbox, PostgreSQL tracker
store, Redis lock store) + 2 action servers + PostgreSQL + the fake Graph API, on this machine.
Each patient: "book" -> yes -> name -> phone -> taps a day -> picks a time, each
message to either replica (round robin, like a load balancer). Half of them race
for the same popular slots (first day, first time); the others pick at random.
Run: .venv/bin/python bench/load.py [--patients 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import time as clock_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from clinic.context import Clinic  # noqa: E402
from clinic.db import create_database_engine  # noqa: E402
from clinic.models import Appointment  # noqa: E402
from clinic.settings import Settings  # noqa: E402
from connectors.fake_graph import FakeGraphApi  # noqa: E402
from connectors.simulate import delivery  # noqa: E402
from connectors.webhook import SIGNATURE_HEADER, signature  # noqa: E402
from tests.databases import temporary_postgres_database  # noqa: E402
from tests.factories import add_doctor  # noqa: E402
from tests.servers import running_stack, scaled_out_environment  # noqa: E402

SECRET = "load-secret"
CREDENTIALS = f"""
connectors.instagram.InstagramInput:
  verify_token: load-verify
  app_secret: {SECRET}
  access_token: load-token
"""


class Load:
    def __init__(self, replicas: list[str], graph: FakeGraphApi, arrival: float, think: float):
        self.targets = itertools.cycle(replicas)
        self.graph = graph
        self.turn_latencies: list[float] = []
        self.conflicts = 0
        self.confirmations = 0
        self.turns = 0
        self.failures: list[str] = []
        self.arrival, self.think = arrival, think

    def replies(self, sender: str) -> list[dict]:
        return [b["message"] for b in self.graph.messages_to(sender) if "message" in b]

    async def turn(
        self, session: aiohttp.ClientSession, sender: str, text: str, payload: str | None = None
    ) -> dict:
        expected = len(self.replies(sender)) + 1
        body = delivery(sender, text, quick_reply_payload=payload)
        headers = {SIGNATURE_HEADER: signature(body, SECRET), "Content-Type": "application/json"}
        started = time.perf_counter()
        async with session.post(
            f"{next(self.targets)}/webhooks/instagram/webhook", data=body, headers=headers
        ) as answer:
            assert answer.status == 200
        deadline = time.monotonic() + 120
        while len(self.replies(sender)) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply to turn {expected}")
            await asyncio.sleep(0.02)
        self.turn_latencies.append(time.perf_counter() - started)
        self.turns += 1
        await asyncio.sleep(random.uniform(0.5, 1.5) * self.think)  # reading and typing
        return self.replies(sender)[expected - 1]

    async def patient(self, session: aiohttp.ClientSession, number: int, racer: bool) -> None:
        sender = f"LOAD_{number}_{uuid.uuid4().hex[:6]}"
        rng = random.Random(number)
        await asyncio.sleep(rng.uniform(0, self.arrival))
        try:
            consent = await self.turn(session, sender, "I'd like to book an appointment")
            await self.turn(session, sender, "yes", consent["quick_replies"][0]["payload"])
            await self.turn(session, sender, "PATIENT_TEST")
            days = await self.turn(session, sender, "+1 202 555 0143")
            day = days["quick_replies"][0 if racer else rng.randrange(len(days["quick_replies"]))]
            slots = await self.turn(session, sender, day["title"], day["payload"])
            for _ in range(30):
                options = slots["quick_replies"]
                choice = options[0 if racer else rng.randrange(len(options))]
                slots = await self.turn(session, sender, choice["title"], choice["payload"])
                if slots["text"].startswith("Your appointment is confirmed"):
                    self.confirmations += 1
                    return
                if slots["text"].startswith("That slot was just taken"):
                    self.conflicts += 1
                    racer = False  # like a person: after losing a slot, take any other
                    continue
                raise AssertionError(f"unexpected reply: {slots['text'][:60]}")
        except Exception as error:  # noqa: BLE001 - counted and reported
            self.failures.append(f"{type(error).__name__}: {error}")


def seed_schedule(database_url: str) -> None:
    """A doctor open every day 8:00-20:00 in 15-minute slots: room for every patient."""
    clinic = Clinic(create_database_engine(database_url), Settings(database_url=database_url))
    add_doctor(
        clinic,
        {day: [(clock_time(8), clock_time(20))] for day in range(7)},
        slot_minutes=15,
        name="Dr. Load",
    )
    clinic.engine.dispose()


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def integrity(database_url: str) -> tuple[int, int]:
    """Active bookings, and pairs of active bookings of one doctor that overlap."""
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        booked = connection.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.status == "booked")
        )
        overlaps = connection.scalar(
            text(
                "SELECT count(*) FROM appointments a JOIN appointments b ON a.id < b.id "
                "AND a.doctor_id = b.doctor_id AND a.status = 'booked' AND b.status = 'booked' "
                "AND a.start_at < b.end_at AND b.start_at < a.end_at"
            )
        )
    engine.dispose()
    return booked, overlaps


async def run_load(replicas: list[str], graph: FakeGraphApi, args: argparse.Namespace) -> Load:
    load = Load(replicas, graph, args.arrival_seconds, args.think_seconds)
    patients = args.patients
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(load.patient(session, n, racer=n % 2 == 0) for n in range(patients)))
    return load


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--arrival-seconds", type=float, default=60, help="patients start within")
    parser.add_argument("--think-seconds", type=float, default=2, help="mean pause between turns")
    args = parser.parse_args()
    prefix = uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory() as folder,
        temporary_postgres_database("clinic_load") as database_url,
        FakeGraphApi() as graph,
    ):
        seed_schedule(database_url)
        credentials = Path(folder) / "credentials.yml"
        credentials.write_text(CREDENTIALS)
        env = scaled_out_environment(database_url, graph.base_url, f"load-{prefix}")
        with running_stack(database_url, Path(folder), **env) as stack:
            actions = [stack.start_action_server(), stack.start_action_server()]
            replicas = [
                stack.start_rasa(
                    credentials,
                    None,
                    False,
                    "/webhooks/instagram/",
                    ACTION_SERVER_URL=f"{url}/webhook",
                )
                for url in actions
            ]
            started = time.perf_counter()
            load = asyncio.run(run_load(replicas, graph, args))
            elapsed = time.perf_counter() - started
            time.sleep(3)  # anything still in flight would show up as a duplicate
            memory = {p.name: peak_memory_mb(p.popen.pid) for p in stack.processes}
            sent_turns = load.turns
            delivered = sum(1 for r in graph.delivered if "message" in (r.body or {}))
        booked, overlaps = integrity(database_url)
    print(
        f"{args.patients} patients arriving within {args.arrival_seconds:.0f} s, pausing "
        f"~{args.think_seconds:.0f} s between messages; 2 rasa replicas + 2 action servers, "
        "PostgreSQL + Redis"
    )
    print(
        f"  wall time {elapsed:.1f} s; {load.turns / elapsed:.1f} turns/s; "
        f"{load.confirmations / elapsed:.2f} bookings/s"
    )
    lat = load.turn_latencies
    print(
        f"  turn latency p50 {pct(lat, 0.5):.0f} ms, p95 {pct(lat, 0.95):.0f} ms, "
        f"p99 {pct(lat, 0.99):.0f} ms (median {statistics.median(lat) * 1000:.0f} ms)"
    )
    print(
        f"  bookings made {booked} (confirmations sent {load.confirmations}); "
        f"'slot just taken' answers {load.conflicts}"
    )
    print(
        f"  double bookings {overlaps}; DMs lost {max(0, sent_turns - delivered)}, "
        f"duplicated {max(0, delivered - sent_turns)}; failed patients {len(load.failures)}"
    )
    for failure in load.failures[:5]:
        print(f"    {failure}")
    print("  peak memory (VmHWM): " + ", ".join(f"{n} {m:.0f} MB" for n, m in memory.items()))
    print(f"  load generator + fake Graph API: {peak_memory_mb(os.getpid()):.0f} MB")


if __name__ == "__main__":
    main()
