"""Retention: `python -m clinic purge` deletes conversations idle past the retention period
(Rasa's SQL tracker store) and settled delivery records of that age; nothing newer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import func, select, text

from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.delivery import Inbox, NewMessage, Outbox
from clinic.models import InboxMessage, OutboxMessage
from clinic.retention import purge
from clinic.settings import Settings
from connectors.stores import sql_tracker_store

LEASE = timedelta(seconds=15)


def save_conversation(store: SQLTrackerStore, sender_id: str, at: float) -> None:
    tracker = DialogueStateTracker(sender_id, [])
    tracker.update(UserUttered("hi", timestamp=at))
    asyncio.run(store.save(tracker))


def counts(engine) -> tuple[int, int]:
    with transaction(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(InboxMessage)),
            session.scalar(select(func.count()).select_from(OutboxMessage)),
        )


def test_idle_conversations_and_old_delivery_records_go_and_nothing_newer(postgres_url, clock):
    engine = create_database_engine(postgres_url)
    inbox, outbox = Inbox(engine, "r", LEASE, "k", clock), Outbox(engine, "r", LEASE, "k", clock)
    store = sql_tracker_store(postgres_url, Domain.empty())
    now = clock()
    save_conversation(store, "IG_TEST_OLD", (now - timedelta(days=31)).timestamp())
    save_conversation(store, "IG_TEST_NEW", (now - timedelta(days=29)).timestamp())
    # 40 days ago: one message handled, one still waiting; one reply sent.
    clock.advance(timedelta(days=-40))
    old = inbox.accept([NewMessage("m.old", "IG_TEST_OLD", 1, "text", "hi")], 1).claimed[0]
    inbox.accept([NewMessage("m.waiting", "IG_TEST_OLD", 2, "text", "hi")])
    inbox.finish(old)
    outbox.sent(outbox.add("IG_TEST_OLD", "m.old", 0, {"text": "Hi!"}), "IG_TEST_OLD")
    clock.advance(timedelta(days=39))  # yesterday: a message handled
    inbox.accept([NewMessage("m.new", "IG_TEST_NEW", 3, "text", "hi")])
    recent = inbox.claim(1, inbox.ids_of(["m.new"]))[0]
    inbox.finish(recent)
    clock.advance(timedelta(days=1))

    purged = purge(Clinic(engine, Settings(retention_days=30), clock), engine)

    assert (purged.events, purged.messages, purged.replies) == (1, 1, 1)
    with engine.connect() as connection:
        senders = connection.execute(text("SELECT DISTINCT sender_id FROM events")).scalars().all()
    assert senders == ["IG_TEST_NEW"]
    assert counts(engine) == (2, 0)  # the waiting message and yesterday's stay
    engine.dispose()
