"""Ack and turn latency and CPU per turn: our Instagram channel vs Rasa's facebook and REST
channels, side by side in one run.

Two stacks run side by side, one on SQLite and one on PostgreSQL (the database of the
clinic and of the channel's durable inbox and outbox); in each, one rasa server (same model)
serves all three channels, with one action server; replies go to the fake Graph API on
loopback. Rounds interleave backends, channels and concurrency:
- ack latency: time until the webhook POST is answered (ours commits the messages to the
  inbox first), at 1 and 20 concurrent senders, ours and Rasa's facebook channel's;
- turn latency: message in -> reply out, at 1 and 20 concurrent senders (for Instagram: the
  DM at the fake Graph API; for REST: the HTTP answer, which carries the reply: the
  no-overhead floor).
CPU time per turn is metered for the rasa server and for the whole machine but the
benchmark's own process (PostgreSQL and the action server included): at 20 senders the
cores are the bottleneck, and CPU time is less noisy than latency on a shared machine.
Run: .venv/bin/python bench/webhook.py [--messages N] [--rounds N] [--think-ms MS]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from connectors.fake_graph import FakeGraphApi  # noqa: E402
from connectors.simulate import delivery  # noqa: E402
from connectors.webhook import SIGNATURE_HEADER, signature  # noqa: E402
from entrypoints.cli import main as clinic_cli  # noqa: E402
from tests.databases import temporary_postgres_database  # noqa: E402
from tests.servers import running_stack  # noqa: E402

SECRET = "bench-secret"
CHANNELS = ("instagram", "rest")
CREDENTIALS = f"""
rest:
facebook:
  verify: bench-verify
  secret: {SECRET}
  page-access-token: bench-token
connectors.instagram.InstagramInput:
  verify_token: bench-verify
  app_secret: {SECRET}
  access_token: bench-token
"""


def facebook_delivery(sender: str, text: str) -> tuple[bytes, dict]:
    now = int(time.time() * 1000)
    message = {"mid": f"mid.{uuid.uuid4().hex}", "text": text}
    item = {
        "sender": {"id": sender},
        "recipient": {"id": "PAGE"},
        "timestamp": now,
        "message": message,
    }
    body = json.dumps(
        {"object": "page", "entry": [{"id": "PAGE", "time": now, "messaging": [item]}]}
    ).encode()
    sha1 = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    return body, {"X-Hub-Signature": f"sha1={sha1}", "Content-Type": "application/json"}


def instagram_delivery(sender: str, text: str) -> tuple[bytes, dict]:
    body = delivery(sender, text)
    return body, {SIGNATURE_HEADER: signature(body, SECRET), "Content-Type": "application/json"}


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as answer:
        await answer.read()
        assert answer.status == 200, answer.status
    return time.perf_counter() - started


async def ack_latencies(
    rasa: str, channel: str, senders: int, messages: int, graph: FakeGraphApi
) -> list[float]:
    """`senders` patients at once, each sending `messages` in a row; each POST is timed."""
    url = f"{rasa}/webhooks/{channel}/webhook"
    build = instagram_delivery if channel == "instagram" else facebook_delivery
    run_id = uuid.uuid4().hex[:6]
    before = _replies(graph)

    async def patient(number: int, session: aiohttp.ClientSession) -> list[float]:
        sender = f"BENCH_{channel}_{run_id}_{number}"
        return [await post(session, url, *build(sender, "hi")) for _ in range(messages)]

    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(patient(n, session) for n in range(senders)))
    # Let every turn finish before the next measurement starts.
    expected = before + senders * messages
    deadline = time.monotonic() + 600
    while _replies(graph) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return [latency for one in results for latency in one]


def _replies(graph: FakeGraphApi) -> int:
    return sum(1 for r in graph.delivered if "message" in (r.body or {}))


async def instagram_turns(
    rasa: str, graph: FakeGraphApi, senders: int, count: int, think: float = 0.0
) -> list[float]:
    """Webhook sent -> reply received by the fake Graph API (its own arrival timestamp), for
    `senders` patients at once, each sending `count` messages one after the other, `think`
    seconds after the last answer."""
    url = f"{rasa}/webhooks/instagram/webhook"
    run_id = uuid.uuid4().hex[:6]
    loop = asyncio.get_running_loop()
    # Each patient waits for its reply on the fake Graph API's condition, not by polling: a
    # poll every few ms per patient would take the cores the servers measured need.
    waiters = ThreadPoolExecutor(max_workers=senders)

    async def patient(number: int, session: aiohttp.ClientSession) -> list[float]:
        sender = f"BENCH_TURN_{run_id}_{number}"
        latencies = []
        for _ in range(count):
            seen = len(graph.messages_to(sender))
            started = time.monotonic()
            await post(session, url, *instagram_delivery(sender, "hi"))

            def answered(seen: int = seen) -> bool:
                return len(graph.messages_to(sender)) > seen

            await loop.run_in_executor(waiters, graph.wait_for, answered, 600)
            latencies.append(graph.deliveries_to(sender)[seen].time - started)
            await asyncio.sleep(think)
        return latencies

    with waiters:
        async with aiohttp.ClientSession() as session:
            results = await asyncio.gather(*(patient(n, session) for n in range(senders)))
    return [latency for one in results for latency in one]


async def rest_turns(rasa: str, senders: int, count: int, think: float = 0.0) -> list[float]:
    url = f"{rasa}/webhooks/rest/webhook"
    run_id = uuid.uuid4().hex[:6]
    headers = {"Content-Type": "application/json"}

    async def patient(number: int, session: aiohttp.ClientSession) -> list[float]:
        body = json.dumps({"sender": f"BENCH_REST_{run_id}_{number}", "message": "hi"}).encode()
        latencies = []
        for _ in range(count):
            latencies.append(await post(session, url, body, headers))
            await asyncio.sleep(think)
        return latencies

    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(patient(n, session) for n in range(senders)))
    return [latency for one in results for latency in one]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def servers_cpu_seconds() -> float:
    """CPU time the whole machine has used so far, but for this process (the benchmark's
    clients and the fake Graph API): every server of the stack, PostgreSQL included. The
    machine is shared, so other work counts too: compare channels within a run."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(field) for field in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK") - time.process_time()


