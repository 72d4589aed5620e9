"""The consent and details form, with real trackers and a real (SQLite) database."""

from __future__ import annotations

import pytest

from actions.details_form import (
    ActionAskConsentGiven,
    ActionAskPatientName,
    ActionAskPatientPhone,
    ValidateDetailsForm,
)
from clinic.patients import find_patient
from tests.conftest import TEST_NAME, unreachable_app
from tests.factories import add_patient
from tests.helpers import StatementLog
from tests.trackers import make_tracker, run, texts


@pytest.fixture
def form(app) -> ValidateDetailsForm:
    return ValidateDetailsForm(app)


def answer(text: str, requested: str, intent: str = "give_name", confidence: float = 0.99, **slots):
    return make_tracker(
        text=text,
        intent=intent,
        confidence=confidence,
        slots={"requested_slot": requested, **slots},
        active_loop="details_form",
    )


def test_the_consent_question_offers_yes_and_no(app, clinic):
    _, messages = run(ActionAskConsentGiven(app), make_tracker())
    (message,) = messages
    assert "we store your name and phone number" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]


def test_the_name_and_phone_questions(app, clinic):
    assert texts(run(ActionAskPatientName(app), make_tracker())[1]) == ["What's your full name?"]
    (phone_question,) = texts(run(ActionAskPatientPhone(app), make_tracker())[1])
    assert phone_question.startswith("And your phone number? Please include the area code")


@pytest.mark.parametrize(("text", "intent"), [("yes", "affirm"), ("ok sure", None), ("👍", None)])
def test_yes_records_consent_and_asks_for_the_name_next(form, clinic, text, intent):
    slots, messages = run(form, answer(text, "consent_given", intent=intent))
    assert slots["consent_given"] is True
    assert messages == []
    patient = find_patient(clinic, "IG_TEST_1")
    assert patient.consent_status == "granted" and patient.consent_at == clinic.now()
    assert (patient.name, patient.phone) == (None, None)


def test_no_stores_nothing_and_ends_the_form(form, clinic):
    slots, messages = run(form, answer("no thanks", "consent_given", intent="deny"))
    assert slots == {"consent_given": False, "requested_slot": None}
    assert find_patient(clinic, "IG_TEST_1") is None


def test_an_unclear_consent_answer_is_asked_again(form, clinic):
    slots, messages = run(form, answer("hmm maybe", "consent_given", intent="nlu_fallback"))
    assert slots["consent_given"] is None
    assert texts(messages) == ["Please answer yes or no."]
    assert find_patient(clinic, "IG_TEST_1") is None


@pytest.mark.parametrize("intent", ["stop", "human_handoff", "bot_challenge", "ask_privacy"])
def test_a_clear_interruption_is_left_to_the_rules(form, clinic, intent):
    slots, messages = run(
        form, answer("whatever", "patient_name", intent=intent, consent_given=True)
    )
    assert "patient_name" not in slots
    assert messages == []


def test_a_doubtful_stop_is_read_as_an_answer(form, clinic):
    add_patient(clinic, details=False)
    tracker = answer(
        "call me maybe",
        "patient_phone",
        intent="stop",
        confidence=0.6,
        consent_given=True,
        patient_name=TEST_NAME,
    )
    slots, messages = run(form, tracker)
    assert slots["patient_phone"] is None
    assert texts(messages)[0].startswith("Sorry, that doesn't look like a phone number.")


@pytest.mark.parametrize(
    ("text", "stored"),
    [("my name is PATIENT_TEST", "PATIENT_TEST"), ("I'm Patient  Test-Two.", "Patient Test-Two")],
)
def test_the_name_is_read_without_the_words_around_it(form, clinic, text, stored):
    add_patient(clinic, details=False)
    slots, messages = run(form, answer(text, "patient_name", consent_given=True))
    assert slots["patient_name"] == stored
    assert messages == []


@pytest.mark.parametrize("text", ["x", "12345", "Robert'); DROP TABLE patients;--", "n" * 300])
def test_a_bad_name_is_asked_again_with_an_example(form, clinic, text):
    add_patient(clinic, details=False)
    slots, messages = run(form, answer(text, "patient_name", consent_given=True))
    assert slots["patient_name"] is None
    assert "for example: Maria Lopez" in texts(messages)[0]


def test_a_good_phone_stores_both_details_in_e164_and_ends_the_form(form, clinic):
    add_patient(clinic, details=False)
    tracker = answer(
        "my number is (212) 555-0199",
        "patient_phone",
        intent="give_phone",
        consent_given=True,
        patient_name=TEST_NAME,
    )
    slots, messages = run(form, tracker)
    assert messages == []
    assert slots["requested_slot"] is None
    assert slots["patient_name"] is None and slots["patient_phone"] is None  # kept in the DB only
    patient = find_patient(clinic, "IG_TEST_1")
    assert (patient.name, patient.phone) == (TEST_NAME, "+12125550199")


def test_a_returning_patient_is_not_asked_anything(form, clinic):
    add_patient(clinic)
    slots, _ = run(form, make_tracker(active_loop="details_form"))
    assert slots == {"consent_given": True, "requested_slot": None}


def test_a_database_outage_during_consent_is_answered_politely(clinic):
    form = ValidateDetailsForm(unreachable_app(clinic.clock))
    slots, messages = run(form, answer("yes", "consent_given", intent="affirm"))
    assert slots["consent_given"] is None
    assert "can't reach the booking system" in " ".join(texts(messages))


@pytest.mark.parametrize(
    ("requested", "text", "slots"),
    [
        ("consent_given", "yes", {}),
        ("patient_name", "PATIENT_TEST", {"consent_given": True}),
        (
            "patient_phone",
            "+1 202 555 0143",
            {"consent_given": True, "patient_name": "PATIENT_TEST"},
        ),
    ],
    ids=["consent", "name", "phone"],
)
def test_each_message_reads_the_patient_at_most_once(form, clinic, requested, text, slots):
    """rasa-sdk asks the form's required slots three times per message; the patient is
    still read from the database once at most."""
    if slots:
        add_patient(clinic, details=False)  # consent was given at the first question
    with StatementLog(clinic.engine) as log:
        _, messages = run(form, answer(text, requested, intent="affirm", **slots))
    assert messages == []  # every answer was taken
    assert log.reads_of("patients") <= 1, log.statements


def test_a_number_without_area_code_is_asked_again_with_it(form, clinic):
    add_patient(clinic, details=False)
    tracker = answer("555 0100", "patient_phone", intent="give_phone", consent_given=True,
                     patient_name="PATIENT_TEST")  # fmt: skip
    slots, messages = run(form, tracker)
    assert slots["patient_phone"] is None
    assert texts(messages) == [
        "I need the area code too, so the clinic can call you: for example 212 555 0199."
    ]
    assert find_patient(clinic, "IG_TEST_1").phone is None
