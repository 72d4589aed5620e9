"""Ack and turn latency: our Instagram channel vs Rasa's facebook and REST channels.

One rasa server (same model, same run) serves all three channels; replies go to the
fake Graph API on loopback. Measured per channel, rounds interleaved:
- ack latency: time until the webhook POST is answered, at 1 and 20 concurrent senders;
- turn latency: message in -> reply out (for Instagram: the DM at the fake Graph API;
  for REST: the HTTP answer, which carries the reply, the no-overhead floor).
Run: .venv/bin/python bench/webhook.py [--messages N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from connectors.fake_graph import FakeGraphApi  # noqa: E402
from connectors.simulate import delivery  # noqa: E402
from connectors.webhook import SIGNATURE_HEADER, signature  # noqa: E402
from entrypoints.cli import main as clinic_cli  # noqa: E402
from tests.servers import running_stack  # noqa: E402

SECRET = "bench-secret"
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


async def instagram_turns(rasa: str, graph: FakeGraphApi, count: int) -> list[float]:
    """Webhook sent -> reply received by the fake Graph API (its own arrival timestamp)."""
    url = f"{rasa}/webhooks/instagram/webhook"
    sender = f"BENCH_TURN_{uuid.uuid4().hex[:6]}"
    latencies = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            seen = len(graph.messages_to(sender))
            started = time.monotonic()
            await post(session, url, *instagram_delivery(sender, "hi"))
            while len(graph.messages_to(sender)) <= seen:
                await asyncio.sleep(0.005)
            reply = graph.deliveries_to(sender)[seen]
            latencies.append(reply.time - started)
    return latencies


async def rest_turns(rasa: str, count: int) -> list[float]:
    url = f"{rasa}/webhooks/rest/webhook"
    sender = f"BENCH_REST_{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as session:
        body = json.dumps({"sender": sender, "message": "hi"}).encode()
        headers = {"Content-Type": "application/json"}
        return [await post(session, url, body, headers) for _ in range(count)]


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5, help="per sender and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeGraphApi() as graph:
        folder_path = Path(folder)
        credentials = folder_path / "credentials.yml"
        credentials.write_text(CREDENTIALS)
        database_url = f"sqlite:///{folder_path / 'bench.db'}"
        import os

        os.environ["DATABASE_URL"] = database_url
        clinic_cli(["init"]), clinic_cli(["seed", "--demo"])
        patch = Path(__file__).resolve().parent / "facebook_graph"
        env = {
            "INSTAGRAM_GRAPH_URL": graph.base_url,
            "INSTAGRAM_TYPING_INDICATOR": "0",
            "BENCH_FACEBOOK_GRAPH_URL": graph.base_url.rsplit("/", 1)[0] + "/v2.12",
        }
        with running_stack(database_url, folder_path, **env) as stack:
            stack.env["PYTHONPATH"] = f"{patch}:{stack.env['PYTHONPATH']}"
            stack.start_action_server()
            rasa = stack.start_rasa(
                credentials=credentials, api=False, ready_path="/webhooks/instagram/"
            )
            asyncio.run(rest_turns(rasa, 5))  # warm-up
            acks: dict[tuple[str, int], list[float]] = {}
            turns: dict[str, list[float]] = {"instagram": [], "rest": []}
            for _ in range(args.rounds):
                for senders in (1, 20):
                    for channel in ("instagram", "facebook"):
                        key = (channel, senders)
                        acks.setdefault(key, []).extend(
                            asyncio.run(ack_latencies(rasa, channel, senders, args.messages, graph))
                        )
                turns["instagram"] += asyncio.run(instagram_turns(rasa, graph, args.messages * 2))
                turns["rest"] += asyncio.run(rest_turns(rasa, args.messages * 2))
    print(f"ack latency (ms), {args.rounds} rounds x {args.messages} messages per sender")
    for senders in (1, 20):
        ours, theirs = acks[("instagram", senders)], acks[("facebook", senders)]
        print(
            f"  {senders:>2} senders: instagram p50 {pct(ours, 0.5):7.1f}"
            f" p99 {pct(ours, 0.99):7.1f}"
            f" | facebook p50 {pct(theirs, 0.5):7.1f} p99 {pct(theirs, 0.99):7.1f}"
            f" | p99 ratio {pct(theirs, 0.99) / pct(ours, 0.99):6.1f}x"
        )
    ig, rest = turns["instagram"], turns["rest"]
    print(
        f"turn latency (ms), 1 sender: instagram p50 {pct(ig, 0.5):.1f} p99 {pct(ig, 0.99):.1f}"
        f" | rest p50 {pct(rest, 0.5):.1f} p99 {pct(rest, 0.99):.1f}"
        f" | p50 ratio {statistics.median(ig) / statistics.median(rest):.2f}x"
    )


if __name__ == "__main__":
    main()
