"""What each process knows of the clinic's setup that the database holds (its profile and
its wording of the patient texts), kept up to date without a restart.

A process reads the configuration's revision at most once a second, and everything again
only when the revision moved: a change made in the console reaches the bot's next message.
When the database can't be reached, the last configuration read stays in use (before any
was read: the packaged texts and an empty profile), so the bot can still apologise.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from clinic.db import transaction
from clinic.errors import DatabaseUnavailableError
from clinic.profile import Profile
from clinic.profile_store import current_revision, read_profile
from clinic.settings import Settings
from clinic.templates import Templates
from clinic.texts_store import default_texts, read_texts

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Configuration:
    profile: Profile
    templates: Templates


class LiveConfig:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        refresh_seconds: float = REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._engine = engine
        self._facts = {"retention_days": str(settings.retention_days)}
        self._refresh = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._checked = float("-inf")
        self._config = Configuration(Profile(), Templates(default_texts(), self._facts))

    def current(self) -> Configuration:
        with self._lock:
            now = self._monotonic()
            if now - self._checked >= self._refresh:
                self._checked = now
                # The last configuration read serves until the database is back.
                with contextlib.suppress(DatabaseUnavailableError, SQLAlchemyError):
                    self._reload_if_changed()
            return self._config

    def _reload_if_changed(self) -> None:
        with transaction(self._engine) as session:
            revision = current_revision(session)
            if revision == self._revision:
                return
            profile = read_profile(session)
            texts = read_texts(session)
        self._config = Configuration(profile, Templates(texts, self._facts))
        self._revision = revision
