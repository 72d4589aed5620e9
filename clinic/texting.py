"""Text messages (SMS) beside Instagram: where a reminder can reach a patient, and what a
patient's reply to a reminder text asks for. Pure: no database, no clock, no Twilio.

Worked example: a visit on Friday booked on Monday by a patient who accepts texts, with
Twilio configured -> the reminder is due Thursday, outside Instagram's 24 hours after
Monday's message: `reminder_channel` says "sms", and the confirmation promises a text.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

# Instagram lets a business message a user only this long after the user's last message.
MESSAGING_WINDOW = timedelta(hours=24)
INSTAGRAM = "instagram"
SMS = "sms"

# What a patient's text to the clinic asks for.
CONFIRM = "confirm"
CANCEL = "cancel"
YES = "yes"  # after "Reply YES to cancel": the cancellation confirmed
STOP = "stop"
START = "start"
OTHER = "other"

# Twilio's own opt-out and opt-in keywords (its Advanced Opt-Out answers them itself).
_STOP_WORDS = {"stop", "stopall", "unsubscribe", "end", "quit", "optout", "revoke"}
_START_WORDS = {"start", "unstop", "subscribe", "optin"}
_CONFIRM_WORDS = {"c", "confirm", "confirmed", "i confirm", "yes confirm"}
_YES_WORDS = {"yes", "y", "yeah", "yep", "ok", "okay", "sure"}
_CANCEL_WORDS = {"x", "cancel", "cancel it", "cancel please", "please cancel", "cancel my visit"}


def window_open(last_message_at: datetime | None, now: datetime) -> bool:
    """Instagram would take a message from the clinic now."""
    return last_message_at is not None and now < last_message_at + MESSAGING_WINDOW


def reminder_channel(
    start: datetime,
    last_message_at: datetime | None,
    lead: timedelta,
    takes_texts: bool,
    sms_configured: bool,
) -> str | None:
    """Where the reminder of a visit starting at `start` will go, as known when it is
    booked: Instagram if it falls due inside the patient's 24-hour window, else a text if
    the patient takes texts (and has a phone) and Twilio is set up, else nowhere."""
    due = start - lead
    if last_message_at is not None and due <= last_message_at + MESSAGING_WINDOW:
        return INSTAGRAM
    if takes_texts and sms_configured:
        return SMS
    return None


def channel_now(
    now: datetime, last_message_at: datetime | None, takes_texts: bool, sms_configured: bool
) -> str | None:
    """Where a message to the patient can go now: Instagram inside its window, else a
    text when the patient takes them, else nowhere."""
    if window_open(last_message_at, now):
        return INSTAGRAM
    if takes_texts and sms_configured:
        return SMS
    return None


def read_reply(body: str, cancel_asked: bool) -> str:
    """What a text to the clinic asks for: C/confirm, X/cancel, YES (a cancellation when one
    was asked, else a confirmation), STOP/START, or anything else."""
    words = " ".join(re.findall(r"[a-z]+", body.lower()))
    if words in _STOP_WORDS:
        return STOP
    if words in _START_WORDS:
        return START
    if words in _CANCEL_WORDS:
        return CANCEL
    if words in _YES_WORDS:
        return YES if cancel_asked else CONFIRM
    if words in _CONFIRM_WORDS:
        return CONFIRM
    return OTHER
