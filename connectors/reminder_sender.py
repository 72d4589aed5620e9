"""Reminders through the Graph API: its errors mapped onto the reminder job's outcomes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from clinic.reminders import FAILED, RECIPIENT_UNAVAILABLE, SENT, WINDOW_CLOSED, Sender
from connectors.graph_api import (
    GraphApiClient,
    OutsideWindowError,
    RecipientUnavailableError,
    SendError,
)

logger = logging.getLogger(__name__)


def graph_sender(
    client: GraphApiClient, remember: Callable[[list[str | None]], None] = lambda _mids: None
) -> Sender:
    """`remember` gets Graph's ids of each reminder sent (its echoes are the bot's own)."""

    def send(recipient_id: str, text: str) -> str:
        try:
            mids = client.send_text_blocking(recipient_id, text)
        except OutsideWindowError:
            return WINDOW_CLOSED
        except RecipientUnavailableError:
            return RECIPIENT_UNAVAILABLE
        except SendError:
            return FAILED  # logged by the client with code and hashed recipient
        try:
            remember(mids)
        except Exception as error:  # noqa: BLE001 - it was sent: never send it twice
            logger.warning("reminder ids not kept: %s", type(error).__name__)
        return SENT

    return send
