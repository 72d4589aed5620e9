"""When a reminder is due and whether Instagram will let it through."""

from __future__ import annotations

from datetime import datetime, timedelta

# Instagram lets a business message a user only this long after the user's last message.
MESSAGING_WINDOW = timedelta(hours=24)


def reminder_due_at(start: datetime, lead: timedelta) -> datetime:
    return start - lead


def reminder_deliverable(
    start: datetime, last_message_at: datetime | None, lead: timedelta
) -> bool:
    """True when the reminder falls due while the patient's messaging window is open."""
    if last_message_at is None:
        return False
    return reminder_due_at(start, lead) <= last_message_at + MESSAGING_WINDOW
