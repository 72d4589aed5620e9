"""Text messages through Twilio, with the official `twilio` library: one send, its answer
mapped onto the outbox's outcomes (`connectors/graph_outcomes.py`), and a look at what
Twilio already holds (after a crash between its answer and our commit).

Settings: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID,
TWILIO_API_URL (a fake in tests and `make simulate`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from clinic.settings import Settings
from connectors.graph_outcomes import Outcome, Rejected, Sent, Throttled, Unavailable

OPTED_OUT = 21610  # the number replied STOP: no text may go to it
# Refusals that another try could get past: Twilio's rate limit, its queue being full.
TRY_AGAIN_CODES = frozenset({20429, 30001, 14107})


class _NoQueryStrings(logging.Filter):
    """urllib3 logs each request's URL at DEBUG: a Twilio look-up's query holds the number."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.split("?", 1)[0] + "?…" if isinstance(arg, str) and ".json?" in arg else arg
                for arg in record.args
            )
        return True


# The library logs every request at INFO, a look-up's query (`To=<number>`) included.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
logging.getLogger("urllib3.connectionpool").addFilter(_NoQueryStrings())


class TwilioTexts:
    """Sends one text and says how it went; blocking (run it in an executor)."""

    def __init__(self, settings: Settings):
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token)
        self._client.api.base_url = settings.twilio_api_url.rstrip("/")
        self._from = settings.twilio_from
        self._service = settings.twilio_messaging_service_sid
        self._callback = f"{settings.public_url.rstrip('/')}/webhooks/twilio/status"

    def send(self, to: str, body: str) -> Outcome:
        """One try: `Sent` with Twilio's message sid, or why not."""
        sender = (
            {"messaging_service_sid": self._service} if self._service else {"from_": self._from}
        )
        try:
            message = self._client.messages.create(
                to=to, body=body, status_callback=self._callback, **sender
            )
        except TwilioRestException as error:
            return classify(error)
        except TwilioException as error:  # no answer at all (a network fault)
            return Unavailable(type(error).__name__)
        return Sent(message.sid)

    def earlier_try(self, to: str, body: str, since: datetime) -> Outcome | None:
        """Whether Twilio took a text with these words for `to` from `since` on (a try whose
        answer was lost: the process died before recording it): `Sent` with its sid, None
        when it did not, `Unavailable` when Twilio can't be asked (then nothing is sent)."""
        try:
            for message in self._client.messages.list(to=to, date_sent_after=since, limit=50):
                if message.body == body:
                    return Sent(message.sid)
        except TwilioException as error:
            return Unavailable(f"can't look the earlier try up ({type(error).__name__})")
        return None


def classify(error: TwilioRestException) -> Outcome:
    """Twilio's refusal as an outcome: rate limits and its own faults are worth another try;
    anything else (an unknown number, a landline, an opted-out recipient) is final."""
    status, code = error.status, error.code
    if status == 429 or code in TRY_AGAIN_CODES:
        return Throttled(None, code)
    if status >= 500 or status == 408:
        return Unavailable(f"HTTP {status}")
    return Rejected(code, None, status)
