"""Rasa's lock keys in Redis (LOCK_STORE_URL). Rasa's RedisLockStore keeps one key per
conversation, `lock:<sender id>` (`<LOCK_STORE_KEY_PREFIX>:lock:<sender id>` with a
prefix), holding the sender id and the turns' tickets (a number and an expiry time each),
and no expiry of its own: Rasa deletes it when a turn ends with no one waiting, so only a
process killed in a turn leaves one behind. An erasure deletes the sender's key; `purge`
deletes every key whose tickets all expired before the retention cutoff (no turn holds or
waits for it, and its conversation is as old as those the retention job deletes)."""

from __future__ import annotations

import json
from typing import Any

from clinic.settings import Settings

RASA_PREFIX = "lock:"  # rasa.core.lock_store.DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX


def key_prefix(custom: str | None) -> str:
    """Rasa's rule (RedisLockStore._set_key_prefix): an alphanumeric prefix goes before
    `lock:`; any other is ignored."""
    return f"{custom}:{RASA_PREFIX}" if custom and custom.isalnum() else RASA_PREFIX


class LockKeys:
    """The lock keys of one lock store (its Redis and prefix)."""

    def __init__(self, client: Any, prefix: str):
        self.client, self.prefix = client, prefix

    @classmethod
    def from_settings(cls, settings: Settings) -> LockKeys | None:
        """None when the locks are kept in memory (no LOCK_STORE_URL)."""
        if not settings.lock_store_url:
            return None
        import redis  # only the rasa server and the staff CLI come here

        client = redis.Redis.from_url(settings.lock_store_url)
        return cls(client, key_prefix(settings.lock_store_key_prefix))

    def senders(self) -> set[str]:
        """The sender ids that have a lock key."""
        start = len(self.prefix)
        return {key.decode()[start:] for key in self.client.scan_iter(match=f"{self.prefix}*")}

    def forget(self, sender_id: str) -> int:
        """Deletes the sender's key; 1 if there was one."""
        return self.client.delete(self.prefix + sender_id)

    def remove_stale(self, cutoff: float) -> int:
        """Deletes the keys whose every ticket expired before `cutoff` (seconds since the
        epoch), each unless a turn changed it meanwhile (WATCH); how many."""
        import redis

        removed = 0
        for key in self.client.scan_iter(match=f"{self.prefix}*"):
            with self.client.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    value = pipe.get(key)
                    if value is None or not _expired_before(value, cutoff):
                        continue
                    pipe.multi()
                    pipe.delete(key)
                    removed += pipe.execute()[0]
                except redis.WatchError:
                    continue  # a turn took a ticket: the key is in use
        return removed


def _expired_before(value: bytes, cutoff: float) -> bool:
    """Rasa's TicketLock as stored: {"conversation_id": …, "tickets": ['{"number": 1,
    "expires": 1.7e9}', …]}; a value in another shape is left alone."""
    try:
        tickets = [json.loads(ticket) for ticket in json.loads(value).get("tickets", [])]
        return all(float(ticket["expires"]) < cutoff for ticket in tickets)
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
