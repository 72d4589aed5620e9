"""The rasa server's part of an erasure (clinic/erasure_markers.py): before it saves a
conversation it looks for the sender's marker (a retried "delete my data" turn finds it
even when its action could not say so); once it deleted the conversation it deletes the
sender's lock keys and lets the marker go when no message of the sender is on its way."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine

from clinic.audit import hash_id
from clinic.db import create_database_engine, transaction, truncate_wal
from clinic.erasure_markers import finish, is_marked
from clinic.settings import Settings
from connectors.lock_keys import LockKeys

logger = logging.getLogger(__name__)


class Erasures:
    def __init__(self, engine: Engine, hash_key: str, locks: LockKeys | None):
        self._engine, self._hash_key, self._locks = engine, hash_key, locks

    @classmethod
    def from_settings(cls, settings: Settings) -> Erasures:
        engine = create_database_engine(settings.database_url)
        return cls(engine, settings.id_hash_key, LockKeys.from_settings(settings))

    async def requested(self, sender_id: str) -> bool:
        """Whether the sender's erasure is recorded and not finished. False when the
        clinic's database can't say (the marker stays: the next save or `purge` honours it)."""
        try:
            return await asyncio.to_thread(self._marked, sender_id)
        except Exception as error:  # noqa: BLE001 - the class only: saving goes on
            logger.warning("erasure marker not read: %s", type(error).__name__)
            return False

    async def erased(self, sender_id: str) -> None:
        """The conversation is gone: the lock keys go, and the marker when it may."""
        await asyncio.to_thread(self._finish, sender_id)

    def _marked(self, sender_id: str) -> bool:
        with self._engine.connect() as connection:
            return is_marked(connection, hash_id(sender_id, self._hash_key))

    def _finish(self, sender_id: str) -> None:
        if self._locks is not None:
            self._locks.forget(sender_id)
        with transaction(self._engine) as session:
            finish(session, hash_id(sender_id, self._hash_key), [sender_id])
        truncate_wal(self._engine)
