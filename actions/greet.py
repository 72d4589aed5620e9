"""Greets new and returning patients."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ClinicAction
from clinic.errors import DatabaseUnavailableError


class ActionGreet(ClinicAction):
    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            patient = await self.core(self.app.patient, tracker.sender_id)
        except DatabaseUnavailableError:
            patient = None
        if patient is not None and patient.consented and patient.first_name:
            text = self.texts.render("greeting_returning", first_name=patient.first_name)
        else:
            text = self.texts.render("greeting")
        dispatcher.utter_message(text=text)
        return []
