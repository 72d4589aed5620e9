"""Text messages end to end: a real rasa server (Instagram channel and Twilio webhooks), a
real action server, the fake Graph API and the fake Twilio. Answers to reminder texts,
signatures refused, delivery reports, and the confirmation naming the reminder's channel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from clinic.application import ClinicApp, Wish
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.models import Appointment, OutboxMessage, Patient
from clinic.settings import Settings
from connectors.fake_graph import FakeGraphApi
from connectors.fake_twilio import ACCOUNT_SID, FakeTwilio
from tests.conftest import TEST_NAME, TEST_PHONE
from tests.helpers import free_port, wait_until
from tests.instagram_patient import InstagramPatient
from tests.servers import ROOT, clinic_command, running_stack

SECRET = "texts-app-secret"
TOKEN = "texts-access-token"
TWILIO_TOKEN = "texts-twilio-token"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict]:
    tmp_path = tmp_path_factory.mktemp("texts")
    database_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    port = free_port()
    rasa_url = f"http://127.0.0.1:{port}"
    with FakeGraphApi(access_token=TOKEN) as graph, FakeTwilio(auth_token=TWILIO_TOKEN) as sms:
        env = dict(
            INSTAGRAM_VERIFY_TOKEN="texts-verify",
            INSTAGRAM_APP_SECRET=SECRET,
            INSTAGRAM_ACCESS_TOKEN=TOKEN,
            INSTAGRAM_GRAPH_URL=graph.base_url,
            INSTAGRAM_TYPING_INDICATOR="0",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
            TWILIO_FROM="+12025550100",
            TWILIO_API_URL=sms.base_url,
            TWILIO_MESSAGES_PER_SECOND="20",
            PUBLIC_URL=rasa_url,
        )
        with running_stack(database_url, tmp_path, **env) as stack:
            for command in (["init"], ["seed", "--demo"]):
                assert clinic_command(database_url, command) == 0
            stack.start_action_server()
            stack.start_rasa(
                credentials=ROOT / "credentials.yml",
                port=port,
                api=False,
                ready_path="/webhooks/instagram/",
            )
            settings = Settings(database_url=database_url)
            clinic = Clinic(create_database_engine(database_url), settings)
            yield {"clinic": clinic, "rasa": rasa_url, "sms": sms, "graph": graph}
            clinic.engine.dispose()


def _patient_with_visit(world: dict, instagram_id: str, phone: str) -> int:
    app = ClinicApp(world["clinic"])
    app.grant_consent(instagram_id)
    app.save_details(instagram_id, TEST_NAME, phone)
    offer = app.first_day_with_slots(app.today() + timedelta(days=3), Wish()).offers[0]
    return app.book_for(instagram_id, offer, app.now()).appointment.id


def _texted(world: dict, phone: str, count: int) -> list[str]:
    assert wait_until(lambda: len(world["sms"].texts_to(phone)) >= count, 60)
    return world["sms"].texts_to(phone)


def _sms_url(world: dict) -> str:
    return f"{world['rasa']}/webhooks/twilio/sms"


def test_unsigned_or_wrongly_signed_webhooks_get_403(world):
    params = {"MessageSid": "SM1", "From": TEST_PHONE, "Body": "C"}
    for path in ("sms", "status"):
        url = f"{world['rasa']}/webhooks/twilio/{path}"
        assert requests.post(url, data=params, timeout=30).status_code == 403
        forged = RequestValidator("not-the-token").compute_signature(url, params)
        headers = {"X-Twilio-Signature": forged}
        assert requests.post(url, data=params, headers=headers, timeout=30).status_code == 403
    assert world["sms"].texts_to(TEST_PHONE) == []


def test_c_confirms_the_next_visit_and_staff_see_it(world):
    phone = "+12025550161"
    visit = _patient_with_visit(world, "IG_TEST_TEXT_C", phone)
    assert world["sms"].reply(phone, "C", _sms_url(world)) == 200
    (answer,) = _texted(world, phone, 1)
    assert answer.startswith("Thank you: your appointment on ") and "is confirmed" in answer
    with transaction(world["clinic"].engine) as session:
        assert session.get(Appointment, visit).confirmed_at is not None


def test_x_then_yes_cancels(world):
    phone = "+12025550162"
    visit = _patient_with_visit(world, "IG_TEST_TEXT_X", phone)
    world["sms"].reply(phone, "X", _sms_url(world))
    (question,) = _texted(world, phone, 1)
    assert question.startswith("Cancel your visit on ") and question.endswith("Reply YES to cancel")
    with transaction(world["clinic"].engine) as session:
        assert session.get(Appointment, visit).status == "booked"
    world["sms"].reply(phone, "YES", _sms_url(world))
    cancelled = _texted(world, phone, 2)[1]
    assert cancelled.startswith("Done: your appointment on ")
    with transaction(world["clinic"].engine) as session:
        assert session.get(Appointment, visit).status == "cancelled"


def test_an_unknown_number_gets_the_fallback_and_touches_nothing(world):
    phone = "+12025550163"
    visit = _patient_with_visit(world, "IG_TEST_TEXT_KNOWN", "+12025550164")
    world["sms"].reply(phone, "X", _sms_url(world))
    (fallback,) = _texted(world, phone, 1)
    assert fallback == (
        "This number only sends Demo Clinic's reminders. For anything else, call "
        "+1 202 555 0100 or write to us on Instagram: @democlinic."
    )
    with transaction(world["clinic"].engine) as session:
        stored = session.get(Appointment, visit)
    assert (stored.status, stored.confirmed_at) == ("booked", None)


def test_stop_marks_the_patient_as_refusing_texts(world):
    phone = "+12025550165"
    _patient_with_visit(world, "IG_TEST_TEXT_STOP", phone)
    assert world["sms"].reply(phone, "STOP", _sms_url(world)) == 200

    def refusing() -> bool:
        with transaction(world["clinic"].engine) as session:
            patient = session.scalars(select(Patient).where(Patient.phone == phone)).one()
            return patient.takes_texts == 0

    assert wait_until(refusing, 30)
    assert world["sms"].texts_to(phone) == []  # Twilio itself answers STOP


def test_delivery_reports_are_recorded(world):
    phone = "+12025550166"
    _patient_with_visit(world, "IG_TEST_TEXT_REPORT", phone)
    world["sms"].reply(phone, "C", _sms_url(world))
    _texted(world, phone, 1)

    def delivered() -> bool:
        with transaction(world["clinic"].engine) as session:
            rows = session.scalars(
                select(OutboxMessage.delivery).where(OutboxMessage.recipient_id == phone)
            ).all()
        return rows == ["delivered"]

    assert wait_until(delivered, 30)


def test_the_confirmation_names_the_text_reminder_and_no_texts_is_kept(world):
    """Booked five days ahead: the reminder is due when Instagram's window is long closed,
    so it will come by text; after "no texts" the next confirmation asks to save it."""
    patient = InstagramPatient(world["rasa"], world["graph"], "IG_TEST_TEXT_BOOK", SECRET)
    app = ClinicApp(world["clinic"])
    day = app.first_day_with_slots(app.today() + timedelta(days=5), Wish()).day
    (consent,) = patient.say("I'd like to book an appointment")
    patient.tap(consent, 1)
    patient.say(TEST_NAME)
    (ask_day,) = patient.say("+1 202 555 0167")
    assert ask_day["text"].startswith("Which day works for you?")
    (slots,) = patient.say(day.strftime("%B %-d"))
    assert slots["text"].startswith("Here are the available times"), slots
    (confirmation,) = patient.tap(slots, 1)
    assert confirmation["text"].endswith("We'll text you a reminder the day before.")
    (refused,) = patient.say("no texts please")
    assert refused["text"].startswith("OK, no text messages")
    with transaction(world["clinic"].engine) as session:
        stored = session.scalars(select(Patient).where(Patient.phone == "+12025550167")).one()
    assert stored.takes_texts == 0
    (welcome,) = patient.say("actually you can text me the reminders")
    assert welcome["text"] == "Sure: we'll text your reminders to the number you gave us."
    with transaction(world["clinic"].engine) as session:
        assert session.get(Patient, stored.id).takes_texts == 1
