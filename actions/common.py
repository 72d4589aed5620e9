"""What every action shares: the application it was built with, and rendering helpers."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.parsing import parse_day
from clinic.application import ClinicApp, Offer
from clinic.audit import hash_id
from clinic.settings import load_settings
from clinic.templates import (
    MAX_QUICK_REPLIES,
    QUICK_REPLY_TITLE_LIMIT,
    Templates,
    format_time,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


@functools.cache
def process_app() -> ClinicApp:
    """The process's one `ClinicApp`, from the settings: what an action gets when rasa_sdk
    builds it without arguments, as its action server does with every `Action` it finds."""
    return ClinicApp.from_settings(load_settings())


class UsesClinic:
    """An action or form validation built with a `ClinicApp`: the process's (rasa_sdk's
    action server), or a test's."""

    def __init__(self, app: ClinicApp | None = None) -> None:
        self.app = app if app is not None else process_app()

    @property
    def texts(self) -> Templates:
        return self.app.templates

    async def core(self, use_case: Callable[..., T], *args: Any) -> T:
        """Runs a blocking use case in a worker thread so other chats keep moving."""
        return await asyncio.to_thread(use_case, *args)

    def read_day(self, text: str) -> date | None:
        """The day a patient's words name, from the clinic's today, in its date order."""
        return parse_day(text, self.app.today(), self.app.settings.date_order)

    def chat_ref(self, tracker: Tracker) -> str:
        """The hashed sender id: what logs may carry instead of the Instagram id."""
        return hash_id(tracker.sender_id, self.app.settings.id_hash_key)

    def say_unavailable(self, dispatcher: CollectingDispatcher, tracker: Tracker, where: str):
        logger.warning("database unavailable in %s chat=%s", where, self.chat_ref(tracker))
        dispatcher.utter_message(text=self.texts.render("booking_unavailable"))

    def ask_yes_no(self, dispatcher: CollectingDispatcher, question: str, yes: str, no: str):
        """A yes/no question with two quick replies; `yes` and `no` name the button texts."""
        buttons = [(self.texts.render(yes), "/affirm"), (self.texts.render(no), "/deny")]
        dispatcher.utter_message(text=question, buttons=quick_replies(buttons))

    def numbered_offers(
        self, header: str, offers: list[Offer], doctors: dict[int, str] | None = None
    ) -> tuple[str, list]:
        """The header, '1. 9:00 AM', '2. 9:30 AM'…, the footer; and a quick reply per time.
        With `doctors` (times of several doctors) each time names its doctor."""
        zone = self.app.zone

        def shown(offer: Offer) -> str:
            at = format_time(offer.start, zone)
            return f"{at} {doctors[offer.doctor_id]}" if doctors else at

        lines = [f"{number}. {shown(offer)}" for number, offer in enumerate(offers, 1)]
        text = "\n".join([header, *lines, self.texts.render("slot_list_footer")])
        buttons = quick_replies([(shown(offer), offer.code) for offer in offers])
        return text, buttons


class ClinicAction(UsesClinic, Action, ABC):
    """A custom action with the application at hand."""

    @abstractmethod
    def name(self) -> str: ...


def latest_text(tracker: Tracker) -> str:
    text = (tracker.latest_message or {}).get("text")
    return text if isinstance(text, str) else ""


def latest_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


# The forms of a booking: leaving one means nothing was booked.
BOOKING_FORMS = frozenset({"details_form", "booking_form", "reschedule_form"})


def form_stopped_this_turn(tracker: Tracker) -> str | None:
    """The form that was active when the patient's latest message arrived."""
    active = active_at_user_turn = None
    for event in tracker.events:
        if event.get("event") == "active_loop":
            active = event.get("name")
        if event.get("event") == "user":
            active_at_user_turn = active
    return active_at_user_turn


# The entities a quick reply's payload may carry ("/book_appointment{...}").
KNOWN_ENTITIES = frozenset({"appointment_day", "preferred_time"})


def named_values(tracker: Tracker) -> dict[str, str]:
    """The known entities of the latest message that hold text. A patient can type
    `/book_appointment{"appointment_day": 5}` too: anything else is ignored."""
    entities = (tracker.latest_message or {}).get("entities") or []
    return {
        e["entity"]: e["value"]
        for e in entities
        if isinstance(e, dict)
        and e.get("entity") in KNOWN_ENTITIES
        and isinstance(e.get("value"), str)
    }


def message_time(tracker: Tracker) -> datetime | None:
    """When the patient's latest message arrived (its tracker event's timestamp)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user" and event.get("timestamp"):
            return datetime.fromtimestamp(event["timestamp"], timezone.utc)
    return None


def quick_replies(options: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Rasa buttons (Instagram quick replies): title, payload; within Instagram's limits."""
    return [
        {"title": title[:QUICK_REPLY_TITLE_LIMIT], "payload": payload}
        for title, payload in options[:MAX_QUICK_REPLIES]
    ]


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


class FormQuestion(ClinicAction, ABC):
    """Asks a form's question with a text from templates.yml; a yes/no question also gets
    two quick replies (`buttons`: the texts of the yes and no buttons)."""

    question: str
    buttons: tuple[str, str] | None = None

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        text = self.texts.render(self.question)
        if self.buttons:
            self.ask_yes_no(dispatcher, text, *self.buttons)
        else:
            dispatcher.utter_message(text=text)
        return []
