"""Turning the patient's latest message into an answer to the form's question.

Every form slot is filled here from the raw text, so an answer the NLU misreads is
still an answer: the validation actions decide. Only a message that is clearly meant
to leave the form ("stop", "talk to a person", "delete my data") or to say something
aside ("hi", "are you a bot?") is left to the dialogue rules.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import latest_intent, latest_text
from actions.intents import ASIDE_INTENTS, INTERRUPTION_CONFIDENCE, LEAVING_INTENTS
from actions.parsing import parse_yes_no
from clinic.templates import Templates


def is_interruption(tracker: Tracker) -> bool:
    intent = (tracker.latest_message or {}).get("intent") or {}
    return (
        intent.get("name") in LEAVING_INTENTS | ASIDE_INTENTS
        and (intent.get("confidence") or 0.0) >= INTERRUPTION_CONFIDENCE
    )


def read_answer(tracker: Tracker, slot: str) -> dict[str, Any]:
    """{slot: text} when the form asked for `slot`; {} lets the rules handle the message."""
    if tracker.get_slot("requested_slot") != slot or is_interruption(tracker):
        return {}
    return {slot: latest_text(tracker)}


def read_yes_no(
    tracker: Tracker, dispatcher: CollectingDispatcher, slot: str, texts: Templates
) -> dict[str, Any]:
    """{slot: True | False}, or {slot: None} with a hint when the answer is neither."""
    if tracker.get_slot("requested_slot") != slot or is_interruption(tracker):
        return {}
    answer = parse_yes_no(latest_text(tracker), latest_intent(tracker))
    if answer is None:
        dispatcher.utter_message(text=texts.render("yes_or_no"))
    return {slot: answer}


def typed_answer(slot: str):
    """A form's `extract_<slot>` method that reads the slot from the text, as typed:
    `extract_patient_name = typed_answer("patient_name")`."""

    async def extract(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        return read_answer(tracker, slot)

    return extract


def yes_no_answer(slot: str):
    """A form's `extract_<slot>` method that reads a yes or a no (see `read_yes_no`)."""

    async def extract(self, dispatcher, tracker: Tracker, domain) -> dict[str, Any]:
        return read_yes_no(tracker, dispatcher, slot, self.texts)

    return extract
