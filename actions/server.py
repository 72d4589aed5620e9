"""The action server's composition root: one `ClinicApp` for the process, every action
built with it, and the HTTP routes Rasa calls (`/health`, `/webhook`, `/actions`).

Only the rasa server may call actions: it sends `Authorization: Bearer <ACTION_SERVER_TOKEN>`
(endpoints.yml), checked in constant time; anything else gets 401. Bodies are bounded, also
once decompressed, and an error's answer never echoes the request.
`python -m actions` runs it; tests build the same server with their own application.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import zlib
from typing import Any

from rasa_sdk import Action, utils
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from actions.asides import ActionAnswerAside, ActionAnswerFaq
from actions.booking import (
    ActionAskAppointmentDay,
    ActionAskDoctorChoice,
    ActionAskSlotChoice,
    ActionAskVisitType,
    ActionBookAppointment,
    ActionStartBooking,
    ValidateBookingForm,
)
from actions.details_form import (
    ActionAskConsentGiven,
    ActionAskPatientName,
    ActionAskPatientPhone,
    ValidateDetailsForm,
)
from actions.greet import ActionGreet
from actions.manage import (
    ActionAskAppointmentChoice,
    ActionAskCancelConfirmed,
    ActionCancelAppointment,
    ActionShowAppointments,
    ActionStartCancel,
    ActionStartReschedule,
    ValidateCancelForm,
    ValidateRescheduleForm,
)
from actions.support import (
    ActionAskDeleteConfirmed,
    ActionDeleteData,
    ActionHandoff,
    ActionHelpAfterFallback,
    ActionStopFlow,
    ValidateDeleteDataForm,
)
from clinic.application import ClinicApp
from clinic.redaction import REDACTOR
from clinic.redaction import install as install_redaction
from clinic.settings import SettingsError, load_settings

logger = logging.getLogger(__name__)

# A tracker of a long conversation stays far below this.
MAX_BODY_BYTES = 4 * 1024 * 1024

ACTIONS = (
    ActionGreet,
    ActionStartBooking,
    ValidateDetailsForm,
    ActionAskConsentGiven,
    ActionAskPatientName,
    ActionAskPatientPhone,
    ValidateBookingForm,
    ActionAskAppointmentDay,
    ActionAskSlotChoice,
    ActionBookAppointment,
    ActionShowAppointments,
    ActionStartCancel,
    ActionStartReschedule,
    ValidateCancelForm,
    ValidateRescheduleForm,
    ActionAskAppointmentChoice,
    ActionAskCancelConfirmed,
    ActionCancelAppointment,
    ValidateDeleteDataForm,
    ActionAskDeleteConfirmed,
    ActionDeleteData,
    ActionStopFlow,
    ActionHandoff,
    ActionAnswerAside,
    ActionHelpAfterFallback,
    ActionAnswerFaq,
    ActionAskVisitType,
    ActionAskDoctorChoice,
)


def build_actions(app: ClinicApp) -> list[Action]:
    return [action(app) for action in ACTIONS]


def create_server(app: ClinicApp, token: str, name: str = "clinic_actions") -> Sanic:
    """The action server's web application, with every action built on `app`, answering
    only calls that carry `token`."""
    if not token:
        raise SettingsError("ACTION_SERVER_TOKEN is not set: the action server needs one")
    executor = ActionExecutor()
    for action in build_actions(app):
        executor.register_action(action)
    server = Sanic(name, configure_logging=False)
    server.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    expected = f"Bearer {token}".encode()

    @server.middleware("request")
    async def only_the_rasa_server(request: Request) -> HTTPResponse | None:
        if request.path == "/health":
            return None
        given = (request.headers.get("Authorization") or "").encode()
        if not hmac.compare_digest(given, expected):
            logger.warning("action call refused: missing or wrong token")
            return response.json({"error": "unauthorized"}, status=401)
        return None

    @server.get("/health")
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    @server.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        try:
            action_call = _action_call(request)
        except (ValueError, zlib.error):
            action_call = None
        if not isinstance(action_call, dict):
            return response.json({"error": "Invalid body request"}, status=400)
        utils.check_version_compatibility(action_call.get("version"))
        REDACTOR.register(*_personal_values(action_call))
        try:
            result = await executor.run(action_call)
        except ActionExecutionRejection as error:
            return response.json(
                {"error": error.message, "action_name": error.action_name}, status=400
            )
        except ActionNotFoundException as error:
            logger.error("%s", error)
            return response.json(
                {"error": error.message, "action_name": error.action_name}, status=404
            )
        return response.json(result)

    @server.get("/actions")
    async def actions(_: Request) -> HTTPResponse:
        return response.json([{"name": name} for name in executor.actions])

    @server.exception(Exception)
    async def failed(_: Request, error: Exception) -> HTTPResponse:
        # The class only: the request (a patient's tracker) never goes into logs or answers.
        logger.error("action call failed: %s", type(error).__name__)
        return response.json({"error": "internal error"}, status=500)

    return server


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
    settings = load_settings()
    install_redaction(REDACTOR)
    log_level = os.environ.get("LOG_LEVEL", "INFO")
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(log_level)
    utils.update_sanic_log_level()
    try:
        server = create_server(ClinicApp.from_settings(settings), settings.action_server_token)
    except SettingsError as error:
        raise SystemExit(f"error: {error}") from None
    host = settings.action_server_host
    logger.info("action server on http://%s:%s", host, settings.action_server_port)
    server.run(host, settings.action_server_port, access_log=False)
