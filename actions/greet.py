"""Greets new and returning patients."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

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
            dispatcher.utter_message(
                text=f"Welcome back, {first_name}! I can book, show, change or cancel "
                "your appointment. What would you like to do?"
            )
        else:
            dispatcher.utter_message(
                text="Hi! I'm the clinic's booking assistant. I can book, show, change or "
                "cancel an appointment. What would you like to do?"
            )
        return []
