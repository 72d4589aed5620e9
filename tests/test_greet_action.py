import asyncio

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.greet import ActionGreet
from actions.runtime import use_clinic
from tests.conftest import UNREACHABLE_DATABASE_URL, build_clinic
from tests.factories import add_patient


def run_greet(sender_id: str) -> list[str]:
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
    events = asyncio.run(ActionGreet().run(dispatcher, tracker, domain={}))
    assert events == []
    return [message["text"] for message in dispatcher.messages]


def test_new_patient_gets_the_introduction(clinic):
    (text,) = run_greet("IG_NEW")
    assert text.startswith("Hi! I'm the clinic's booking assistant.")


def test_returning_patient_is_welcomed_by_first_name(clinic):
    add_patient(clinic, "IG_BACK")
    (text,) = run_greet("IG_BACK")
    assert text.startswith("Welcome back, PATIENT_TEST!")


def test_database_outage_still_greets(clinic):
    use_clinic(build_clinic(UNREACHABLE_DATABASE_URL, clinic.clock))
    (text,) = run_greet("IG_ANY")
    assert text.startswith("Hi! I'm the clinic's booking assistant.")
