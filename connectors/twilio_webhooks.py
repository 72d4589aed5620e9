"""`POST /webhooks/twilio/sms` (a patient's text to the clinic's number) and
`POST /webhooks/twilio/status` (Twilio's delivery report of a text we sent), on the rasa
server (credentials.yml). Each checks `X-Twilio-Signature` with the `twilio` library's
validator against PUBLIC_URL (where Twilio reaches us): 403 otherwise. The answer to a
text goes through the outbox (clinic/text_replies.py), so Twilio gets an empty TwiML.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from rasa.core.channels.channel import InputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from clinic.audit import hash_id
from clinic.context import Clinic
from clinic.db import create_database_engine
from clinic.errors import InvalidPhoneError
from clinic.live_config import LiveConfig
from clinic.outbox import Outbox
from clinic.patients import normalize_phone
from clinic.settings import Settings, load_settings
from clinic.text_replies import InboundText, answer_text
from connectors.log_levels import follow_rasa_log_level

logger = logging.getLogger(__name__)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class TwilioWebhooks(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "twilio_sms"

    @classmethod
    def from_credentials(cls, credentials: Any) -> TwilioWebhooks:
        follow_rasa_log_level()
        return cls(load_settings())

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._parts: tuple[Clinic, Outbox, LiveConfig] | None = None  # built at first use

    def url_prefix(self) -> str:
        return "/webhooks/twilio"

    def blueprint(self, on_new_message: Any) -> Blueprint:
        hooks = Blueprint("twilio_webhooks", __name__)

        @hooks.post("/sms")
        async def inbound(request: Request) -> HTTPResponse:
            if not self._signed(request):
                return response.text("forbidden", status=403)
            form = {k: request.form.get(k, "") for k in ("MessageSid", "From", "Body")}
            try:
                phone = normalize_phone(form["From"], self.settings.phone_default_region)
            except InvalidPhoneError:
                return response.text("bad request", status=400)
            text = InboundText(form["MessageSid"], phone, form["Body"])
            meaning = await asyncio.to_thread(self._answer, text)
            ref = hash_id(phone, self.settings.id_hash_key)
            logger.info("text received: %s from=%s", meaning, ref)
            return response.text(EMPTY_TWIML, content_type="application/xml")

        @hooks.post("/status")
        async def status(request: Request) -> HTTPResponse:
            if not self._signed(request):
                return response.text("forbidden", status=403)
            sid, state = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
            code = request.form.get("ErrorCode")
            _, outbox, _ = self._built()
            known = await asyncio.to_thread(outbox.delivery_report, sid, state, code)
            logger.info("text %s: %s%s", sid, state, "" if known else " (unknown)")
            return response.empty()

        return hooks

    def _signed(self, request: Request) -> bool:
        """Twilio's signature of the URL it called (behind a proxy: PUBLIC_URL and the path)
        and of the form, made with TWILIO_AUTH_TOKEN."""
        token = self.settings.twilio_auth_token
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token or not signature:
            logger.warning("twilio webhook refused: no signature or no TWILIO_AUTH_TOKEN")
            return False
        url = self.settings.public_url.rstrip("/") + request.path
        if request.query_string:
            url += "?" + request.query_string
        params = {k: v[0] for k, v in request.form.items()}
        if RequestValidator(token).validate(url, params, signature):
            return True
        logger.warning("twilio webhook refused: bad signature")
        return False

    def _answer(self, text: InboundText) -> str:
        clinic, outbox, live = self._built()
        config = live.current()
        return answer_text(clinic, outbox, config.templates, config.profile, text)

    def _built(self) -> tuple[Clinic, Outbox, LiveConfig]:
        if self._parts is None:
            engine = create_database_engine(self.settings.database_url)
            clinic = Clinic(engine, self.settings)
            lease = timedelta(seconds=self.settings.lease_seconds)
            outbox = Outbox(engine, self.settings.replica_id, lease, self.settings.id_hash_key)
            self._parts = (clinic, outbox, LiveConfig(engine, self.settings))
        return self._parts
