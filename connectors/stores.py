"""Rasa's own tracker and lock stores, chosen from the environment.

Rasa's endpoints.yml cannot give a variable a default, so these two entries pick the
store when the server starts:
- TRACKER_STORE_URL unset: in memory; a SQLAlchemy URL (postgresql://…): Rasa's
  SQLTrackerStore, so any replica can continue any conversation. Either way, "delete my
  data" deletes the conversation from it, and a conversation whose erasure is recorded
  (clinic/erasure_markers.py) is deleted instead of saved. A SQLite file is private and
  deletes for good (clinic/db.py).
- LOCK_STORE_URL unset: in memory; redis://host:port/db: Rasa's RedisLockStore, so
  replicas never process two messages of one conversation at once. Its locks last as long
  as the inbox's leases (INBOX_LEASE_SECONDS) instead of Rasa's 60 s, so the messages of a
  server that died are taken over as soon as its leases run out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url

from clinic.db import private_sqlite_file, secure_sqlite, truncate_wal
from clinic.faults import BEFORE_CONVERSATION_ERASED, fault_point
from clinic.redaction import REDACTOR
from clinic.redaction import install as install_redaction
from clinic.settings import load_settings
from connectors import schema_checks
from connectors.erasures import Erasures
from connectors.log_levels import follow_rasa_log_level

# Set by the action that erases a patient's data: the conversation goes instead of being saved.
ERASE_SLOT = "conversation_erased"


class TrackerStoreFromEnvironment:
    """`tracker_store: type: connectors.stores.TrackerStoreFromEnvironment`"""

    def __new__(cls, domain: Any = None, event_broker: Any = None, **_: Any) -> TrackerStore:
        # Every rasa server process (rasa run, rasa shell) builds this store: from here on
        # its log lines are redacted, and action answers are checked without re-checking
        # their schema each time.
        install_redaction(REDACTOR)
        schema_checks.install()
        follow_rasa_log_level()
        settings = load_settings()
        store = _chosen_store(settings.tracker_store_url, domain, event_broker)
        return ErasingTrackerStore(store, Erasures.from_settings(settings))


class ErasingTrackerStore(TrackerStore):
    """Rasa's store, except that the conversation of a patient who has just erased their
    data (the turn's slot, or the erasure's marker for a retried turn) is deleted, every
    event of it, in memory or in SQL, with its lock keys, instead of saved."""

    def __init__(self, store: TrackerStore, erasures: Erasures | None = None):
        self._store = store
        self._erasures = erasures
        super().__init__(store.domain, store.event_broker)

    @property
    def domain(self) -> Domain:
        return self._store.domain

    @domain.setter
    def domain(self, domain: Domain | None) -> None:
        self._store.domain = domain or Domain.empty()

    async def save(self, tracker: DialogueStateTracker) -> None:
        erasures, sender_id = self._erasures, tracker.sender_id
        if tracker.get_slot(ERASE_SLOT) or (erasures and await erasures.requested(sender_id)):
            fault_point(BEFORE_CONVERSATION_ERASED)
            await self.erase(sender_id)
            if erasures is not None:
                await erasures.erased(sender_id)
        else:
            await self._store.save(tracker)

    async def erase(self, sender_id: str) -> None:
        if isinstance(self._store, InMemoryTrackerStore):
            self._store.store.pop(sender_id, None)
        elif isinstance(self._store, SQLTrackerStore):
            with self._store.session_scope() as session:
                event = SQLTrackerStore.SQLEvent
                session.query(event).filter(event.sender_id == sender_id).delete()
                session.commit()
            truncate_wal(self._store.engine)
        else:  # only the two stores above are ever chosen
            raise TypeError(f"can't erase from {type(self._store).__name__}")

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        REDACTOR.register(sender_id)  # a turn of this conversation begins
        return await self._store.retrieve(sender_id)

    async def retrieve_full_tracker(self, sender_id: str) -> DialogueStateTracker | None:
        return await self._store.retrieve_full_tracker(sender_id)

    async def keys(self) -> Iterable[str]:
        return await self._store.keys()


def _chosen_store(url: str | None, domain: Any, event_broker: Any) -> TrackerStore:
    if not url:
        return InMemoryTrackerStore(domain, event_broker)
    return sql_tracker_store(url, domain, event_broker)


def sql_tracker_store(url: str, domain: Any = None, event_broker: Any = None) -> SQLTrackerStore:
    """Rasa's SQL tracker store on the database a SQLAlchemy URL names."""
    parsed = make_url(url)
    sqlite_file = parsed.get_backend_name() == "sqlite" and parsed.database
    if sqlite_file:
        private_sqlite_file(Path(parsed.database))
    store = SQLTrackerStore(
        domain=domain,
        dialect=parsed.drivername,
        host=parsed.host,
        port=parsed.port,
        db=parsed.database,
        username=parsed.username,
        password=parsed.password,
        event_broker=event_broker,
        query=dict(parsed.query) or None,
    )
    if sqlite_file:
        secure_sqlite(store.engine)
        store.engine.dispose()  # the connections opened so far, without secure_delete
    return store


class LockStoreFromEnvironment:
    """`lock_store: type: connectors.stores.LockStoreFromEnvironment`"""

    def __new__(cls, **_: Any) -> LockStore:
        settings = load_settings()
        url = settings.lock_store_url
        if not url:
            return InMemoryLockStore()
        parsed = make_url(url)
        if parsed.drivername not in {"redis", "rediss"}:
            raise ValueError("LOCK_STORE_URL must be a redis:// URL (or unset for memory)")
        return _LeaseLongRedisLockStore(
            lifetime=settings.lease_seconds,
            host=parsed.host or "localhost",
            port=parsed.port or 6379,
            db=int(parsed.database or 0),
            username=parsed.username,
            password=parsed.password,
            use_ssl=parsed.drivername == "rediss",
            key_prefix=settings.lock_store_key_prefix,
        )


class _LeaseLongRedisLockStore(RedisLockStore):
    def __init__(self, lifetime: float, **options: Any):
        super().__init__(**options)
        self._lifetime = lifetime

    def lock(self, conversation_id: str, lock_lifetime: float = 0, wait_time_in_seconds: float = 1):
        return super().lock(conversation_id, self._lifetime, wait_time_in_seconds)
