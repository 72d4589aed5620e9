"""The action server's composition root: one `ClinicApp` for the process, every action
built with it, and the HTTP routes Rasa calls (`/health`, `/webhook`, `/actions`).

`python -m actions` runs it; tests build the same server with their own application.
"""

from __future__ import annotations

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

from actions.booking import (
    ActionAskAppointmentDay,
    ActionAskSlotChoice,
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
    ActionAnswerAside,
    ActionAskDeleteConfirmed,
    ActionDeleteData,
    ActionHandoff,
    ActionHelpAfterFallback,
    ActionStopFlow,
    ValidateDeleteDataForm,
)
from clinic.application import ClinicApp
from clinic.settings import load_settings

logger = logging.getLogger(__name__)

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
)


def build_actions(app: ClinicApp) -> list[Action]:
    return [action(app) for action in ACTIONS]


def create_server(app: ClinicApp, name: str = "clinic_actions") -> Sanic:
    """The action server's web application, with every action built on `app`."""
    executor = ActionExecutor()
    for action in build_actions(app):
        executor.register_action(action)
    server = Sanic(name, configure_logging=False)

    @server.get("/health")
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    @server.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        action_call = _action_call(request)
        if not isinstance(action_call, dict):
            return response.json({"error": "Invalid body request"}, status=400)
        utils.check_version_compatibility(action_call.get("version"))
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


def _action_call(request: Request) -> Any:
    if request.headers.get("Content-Encoding") == "deflate":
        return json.loads(zlib.decompress(request.body))
    return request.json


def main() -> None:
    settings = load_settings()
    log_level = os.environ.get("LOG_LEVEL", "INFO")
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(log_level)
    utils.update_sanic_log_level()
    server = create_server(ClinicApp.from_settings(settings))
    host = settings.action_server_host
    logger.info("action server on http://%s:%s", host, settings.action_server_port)
    server.run(host, settings.action_server_port, access_log=False)