class CpuMeter:
    """CPU time per turn of the rasa server and of the whole machine, phase by phase."""

    def __init__(self, rasa_pid: int):
        self.rasa_pid = rasa_pid
        self.used: dict[tuple, float] = defaultdict(float)
        self.turns: dict[tuple, int] = defaultdict(int)

    @contextmanager
    def measure(self, key: tuple, turns: int) -> Iterator[None]:
        rasa_before, servers_before = cpu_seconds(self.rasa_pid), servers_cpu_seconds()
        yield
        self.used[(*key, "rasa")] += cpu_seconds(self.rasa_pid) - rasa_before
        self.used[(*key, "servers")] += servers_cpu_seconds() - servers_before
        self.turns[key] += turns

    def per_turn_ms(self, key: tuple, process: str) -> float:
        return 1000 * self.used[(*key, process)] / self.turns[key]


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000


@contextmanager
def stack_on(backend: str, folder: Path, graph: FakeGraphApi) -> Iterator[tuple[str, CpuMeter]]:
    """An action server and a rasa server with the three channels on `backend`; the rasa
    server's URL and a meter of its CPU time."""
    with ExitStack() as resources:
        if backend == "postgres":
            database_url = resources.enter_context(temporary_postgres_database("clinic_bench"))
        else:
            database_url = f"sqlite:///{folder / 'bench.db'}"
        os.environ["DATABASE_URL"] = database_url
        clinic_cli(["init"]), clinic_cli(["seed", "--demo"])
        credentials = folder / "credentials.yml"
        credentials.write_text(CREDENTIALS)
        patch = Path(__file__).resolve().parent / "facebook_graph"
        env = {
            "INSTAGRAM_GRAPH_URL": graph.base_url,
            "INSTAGRAM_TYPING_INDICATOR": "0",
            "BENCH_FACEBOOK_GRAPH_URL": graph.base_url.rsplit("/", 1)[0] + "/v2.12",
        }
        stack = resources.enter_context(running_stack(database_url, folder, **env))
        stack.env["PYTHONPATH"] = f"{patch}:{stack.env['PYTHONPATH']}"
        stack.start_action_server()
        rasa = stack.start_rasa(
            credentials=credentials, api=False, ready_path="/webhooks/instagram/"
        )
        meter = CpuMeter(stack.processes[-1].popen.pid)
        asyncio.run(rest_turns(rasa, 1, 5))  # warm-up
        asyncio.run(instagram_turns(rasa, graph, 1, 5))
        yield rasa, meter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5, help="per sender and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--think-ms",
        type=float,
        default=100.0,
        help="a patient's pause between an answer and the next message (turn latency)",
    )
    args = parser.parse_args()
    backends = ("sqlite", "postgres")
    acks: dict[tuple, list[float]] = defaultdict(list)
    turns: dict[tuple, list[float]] = defaultdict(list)
    with ExitStack() as resources:
        graph = resources.enter_context(FakeGraphApi())
        servers = {}
        for backend in backends:
            folder = Path(resources.enter_context(tempfile.TemporaryDirectory()))
            servers[backend] = resources.enter_context(stack_on(backend, folder, graph))
        for _ in range(args.rounds):
            for backend, senders in itertools.product(backends, (1, 20)):
                rasa, meter = servers[backend]
                for channel in ("instagram", "facebook"):
                    acks[backend, channel, senders] += asyncio.run(
                        ack_latencies(rasa, channel, senders, args.messages, graph)
                    )
                think = args.think_ms / 1000
                count = senders * args.messages
                with meter.measure((backend, "instagram", senders), count):
                    turns[backend, "instagram", senders] += asyncio.run(
                        instagram_turns(rasa, graph, senders, args.messages, think)
                    )
                with meter.measure((backend, "rest", senders), count):
                    turns[backend, "rest", senders] += asyncio.run(
                        rest_turns(rasa, senders, args.messages, think)
                    )
    print(
        f"{args.rounds} rounds x {args.messages} messages per sender, times in ms;"
        f" {args.think_ms:.0f} ms between an answer and a patient's next message"
    )
    for backend, senders in itertools.product(backends, (1, 20)):
        report(acks, turns, servers[backend][1], backend, senders)


