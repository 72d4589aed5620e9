"""`python -m clinic console`: the console on CONSOLE_HOST:CONSOLE_PORT, served by waitress."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from waitress import serve as waitress_serve

from clinic.connection import TokenCheck
from clinic.context import Clinic
from clinic.db import create_database_engine
from clinic.redaction import REDACTOR
from clinic.redaction import install as install_redaction
from clinic.settings import PROJECT_ROOT, Settings
from console.app import create_app

logger = logging.getLogger("console")
SECRET_KEY_FILE = PROJECT_ROOT / "var" / "console-secret-key"
THREADS = 8


def secret_key(settings: Settings, path: Path = SECRET_KEY_FILE) -> str:
    """CONSOLE_SECRET_KEY, or a random key made once and kept in a file only we can read."""
    if settings.console_secret_key:
        return settings.console_secret_key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def serve(settings: Settings, check_token: Callable[[], TokenCheck] | None = None) -> None:
    install_redaction(REDACTOR)  # a library's line that quotes a form still loses its values
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-8s %(name)s  - %(message)s",
    )
    clinic = Clinic(create_database_engine(settings.database_url), settings)
    tracker = settings.tracker_store_url
    app = create_app(
        clinic,
        secret_key(settings),
        tracker_engine=create_database_engine(tracker) if tracker else None,
        check_token=check_token,
    )
    logger.info("staff console on %s", settings.console_url)
    waitress_serve(
        app, host=settings.console_host, port=settings.console_port, threads=THREADS, ident=None
    )
