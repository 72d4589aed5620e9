"""Remembering message ids, so a webhook Meta delivers twice is answered once.

One rasa server: a bounded in-memory store. Several: Redis, shared by all of them
(`DEDUPE_STORE_URL`, or the Redis of `LOCK_STORE_URL` when that is Redis).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

from clinic.settings import Settings

logger = logging.getLogger(__name__)

# Meta redelivers for up to a day; ids older than that need not be remembered.
REMEMBER_SECONDS = 24 * 60 * 60


class DedupeStore(Protocol):
    async def first_time(self, mid: str) -> bool:
        """True the first time `mid` is seen, False for every later delivery of it."""


class MemoryDedupe:
    """The newest `capacity` ids of this process (a day of a busy clinic fits easily)."""

    def __init__(self, capacity: int = 100_000, ttl: float = REMEMBER_SECONDS):
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl

    async def first_time(self, mid: str) -> bool:
        now = time.monotonic()
        seen_at = self._seen.get(mid)
        if seen_at is not None and now - seen_at < self._ttl:
            return False
        self._seen[mid] = now
        self._seen.move_to_end(mid)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


class RedisDedupe:
    """`SET NX` on a shared Redis: exactly one server wins each id."""

    def __init__(self, url: str, prefix: str = "clinic-dm:mid:"):
        from redis import asyncio as redis_asyncio

        self._redis = redis_asyncio.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    async def first_time(self, mid: str) -> bool:
        try:
            stored = await self._redis.set(self._prefix + mid, 1, nx=True, ex=REMEMBER_SECONDS)
        except Exception:  # noqa: BLE001 - an outage must not lose the patient's message
            logger.warning("dedupe store unreachable; processing the message anyway")
            return True
        return bool(stored)


def dedupe_store(settings: Settings) -> DedupeStore:
    url = settings.dedupe_url or ""
    if url.startswith(("redis://", "rediss://")):
        return RedisDedupe(url, prefix=settings.dedupe_key_prefix)
    if url:
        raise ValueError("DEDUPE_STORE_URL must be a redis:// URL (or unset for memory)")
    return MemoryDedupe()
