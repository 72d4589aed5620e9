"""Rasa's own tracker and lock stores, chosen from the environment.

Rasa's endpoints.yml cannot give a variable a default, so these two entries pick the
store when the server starts:
- TRACKER_STORE_URL unset: in memory; a SQLAlchemy URL (postgresql://…): Rasa's
  SQLTrackerStore, so any replica can continue any conversation.
- LOCK_STORE_URL unset: in memory; redis://host:port/db: Rasa's RedisLockStore, so
  replicas never process two messages of one conversation at once. Its locks last as long
  as the inbox's leases (INBOX_LEASE_SECONDS) instead of Rasa's 60 s, so the messages of a
  server that died are taken over as soon as its leases run out.
"""

from __future__ import annotations

from typing import Any

from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore, TrackerStore
from sqlalchemy.engine import make_url

from clinic.settings import load_settings


class TrackerStoreFromEnvironment:
    """`tracker_store: type: connectors.stores.TrackerStoreFromEnvironment`"""

    def __new__(cls, domain: Any = None, event_broker: Any = None, **_: Any) -> TrackerStore:
        url = load_settings().tracker_store_url
        if not url:
            return InMemoryTrackerStore(domain, event_broker)
        parsed = make_url(url)
        return SQLTrackerStore(
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
