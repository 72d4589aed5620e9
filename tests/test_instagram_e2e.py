"""End to end: real rasa server (trained model, Instagram channel) + real action server +
fake Graph API + SQLite. A new patient books through signed webhooks only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from clinic.application import ClinicApp, Wish
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.models import Appointment, Doctor, Patient
from clinic.settings import Settings
from clinic.templates import format_when
from connectors.fake_graph import FakeGraphApi
from connectors.simulate import delivery, post_delivery
from tests.conftest import TEST_NAME, TEST_PHONE
from tests.helpers import wait_until
from tests.instagram_patient import InstagramPatient
from tests.servers import ROOT, Stack, clinic_command, running_stack

SECRET = "e2e-app-secret"
TOKEN = "e2e-access-token"
PATIENT = "IG_TEST_E2E_7731"  # a placeholder Instagram id
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "instagram"


@pytest.fixture(scope="module", params=[["seed", "--demo"]])
def stack(request, tmp_path_factory) -> Iterator[tuple[Stack, FakeGraphApi, str]]:
    """The whole stack on a clinic seeded by `request.param` (the demo: one doctor), shared
    by the tests of that clinic (each is its own patient)."""
    tmp_path = tmp_path_factory.mktemp("e2e")
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    with FakeGraphApi(access_token=TOKEN) as graph:
        env = dict(
            INSTAGRAM_VERIFY_TOKEN="e2e-verify",
            INSTAGRAM_APP_SECRET=SECRET,
            INSTAGRAM_ACCESS_TOKEN=TOKEN,
            INSTAGRAM_GRAPH_URL=graph.base_url,
        )
        with running_stack(database_url, tmp_path, **env) as servers:
            for command in (["init"], request.param):
                assert clinic_command(database_url, command) == 0
            servers.start_action_server()
            rasa_url = servers.start_rasa(
                credentials=ROOT / "credentials.yml", api=False, ready_path="/webhooks/instagram/"
            )
            yield servers, graph, rasa_url, database_url


def test_a_new_patient_books_through_instagram_and_gets_the_confirmation(stack):
    servers, graph, rasa_url, database_url = stack
    patient = InstagramPatient(rasa_url, graph, PATIENT, SECRET)

    (greeting,) = patient.say("hi")
    assert greeting["text"].startswith("Hi! I'm the clinic's booking assistant.")
    (consent,) = patient.say("I'd like to book an appointment")
    assert [q["payload"] for q in consent["quick_replies"]] == ["/affirm", "/deny"]
    (ask_name,) = patient.tap(consent, 1)
    assert ask_name["text"] == "What's your full name?"
    (ask_phone,) = patient.say(TEST_NAME)
    assert ask_phone["text"].startswith("And your phone number?")
    (ask_day,) = patient.say(TEST_PHONE)
    assert ask_day["text"].startswith("Which day works for you?")
    (slot_list,) = patient.tap(ask_day, 1)
    assert "\n1. " in slot_list["text"]
    (confirmation,) = patient.tap(slot_list, 1)

    clinic = Clinic(create_database_engine(database_url), Settings(database_url=database_url))
    with transaction(clinic.engine) as session:
        stored = session.scalars(select(Patient).where(Patient.instagram_id == PATIENT)).one()
        (appointment,) = session.scalars(
            select(Appointment).where(Appointment.patient_id == stored.id)
        ).all()
    assert (stored.name, stored.phone, stored.consent_status) == (TEST_NAME, TEST_PHONE, "granted")
    when = format_when(appointment.start_at, clinic.settings.zone)
    assert confirmation["text"] in {
        f"Your appointment is confirmed for {when}. We'll send you a reminder here.",
        f"Your appointment is confirmed for {when}. Please save this message: Instagram only "
        "lets us write to you within 24 hours of your last message, so a reminder may not "
        "reach you.",
    }
    # Every answer went out exactly once, and logs carry none of the patient's data.
    assert len(patient.messages()) == 7
    # The item is logged as processed just after its last reply went out.
    assert wait_until(lambda: "instagram item processed" in servers.logs(), timeout=60)
    logs = servers.logs()
    for secret in (TEST_NAME, TEST_PHONE, PATIENT):
        assert secret not in logs
    clinic.engine.dispose()


def test_the_channel_answers_meta_and_refuses_forgeries(stack):
    _, graph, rasa_url, _ = stack
    import urllib.error
    import urllib.request

    challenge = (
        f"{rasa_url}/webhooks/instagram/webhook?hub.mode=subscribe"
        "&hub.verify_token=e2e-verify&hub.challenge=31337"
    )
    with urllib.request.urlopen(challenge) as answer:  # noqa: S310 - loopback
        assert answer.read() == b"31337"
    forged = delivery("IG_TEST_FORGED", "hi")
    with pytest.raises(urllib.error.HTTPError) as refused:
        post_delivery(rasa_url, forged, "not-the-secret")
    assert refused.value.code == 403
    assert graph.messages_to("IG_TEST_FORGED") == []


POISONED_TIMES = [
    # a delivery (signed as Meta signs it), the senders whose "hi" each gets the greeting
    ("poison_timestamps", ["IG_TEST_TS_FUTURE", "IG_TEST_TS_NEGATIVE", "IG_TEST_TS_TEXT",
                           "IG_TEST_TS_VALID"]),
    ("poison_entry_time", ["IG_TEST_ENTRY_FUTURE", "IG_TEST_ENTRY_NEGATIVE",
                           "IG_TEST_ENTRY_VALID"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "senders"), POISONED_TIMES, ids=[n for n, _ in POISONED_TIMES])
def test_an_implausible_time_never_turns_a_delivery_away(stack, name, senders):
    """Item timestamps of the year 33658, negative or not numbers, and entry times out of
    range: the delivery gets 200 and every message its answer (at its arrival time)."""
    _, graph, rasa_url, _ = stack
    assert post_delivery(rasa_url, (FIXTURES / f"{name}.json").read_bytes(), SECRET) == 200
    for sender in senders:
        patient = InstagramPatient(rasa_url, graph, sender, SECRET)
        assert wait_until(patient.messages, timeout=90), sender
        (greeting,) = patient.messages()
        assert greeting["text"].startswith("Hi! I'm the clinic's booking assistant.")


TWO_DOCTORS = ["seed", "--demo", "--doctors", "2"]


@pytest.mark.parametrize("stack", [TWO_DOCTORS], indirect=True)
def test_two_doctors_and_two_visit_types_through_instagram(stack):
    """A patient names a doctor (with a typo) and a visit; another asks a question inside
    the form, then takes any doctor. Each confirmation names the visit and the doctor."""
    _, graph, rasa_url, database_url = stack
    named = InstagramPatient(rasa_url, graph, "IG_TEST_E2E_SMITH", SECRET)
    (consent,) = named.say("can i book a procedure with dr smtih")
    named.tap(consent, 1)
    named.say(TEST_NAME)
    (ask_day,) = named.say(TEST_PHONE)
    assert ask_day["text"].startswith("Which day works for you?")
    (slot_list,) = named.tap(ask_day, 1)
    assert "\n1. " in slot_list["text"]
    (confirmation,) = named.tap(slot_list, 1)
    assert confirmation["text"].startswith("Your appointment is confirmed for ")
    assert ": Procedure with Dr. Smith." in confirmation["text"]

    anyone = InstagramPatient(rasa_url, graph, "IG_TEST_E2E_ANYONE", SECRET)
    (consent,) = anyone.say("book")
    anyone.tap(consent, 1)
    anyone.say(TEST_NAME)
    (ask_visit,) = anyone.say("+1 202 555 0144")
    assert ask_visit["text"] == "What kind of visit do you need?"
    titles = [q["title"] for q in ask_visit["quick_replies"]]
    assert titles == ["Consultation $80", "Procedure from $150"]
    (price, ask_again) = anyone.say("how much is a procedure?", replies=2)
    assert price["text"] == "A Procedure costs from $150. Let's carry on:"
    assert ask_again["text"] == "What kind of visit do you need?"
    (ask_doctor,) = anyone.tap(ask_again, 1)
    assert ask_doctor["text"] == "Which doctor would you like to see?"
    assert [q["title"] for q in ask_doctor["quick_replies"]] == [
        "Dr. Demo",
        "Dr. Smith",
        "Any doctor",
    ]
    (ask_day,) = anyone.say("any doctor is fine")
    clinic = Clinic(create_database_engine(database_url), Settings(database_url=database_url))
    app = ClinicApp(clinic)
    earliest = app.first_day_with_slots(app.today(), Wish(visit="consultation")).offers[0]
    (slot_list,) = anyone.tap(ask_day, 1)
    (confirmation,) = anyone.tap(slot_list, 1)
    assert ": Consultation with Dr. " in confirmation["text"]

    with transaction(clinic.engine) as session:
        rows = session.execute(
            select(Patient.instagram_id, Appointment.visit_type, Doctor.name, Appointment)
            .join(Appointment, Appointment.patient_id == Patient.id)
            .join(Doctor, Doctor.id == Appointment.doctor_id)
            .order_by(Patient.instagram_id)
        ).all()
    (anyone_row, smith_row) = rows
    assert smith_row[:3] == ("IG_TEST_E2E_SMITH", "procedure", "Dr. Smith")
    assert (smith_row[3].end_at - smith_row[3].start_at).total_seconds() == 3600
    assert anyone_row[:2] == ("IG_TEST_E2E_ANYONE", "consultation")
    assert anyone_row[2] in confirmation["text"]
    # "Any doctor" offered the earliest free time across both doctors first.
    assert (anyone_row[3].start_at, anyone_row[3].doctor_id) == (
        earliest.start,
        earliest.doctor_id,
    )
    clinic.engine.dispose()
