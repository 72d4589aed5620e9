"""What several actions share: the patient behind a chat, rendering helpers, constants."""

from __future__ import annotations

import functools
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.parsing import parse_day
from actions.runtime import current_clinic, run_core
from clinic.audit import hash_id
from clinic.doctors import default_doctor
from clinic.models import Doctor, Patient
from clinic.patients import find_patient
from clinic.templates import Templates, format_time, load_templates
from connectors.graph_api import MAX_QUICK_REPLIES, QUICK_REPLY_TITLE_LIMIT

logger = logging.getLogger(__name__)


def templates() -> Templates:
    return load_templates(current_clinic().settings.templates_path)


def chat_ref(tracker: Tracker) -> str:
    """The hashed sender id: what logs may carry instead of the Instagram id."""
    return hash_id(tracker.sender_id, current_clinic().settings.id_hash_key)


async def current_patient(tracker: Tracker) -> Patient | None:
    return await run_core(find_patient, current_clinic(), tracker.sender_id)


async def booking_doctor() -> Doctor:
    return await run_core(default_doctor, current_clinic())


def read_day(text: str) -> date | None:
    """The day a patient's words name, from the clinic's today, in the region's date order."""
    clinic = current_clinic()
    # 2/5 is Feb 5 in the US, Canada and the Philippines, 2 May almost everywhere else.
    month_first = clinic.settings.phone_default_region in {"US", "CA", "PH"}
    return parse_day(text, clinic.today(), month_first=month_first)


def say_unavailable(dispatcher: CollectingDispatcher, tracker: Tracker, where: str) -> None:
    logger.warning("database unavailable in %s chat=%s", where, chat_ref(tracker))
    dispatcher.utter_message(text=templates().render("booking_unavailable"))


def latest_text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def latest_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def quick_replies(options: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Rasa buttons (Instagram quick replies): title, payload; within Instagram's limits."""
    return [
        {"title": title[:QUICK_REPLY_TITLE_LIMIT], "payload": payload}
        for title, payload in options[:MAX_QUICK_REPLIES]
    ]


def ask_yes_no(dispatcher: CollectingDispatcher, question: str, yes: str, no: str) -> None:
    """A yes/no question with two quick replies; `yes` and `no` name the button texts."""
    texts = templates()
    dispatcher.utter_message(
        text=question,
        buttons=quick_replies([(texts.render(yes), "/affirm"), (texts.render(no), "/deny")]),
    )


def numbered_times(header: str, slots: list[datetime], zone: ZoneInfo) -> tuple[str, list]:
    """'Here are the available times…\\n1. 9:00 AM\\n2. 9:30 AM' and a quick reply per slot."""
    lines = [f"{number}. {format_time(slot, zone)}" for number, slot in enumerate(slots, 1)]
    text = "\n".join([header, *lines, templates().render("slot_list_footer")])
    buttons = quick_replies([(format_time(slot, zone), slot.isoformat()) for slot in slots])
    return text, buttons


def clear(tracker: Tracker, *names: str) -> list[dict[str, Any]]:
    """Events that empty the named slots which hold a value."""
    return [SlotSet(name, None) for name in names if tracker.get_slot(name) is not None]


def skips_cleared(validate: Callable) -> Callable:
    """rasa_sdk also validates slots that an action has just emptied; those need no checks
    and, above all, no re-prompt."""
    slot = validate.__name__.removeprefix("validate_")

    @functools.wraps(validate)
    async def wrapper(self, value, dispatcher, tracker, domain):  # noqa: ANN001
        if value is None:
            return {slot: None}
        result = validate(self, value, dispatcher, tracker, domain)
        return await result if inspect.isawaitable(result) else result

    return wrapper


class FormQuestion(Action, ABC):
    """Asks a form's question with a text from templates.yml; a yes/no question also gets
    two quick replies (`buttons`: the texts of the yes and no buttons)."""

    question: str
    buttons: tuple[str, str] | None = None

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        text = templates().render(self.question)
        if self.buttons:
            ask_yes_no(dispatcher, text, *self.buttons)
        else:
            dispatcher.utter_message(text=text)
        return []