def report(acks: dict, turns: dict, meter: CpuMeter, backend: str, senders: int) -> None:
    """One line: acks against facebook's, turns against REST's, CPU per turn against REST's."""
    ours, theirs = acks[backend, "instagram", senders], acks[backend, "facebook", senders]
    ig, rest = turns[backend, "instagram", senders], turns[backend, "rest", senders]
    ig_cpu, rest_cpu = (meter.per_turn_ms((backend, c, senders), "rasa") for c in CHANNELS)
    ig_all, rest_all = (meter.per_turn_ms((backend, c, senders), "servers") for c in CHANNELS)
    print(
        f"{backend:>8} {senders:>2} senders"
        f" | ack p50 {pct(ours, 0.5):5.1f} p99 {pct(ours, 0.99):6.1f}"
        f" (facebook p50 {pct(theirs, 0.5):5.1f} p99 {pct(theirs, 0.99):6.1f},"
        f" p99 ratio {pct(ours, 0.99) / pct(theirs, 0.99):.2f}x)"
        f" | turn: instagram p50 {pct(ig, 0.5):6.1f} p99 {pct(ig, 0.99):6.1f},"
        f" rest p50 {pct(rest, 0.5):6.1f} p99 {pct(rest, 0.99):6.1f},"
        f" ratio p50 {statistics.median(ig) / statistics.median(rest):.2f}x"
        f" | CPU per turn: rasa {ig_cpu:.1f} ms ({ig_cpu / rest_cpu:.2f}x REST's"
        f" {rest_cpu:.1f}); whole machine {ig_all:.1f} ms"
        f" ({ig_all / rest_all:.2f}x REST's {rest_all:.1f})"
    )


if __name__ == "__main__":
    main()
