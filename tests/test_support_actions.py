"""Stop, hand-off, asides and "delete my data"."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select

from actions.asides import ActionAnswerAside
from actions.support import (
    ActionDeleteData,
    ActionHandoff,
    ActionStopFlow,
    ValidateDeleteDataForm,
)
from clinic.audit import hash_id
from clinic.booking import book
from clinic.db import transaction
from clinic.erasure_markers import marked
from clinic.models import AuditEvent, Handoff
from clinic.patients import find_patient
from tests.conftest import TEST_NAME, TEST_PHONE
from tests.factories import add_doctor, add_patient
from tests.trackers import make_tracker, run, texts

NEW_YORK = ZoneInfo("America/New_York")


def test_stop_during_booking_says_nothing_was_booked_and_clears_the_flow(app, clinic):
    events = [
        {"event": "active_loop", "name": "booking_form"},
        {"event": "user", "text": "stop"},
        {"event": "active_loop", "name": None},
    ]
    tracker = make_tracker(text="stop", intent="stop", events=events, slots={"slot_choice": "x"})
    slots, messages = run(ActionStopFlow(app), tracker)
    assert texts(messages) == [
        "OK, I've stopped. Nothing was booked or changed. Anything else I can do?"
    ]
    assert slots == {"slot_choice": None}


def test_stop_outside_a_flow_is_short(app, clinic):
    _, messages = run(ActionStopFlow(app), make_tracker(text="stop", intent="stop"))
    assert texts(messages) == ["OK. Anything else I can do for you?"]


def test_handoff_is_recorded_without_the_instagram_id(app, clinic):
    patient = add_patient(clinic, "IG_HELP_ME")
    _, messages = run(ActionHandoff(app), make_tracker(sender_id="IG_HELP_ME"))
    assert "A person from the clinic will reply to you here" in texts(messages)[0]
    with transaction(clinic.engine) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.name == "handoff_requested")
        ).one()
    assert event.patient_id == patient.id
    assert event.recipient_hash and "IG_HELP_ME" not in event.recipient_hash


def test_a_handoff_passes_the_conversation_with_its_message_and_opens_a_handoff(app, clinic):
    _, (message,) = run(ActionHandoff(app), make_tracker(sender_id="IG_HELP_ME_TOO"))
    assert message["thread_control"] == "pass"
    with transaction(clinic.engine) as session:
        (row,) = session.scalars(select(Handoff)).all()
    assert (row.sender_id, row.state, row.control_passed) == ("IG_HELP_ME_TOO", "waiting", 1)


def _user(intent: str) -> dict:
    return {"event": "user", "text": "…", "parse_data": {"intent": {"name": intent}}}


HELP = {"event": "action", "name": "action_help_after_fallback"}
OFFER = {"event": "bot", "text": "Sorry, I didn't quite get that."}
HANDOFF = {"event": "bot", "text": "I've asked…", "metadata": {"thread_control": "pass"}}


def test_the_second_message_in_a_row_not_understood_goes_to_a_person(app, clinic):
    from actions.support import ActionHelpAfterFallback

    once = [_user("greet"), {"event": "action", "name": "utter_greet"}, _user("nlu_fallback")]
    broken = [_user("nlu_fallback"), HELP, OFFER, _user("affirm"), _user("nlu_fallback")]
    after_handoff = [_user("nlu_fallback"), HELP, HANDOFF, _user("nlu_fallback")]
    new_session = [_user("nlu_fallback"), HELP, OFFER, {"event": "session_started"}, _user("x")]
    for events in (once, broken, after_handoff, new_session):
        tracker = make_tracker(text="blorp", intent="nlu_fallback", events=events)
        _, (offer,) = run(ActionHelpAfterFallback(app), tracker)
        assert offer["text"].startswith("Sorry, I didn't quite get that."), events
        assert "thread_control" not in offer

    twice = [_user("choose_option"), HELP, OFFER, _user("nlu_fallback")]
    tracker = make_tracker(sender_id="IG_LOST", text="blorp", intent="nlu_fallback", events=twice)
    _, (handoff,) = run(ActionHelpAfterFallback(app), tracker)

    assert handoff["text"].startswith("I'm sorry I couldn't follow. I've asked our team")
    assert handoff["thread_control"] == "pass"
    with transaction(clinic.engine) as session:
        assert session.scalars(select(Handoff.sender_id)).all() == ["IG_LOST"]


def test_asides_are_answered_and_the_form_carries_on(app, clinic):
    for intent, start in [
        ("greet", "Hi!"),
        ("bot_challenge", "I'm the clinic's booking assistant, a bot."),
        ("ask_privacy", "We keep your name and phone number in the clinic's booking system"),
        ("out_of_scope", "Sorry, I can only help with appointments"),
    ]:
        _, (message,) = run(ActionAnswerAside(app), make_tracker(intent=intent))
        assert message["text"].startswith(start)
        assert message["text"].endswith("Let's carry on:")


def test_delete_my_data_erases_details_and_cancels_upcoming_appointments(app, any_clinic):
    doctor = add_doctor(any_clinic)
    patient = add_patient(any_clinic)
    book(any_clinic, doctor, patient.id, datetime.combine(date(2026, 2, 5), time(9), NEW_YORK))
    form_slots, _ = run(ValidateDeleteDataForm(app), make_tracker(active_loop="delete_data_form"))
    assert form_slots == {}  # the question will be asked
    tracker = make_tracker(
        text="yes",
        intent="affirm",
        active_loop="delete_data_form",
        slots={"requested_slot": "delete_confirmed"},
    )
    form_slots, _ = run(ValidateDeleteDataForm(app), tracker)
    assert form_slots["delete_confirmed"] is True
    slots, messages = run(ActionDeleteData(app), make_tracker(slots={"delete_confirmed": True}))
    assert texts(messages) == [
        "Done: I've deleted your name, phone number and our conversation, and withdrawn your "
        "consent. I've also cancelled your appointment on Feb 5, 2026 at 9:00 AM."
    ]
    assert slots["conversation_erased"] is True  # the rasa server deletes the conversation
    assert find_patient(any_clinic, "IG_TEST_1") is None
    # A retried request (its turn died before the conversation went) says the same, and
    # the conversation still goes.
    slots, messages = run(ActionDeleteData(app), make_tracker(slots={"delete_confirmed": True}))
    assert texts(messages) == [
        "Done: I've deleted your name, phone number and our conversation, and withdrawn your "
        "consent."
    ]
    assert slots["conversation_erased"] is True


def test_the_deletion_question_says_what_it_erases(app, clinic):
    from actions.support import ActionAskDeleteConfirmed

    add_patient(clinic)
    _, (question,) = run(ActionAskDeleteConfirmed(app), make_tracker())
    assert question["text"].startswith("This erases your name and phone number")
    assert [b["payload"] for b in question["buttons"]] == ["/affirm", "/deny"]


def test_saying_no_keeps_the_data(app, clinic):
    add_patient(clinic)
    _, messages = run(ActionDeleteData(app), make_tracker(slots={"delete_confirmed": False}))
    assert texts(messages) == ["OK, I've kept your details."]
    patient = find_patient(clinic, "IG_TEST_1")
    assert (patient.name, patient.phone) == (TEST_NAME, TEST_PHONE)


def test_a_sender_who_never_gave_details_is_asked_and_their_conversation_erased(app, clinic):
    from actions.support import ActionAskDeleteConfirmed

    form_slots, _ = run(ValidateDeleteDataForm(app), make_tracker(active_loop="delete_data_form"))
    assert form_slots == {}  # the question will be asked
    _, (question,) = run(ActionAskDeleteConfirmed(app), make_tracker())
    assert question["text"].startswith("This erases our conversation")
    slots, messages = run(ActionDeleteData(app), make_tracker(slots={"delete_confirmed": False}))
    assert texts(messages) == ["OK, I've kept our conversation."]
    assert "conversation_erased" not in slots
    slots, messages = run(ActionDeleteData(app), make_tracker(slots={"delete_confirmed": True}))
    assert texts(messages) == ["Done: I've deleted our conversation."]
    assert slots["conversation_erased"] is True
    with transaction(clinic.engine) as session:
        assert marked(session) == [hash_id("IG_TEST_1", clinic.settings.id_hash_key)]


def test_a_message_not_understood_offers_a_booking_on_the_day_it_names(app, clinic):
    from actions.support import ActionHelpAfterFallback

    tracker = make_tracker(text="could i pop in thursday at 2:30pm", intent="nlu_fallback")
    _, (message,) = run(ActionHelpAfterFallback(app), tracker)
    assert message["text"].startswith("Sorry, I didn't quite get that.")
    assert [(b["title"], b["payload"]) for b in message["buttons"]] == [
        (
            "Thu, Feb 5 2:30pm",
            '/book_appointment{"appointment_day": "2026-02-05", "preferred_time": "2:30pm"}',
        ),
        ("My appointments", "/view_appointment"),
        ("Talk to a person", "/human_handoff"),
    ]
    _, (plain,) = run(ActionHelpAfterFallback(app), make_tracker(text="hmm", intent="nlu_fallback"))
    assert plain["buttons"][0] == {"title": "Book a visit", "payload": "/book_appointment"}


def test_a_booking_quick_reply_carries_its_day_and_time(app, clinic):
    from actions.booking import ActionStartBooking

    tracker = make_tracker(
        text='/book_appointment{"appointment_day": "2026-02-05", "preferred_time": "2:30pm"}',
        intent="book_appointment",
    )
    tracker.latest_message["entities"] = [
        {"entity": "appointment_day", "value": "2026-02-05"},
        {"entity": "preferred_time", "value": "2:30pm"},
    ]
    slots, _ = run(ActionStartBooking(app), tracker)
    assert (slots["appointment_day"], slots["preferred_time"]) == ("2026-02-05", "2:30pm")
