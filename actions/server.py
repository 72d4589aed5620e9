"""The action server: rasa_sdk's own, which builds every `Action` of this package (each on
the process's `ClinicApp`, actions/common.py), with the clinic's checks installed through
rasa_sdk's plugin hook (rasa_sdk_plugins.py). `python -m actions` and `rasa run actions`
start the same server, with the same settings.

Only the rasa server may call actions: it sends `Authorization: Bearer <ACTION_SERVER_TOKEN>`
(endpoints.yml), checked in constant time; anything else gets 401, and the server does not
start without a token. Bodies are bounded, also once decompressed, and an error's answer
never echoes the request (a patient's tracker).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import zlib
from typing import Any

from rasa_sdk import endpoint, utils
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from clinic.redaction import REDACTOR
from clinic.redaction import install as install_redaction
from clinic.settings import load_settings

logger = logging.getLogger(__name__)

# A tracker of a long conversation stays far below this.
MAX_BODY_BYTES = 4 * 1024 * 1024


def install(server: Sanic) -> None:
    """The clinic's checks on rasa_sdk's action server (`attach_sanic_app_extensions`)."""
    settings = load_settings()
    if not settings.action_server_token:
        raise SystemExit("error: ACTION_SERVER_TOKEN is not set: the action server needs one")
    install_redaction(REDACTOR)
    # rasa_sdk reads its address from SANIC_HOST after this hook: ours, unless set.
    os.environ.setdefault("SANIC_HOST", settings.action_server_host)
    server.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    expected = f"Bearer {settings.action_server_token}".encode()

    @server.middleware("request")
    async def only_the_rasa_server(request: Request) -> HTTPResponse | None:
        if request.path == "/health":
            return None
        given = (request.headers.get("Authorization") or "").encode()
        if not hmac.compare_digest(given, expected):
            logger.warning("action call refused: missing or wrong token")
            return response.json({"error": "unauthorized"}, status=401)
        if request.path != "/webhook":
            return None
        try:
            action_call = _action_call(request)
        except (ValueError, zlib.error):
            action_call = None
        if not isinstance(action_call, dict):
            return response.json({"error": "Invalid body request"}, status=400)
        REDACTOR.register(*_personal_values(action_call))
        return None

    async def failed(_: Request, error: Exception) -> HTTPResponse:
        # The class only: the request (a patient's tracker) never goes into logs or answers.
        logger.error("action call failed: %s", type(error).__name__)
        return response.json({"error": "internal error"}, status=500)

    server.error_handler.add(Exception, failed)


def _personal_values(action_call: dict[str, Any]) -> list[Any]:
    """What a log line about this call must never show: the sender, the text, the slots."""
    tracker = action_call.get("tracker") or {}
    latest = tracker.get("latest_message") or {}
    entities = [e.get("value") for e in latest.get("entities") or [] if isinstance(e, dict)]
    slots = [v for k, v in (tracker.get("slots") or {}).items() if k != "requested_slot"]
    return [tracker.get("sender_id"), latest.get("text"), *entities, *slots]


def _action_call(request: Request) -> Any:
    """The JSON body, inflated first when Rasa compressed it, never beyond the bound."""
    if request.headers.get("Content-Encoding") == "deflate":
        inflater = zlib.decompressobj()
        body = inflater.decompress(request.body, MAX_BODY_BYTES)
        if inflater.unconsumed_tail:
            raise ValueError("the inflated body is too large")
        return json.loads(body)
    return json.loads(request.body)


def main() -> None:
    """`python -m actions`: what `rasa run actions --port ACTION_SERVER_PORT` runs."""
    settings = load_settings()
    utils.configure_colored_logging(settings.log_level)
    utils.update_sanic_log_level()
    endpoint.run("actions", settings.action_server_port, cors_origins=None)
