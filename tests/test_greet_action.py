import asyncio

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.greet import ActionGreet
from tests.conftest import unreachable_app
from tests.factories import add_patient


def run_greet(app, sender_id: str) -> list[str]:
    tracker = Tracker(
        sender_id=sender_id,
        slots={},
        latest_message={"intent": {"name": "greet"}, "text": "hi"},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionGreet(app).run(dispatcher, tracker, domain={}))
    assert events == []
    return [message["text"] for message in dispatcher.messages]


def test_new_patient_gets_the_introduction(app):
    (text,) = run_greet(app, "IG_NEW")
    assert text.startswith("Hi! I'm the clinic's booking assistant.")


def test_returning_patient_is_welcomed_by_first_name(app, clinic):
    add_patient(clinic, "IG_BACK")
    (text,) = run_greet(app, "IG_BACK")
    assert text.startswith("Welcome back, PATIENT_TEST!")


def test_database_outage_still_greets(clinic):
    (text,) = run_greet(unreachable_app(clinic.clock), "IG_ANY")
    assert text.startswith("Hi! I'm the clinic's booking assistant.")
