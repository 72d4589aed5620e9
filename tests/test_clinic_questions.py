"""Questions clinics really get, answered from the profile and the schedule, anywhere; and
inside a form, words that answer its question win over an aside reading of them."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from actions.asides import ActionAnswerAside, ActionAnswerFaq
from tests.factories import add_block, add_doctor
from tests.trackers import make_tracker, run, texts

# The clock fixture: Monday Feb 2, 2026, 8:00 in New York.


def ask(app, text: str, **kwargs) -> list[str]:
    _, messages = run(
        ActionAnswerFaq(app), make_tracker(text=text, intent="ask_clinic_info", **kwargs)
    )
    return texts(messages)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        (
            "what are your opening hours?",
            "We're open Mon–Fri 9:00 AM–12:00 PM and 1:00 PM–5:00 PM.",
        ),
        ("r u open on saturday", "Sorry, we're closed on Sat, Feb 7. We're open Mon–Fri"),
        (
            "are you open tomorrow?",
            "On Tue, Feb 3 we're open 9:00 AM–12:00 PM and 1:00 PM–5:00 PM.",
        ),
        ("where are you located", "We're at 100 Example Street, Springfield. Map: https://"),
        ("whats the adress", "We're at 100 Example Street"),
        ("how much does a consultation cost?", "A Consultation costs $80."),
        ("hows much for a procedure", "A Procedure costs from $150."),
        ("prices?", "Our visits: Consultation $80, Follow-up $50, Procedure from $150."),
        ("do you take blue cross insurance", "We accept most major insurance plans"),
        ("is there parking", "There is free parking behind the building"),
        ("where do I park?", "There is free parking behind the building"),
        ("where can i leave my car", "There is free parking behind the building"),
        ("who are your doctors", "We offer: Consultation, Follow-up and Procedure. Our doctors"),
        ("do you speak spanish", "We speak English and Spanish."),
        ("whats your phone number", "You can call the clinic at +1 202 555 0100."),
        ("is it wheelchair accessible", "The clinic is on the ground floor and step-free"),
    ],
)
def test_the_faq_is_answered_from_the_profile_and_the_hours(app, clinic, question, answer):
    add_doctor(clinic)
    (text,) = ask(app, question)
    assert text.startswith(answer)


def test_the_hours_name_the_days_the_clinic_is_closed(app, clinic, clock):
    add_doctor(clinic)
    zone = clinic.settings.zone
    holiday = (datetime(2026, 2, 16, tzinfo=zone), datetime(2026, 2, 18, tzinfo=zone))
    add_block(clinic, *holiday, None)
    (text,) = ask(app, "what are your hours")
    assert text.endswith("Closed Feb 16–17 (test).")
    (text,) = ask(app, "are you open on feb 16?")
    assert text.startswith("Sorry, we're closed on Mon, Feb 16.")


def test_a_question_the_profile_cannot_answer_offers_a_person(app, clinic):
    add_doctor(clinic)
    _, (message,) = run(
        ActionAnswerFaq(app), make_tracker(text="do you do tattoos", intent="ask_clinic_info")
    )
    assert message["text"] == (
        "Sorry, I don't have that information. Shall I ask someone from the clinic to answer you?"
    )
    assert [b["payload"] for b in message["buttons"]] == ["/human_handoff", "/book_appointment"]


def form_turn(text: str, intent: str, requested: str, form: str, **slots):
    return make_tracker(
        text=text,
        intent=intent,
        active_loop=form,
        slots={"requested_slot": requested, **slots},
    )


@pytest.mark.parametrize(
    ("text", "intent", "requested", "form"),
    [
        ("Hope Price", "ask_clinic_info", "patient_name", "details_form"),
        ("Jo Placeholder", "out_of_scope", "patient_name", "details_form"),
        ("202 555 0143", "out_of_scope", "patient_phone", "details_form"),
        ("thursday", "ask_clinic_info", "appointment_day", "booking_form"),
        ("yes", "thanks", "consent_given", "details_form"),
    ],
)
def test_words_that_answer_the_forms_question_are_taken_as_the_answer(
    app, clinic, text, intent, requested, form
):
    add_doctor(clinic)
    slots, messages = run(ActionAnswerAside(app), form_turn(text, intent, requested, form))
    assert slots == {requested: text}  # the form validates it next
    assert messages == []


@pytest.mark.parametrize(
    ("text", "intent", "requested", "form", "said"),
    [
        ("how much does it cost?", "ask_clinic_info", "patient_name", "details_form",
         "Our visits: Consultation $80, Follow-up $50, Procedure from $150. Let's carry on:"),
        ("where are you located?", "ask_clinic_info", "appointment_day", "booking_form",
         "We're at 100 Example Street, Springfield. Map: https://maps.example.com/?q=100+Example"
         "+Street Let's carry on:"),
        ("hi", "greet", "patient_name", "details_form", "Hi! Let's carry on:"),
        ("are you a bot", "bot_challenge", "patient_phone", "details_form",
         "I'm the clinic's booking assistant, a bot. Say \"talk to a person\" any time to reach "
         "our team. Let's carry on:"),
    ],
)  # fmt: skip
def test_a_real_aside_is_answered_and_the_form_asks_again(
    app, clinic, text, intent, requested, form, said
):
    add_doctor(clinic)
    slots, messages = run(ActionAnswerAside(app), form_turn(text, intent, requested, form))
    assert slots == {}
    assert texts(messages) == [said]


def test_asking_for_ones_appointment_inside_a_form_shows_it_and_carries_on(app, clinic):
    from clinic.booking import book
    from tests.factories import add_patient

    doctor, patient = add_doctor(clinic), add_patient(clinic)
    start = datetime.combine(date(2026, 2, 5), time(9), tzinfo=clinic.settings.zone)
    book(clinic, doctor, patient.id, start)
    tracker = form_turn(
        "when is my appointment?", "view_appointment", "appointment_day", "booking_form"
    )
    _, messages = run(ActionAnswerAside(app), tracker)
    assert texts(messages) == ["Your appointment is on Feb 5, 2026 at 9:00 AM. Let's carry on:"]
