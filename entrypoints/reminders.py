"""`python -m clinic remind`: due reminders into the outbox, then one pass of the outbox
sender, so a cron job delivers them without a rasa server (whose outbox pollers would send
them too: whichever claims a row first sends it)."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from clinic.context import Clinic
from clinic.delivery import Outbox
from clinic.live_config import LiveConfig
from clinic.outbox import SMS
from clinic.reminders import queue_due_reminders
from clinic.templates import format_when
from connectors.graph_api import GraphApiClient
from connectors.graph_messages import text_messages
from connectors.outbox import OutboxSender
from connectors.sms_client import TwilioTexts

PURGE_EVERY_SECONDS = 3600


def send_reminders(
    clinic: Clinic, args: argparse.Namespace, purge: Callable[[], object] = lambda: None
) -> int:
    """Once, or in a loop that also runs `purge` (the retention job) once an hour."""
    settings = clinic.settings
    client = GraphApiClient.from_settings(settings) if settings.instagram_access_token else None
    texts = TwilioTexts(settings) if settings.sms_configured else None
    live = LiveConfig(clinic.engine, settings)  # the clinic's wording, as it is now

    def render(start: datetime, zone: ZoneInfo, channel: str) -> str:
        config = live.current()
        name = "reminder_text" if channel == SMS else "reminder"
        return config.templates.render(
            name, when=format_when(start, zone), clinic=config.profile.name or "the clinic"
        )

    lease = timedelta(seconds=settings.lease_seconds)
    outbox = Outbox(clinic.engine, f"remind-{uuid.uuid4().hex[:8]}", lease, settings.id_hash_key)
    retry_budget = timedelta(seconds=settings.outbox_retry_seconds)
    sender = OutboxSender(
        outbox, client, retry_budget, settings.id_hash_key, None, texts, settings.twilio_rate
    )
    last_purge = None
    try:
        while True:
            report = queue_due_reminders(clinic, outbox, render, text_messages)
            claimed = total = sender.poll()
            while claimed:  # until nothing is due
                claimed = sender.poll()
                total += claimed
            print(
                f"Reminders: {report.queued} queued, {report.window_closed} waiting for the "
                f"patient to write; outbox: {total} messages tried.",
                flush=True,
            )
            if not args.loop:
                return 0
            if last_purge is None or time.monotonic() - last_purge >= PURGE_EVERY_SECONDS:
                purge()
                last_purge = time.monotonic()
            time.sleep(args.interval)
    finally:
        if client is not None:
            client.close()
