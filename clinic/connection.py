"""Is the clinic's Instagram connection working? The token (checked by the caller against
the Graph API), when the last patient message arrived, and what waits or failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import INBOX_PENDING, OUTBOX_FAILED, InboxMessage, OutboxMessage


@dataclass(frozen=True)
class TokenCheck:
    """What the Graph API said of the access token: the account's username, or the error
    exactly as Meta gave it."""

    ok: bool
    username: str = ""
    error: str = ""


@dataclass(frozen=True)
class ConnectionHealth:
    token: TokenCheck
    last_message_at: datetime | None
    inbox_waiting: int
    outbox_failed: int


def connection_health(clinic: Clinic, token: TokenCheck) -> ConnectionHealth:
    with transaction(clinic.engine) as session:
        last = session.scalar(select(func.max(InboxMessage.received_at)))
        waiting = session.scalar(
            select(func.count())
            .select_from(InboxMessage)
            .where(InboxMessage.status == INBOX_PENDING)
        )
        failed = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OUTBOX_FAILED)
        )
    return ConnectionHealth(token, last, waiting or 0, failed or 0)
