"""Greets new and returning patients."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import templates
from actions.runtime import current_clinic, run_core
from clinic.errors import DatabaseUnavailableError
from clinic.patients import find_patient


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            patient = await run_core(find_patient, current_clinic(), tracker.sender_id)
        except DatabaseUnavailableError:
            patient = None
        if patient is not None and patient.has_consented and patient.name:
            first_name = patient.name.split()[0]
            text = templates().render("greeting_returning", first_name=first_name)
        else:
            text = templates().render("greeting")
        dispatcher.utter_message(text=text)
        return []
