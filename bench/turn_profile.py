"""Where a turn's time goes: NLU, policies, each action-server call, tracker store, lock store.

One rasa agent in this process, in the production shape: the model, Rasa's SQL tracker store
on PostgreSQL, Rasa's Redis lock store, and one action server (a subprocess) on a SQLite
clinic. New patients book ("book" -> yes -> name -> phone -> a day -> a time), one message
at a time; Rasa's own methods are wrapped with timers. Patients alternate between Rasa's own
check of each action answer (`jsonschema.validate`, which re-checks the schema every time)
and ours (connectors/schema_checks.py), so the two are measured side by side. The channel's
share is measured by bench/webhook.py (Instagram vs REST, same turns).
Run: .venv/bin/python bench/turn_profile.py [--patients N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.databases import temporary_postgres_database  # noqa: E402
from tests.helpers import free_port, wait_until  # noqa: E402
from tests.servers import ROOT, answers  # noqa: E402

MODEL = ROOT / "models" / "clinic.tar.gz"
MODES = ("Rasa's schema check", "schema checked once")
SPENT_BY_MODE: dict[str, dict[str, list[float]]] = {mode: defaultdict(list) for mode in MODES}
SPENT = SPENT_BY_MODE[MODES[0]]  # part -> seconds, one entry per call, in the current mode


def timed(part, function):
    """Wraps a sync or async function so each call's time is added to SPENT[part(args)]."""
    label = part if callable(part) else (lambda *_a, **_k: part)

    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def async_wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                SPENT[label(*args, **kwargs)].append(time.perf_counter() - started)

        return async_wrapper

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[label(*args, **kwargs)].append(time.perf_counter() - started)

    return wrapper


def action_call_label(_endpoint, *_args, json=None, **_kwargs) -> str:
    return f"action server: {(json or {}).get('next_action', '?')}"


def instrument(agent) -> None:
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.utils.endpoints import EndpointConfig

    MessageProcessor.parse_message = timed("NLU (parse)", MessageProcessor.parse_message)
    MessageProcessor._predict_next_with_tracker = timed(
        "policies (predict)", MessageProcessor._predict_next_with_tracker
    )
    MessageProcessor.run_action_extract_slots = timed(
        "slot mappings (action_extract_slots)", MessageProcessor.run_action_extract_slots
    )
    RemoteAction._validate_action_result = timed(
        "checking each action answer's schema", RemoteAction._validate_action_result
    )
    EndpointConfig.request = timed(action_call_label, EndpointConfig.request)
    store = agent.processor.tracker_store
    for name in ("retrieve", "retrieve_full_tracker", "save"):
        setattr(store, name, timed(f"tracker store: {name}", getattr(store, name)))
    locks = agent.lock_store
    for name in ("get_lock", "save_lock", "delete_lock"):
        setattr(locks, name, timed("lock store", getattr(locks, name)))


def use_mode(mode: str) -> None:
    import jsonschema

    from connectors import schema_checks

    global SPENT
    SPENT = SPENT_BY_MODE[mode]
    if mode == MODES[0]:
        jsonschema.validate = schema_checks._uncached_validate
    else:
        schema_checks.install()


async def converse(agent, patients: int) -> dict[str, list[float]]:
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    turns: dict[str, list[float]] = defaultdict(list)
    for number in range(patients):
        mode = MODES[number % 2]
        use_mode(mode)
        sender = f"bench-{uuid.uuid4().hex[:8]}"
        for text in ("book", "yes", "PATIENT_TEST", "+1 202 555 0143", "monday", "1"):
            started = time.perf_counter()
            await agent.handle_message(UserMessage(text, CollectingOutputChannel(), sender))
            turns[mode].append(time.perf_counter() - started)
    return turns


def start_action_server(environment: dict[str, str], log: Path):
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-m", "actions"],
        cwd=ROOT,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{environment['ACTION_SERVER_PORT']}/health"
    if not wait_until(lambda: answers(url), timeout=120):
        process.kill()
        raise SystemExit(f"the action server did not start; see {log}")
    return process


async def profile(patients: int, tracker_url: str, work: Path) -> None:
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints

    from entrypoints.cli import main as clinic_cli

    port = free_port()
    clinic_url = f"sqlite:///{work / 'clinic.db'}"
    environment = {
        **os.environ,
        "DATABASE_URL": clinic_url,
        "ACTION_SERVER_PORT": str(port),
        "ACTION_SERVER_URL": f"http://127.0.0.1:{port}/webhook",
        "ACTION_SERVER_TOKEN": uuid.uuid4().hex,
        "TRACKER_STORE_URL": tracker_url,
        "LOCK_STORE_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "ID_HASH_KEY": uuid.uuid4().hex,
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(environment)
    clinic_cli(["init"])
    clinic_cli(["seed", "--demo"])
    server = start_action_server(environment, work / "actions.log")
    try:
        endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
        agent = await load_agent(str(MODEL), endpoints=endpoints)
        await converse(agent, 2)  # warm-up: first calls load lazily
        instrument(agent)
        turns = await converse(agent, patients)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for mode in MODES:
        print(f"\n{mode}:")
        report(turns[mode], SPENT_BY_MODE[mode])


def report(turns: list[float], spent_by_part: dict[str, list[float]]) -> None:
    count = len(turns)
    total = sum(turns)
    print(f"{count} turns, mean {1000 * total / count:.1f} ms per turn")
    print("| part | calls per turn | ms per call (median) | ms per turn | share |")
    print("| --- | --- | --- | --- | --- |")
    rows = sorted(spent_by_part.items(), key=lambda kv: -sum(kv[1]))
    for part, spent in rows:
        per_turn = 1000 * sum(spent) / count
        print(
            f"| {part} | {len(spent) / count:.2f} | {1000 * statistics.median(spent):.1f} "
            f"| {per_turn:.1f} | {100 * sum(spent) / total:.0f}% |"
        )
    measured = sum(sum(s) for s in spent_by_part.values())
    print(
        f"| rest (Rasa's bookkeeping: events, session, responses) | | | "
        f"{1000 * (total - measured) / count:.1f} | {100 * (1 - measured / total):.0f}% |"
    )
    print(json.dumps({"turns": count, "mean_ms": round(1000 * total / count, 2)}))


def quiet_logs() -> None:
    """As `rasa run` logs by default (INFO, no debug lines): logging costs time too."""
    import logging

    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.INFO)
    configure_structlog(logging.INFO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=40, help="half in each mode")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_logs()
    with tempfile.TemporaryDirectory() as work, temporary_postgres_database() as tracker_url:
        asyncio.run(profile(args.patients, tracker_url, Path(work)))


if __name__ == "__main__":
    main()
