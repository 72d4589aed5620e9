"""A clinic sets itself up in the console, in a real Chromium, from an empty database to a
patient's booking over Instagram: no restart of any server, no retraining. Then each setup
form's bad input, refused with its reason and nothing written."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import date, time, timedelta

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.models import Doctor, TextOverride, VisitType
from clinic.settings import Settings
from clinic.templates import format_day
from connectors.fake_graph import FakeGraphApi
from tests.browser import Browser
from tests.conftest import TEST_NAME, TEST_PHONE
from tests.instagram_patient import InstagramPatient
from tests.servers import BIN, ROOT, clinic_command, http_get, running_stack

SECRET = "setup-app-secret"
TOKEN = "setup-access-token"
PASSWORD = "correct horse battery"
# The confirmation of a visit booked days ahead, which no Instagram reminder can reach (the
# patient books the last day offered, and Twilio is not configured here).
CONFIRMATION = "Booked for {when}{visit_with_doctor}. Keep this message. See you at Riverside!"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    tmp_path = tmp_path_factory.mktemp("setup")
    database_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    with FakeGraphApi(access_token=TOKEN) as graph:
        env = dict(
            INSTAGRAM_VERIFY_TOKEN="setup-verify",
            INSTAGRAM_APP_SECRET=SECRET,
            INSTAGRAM_ACCESS_TOKEN=TOKEN,
            INSTAGRAM_GRAPH_URL=graph.base_url,
            INSTAGRAM_TYPING_INDICATOR="0",
        )
        with running_stack(database_url, tmp_path, **env) as stack:
            assert clinic_command(database_url, ["init"]) == 0  # empty: no doctor, no facts
            console_url = stack.start_console()
            stack.start_action_server()
            rasa_url = stack.start_rasa(
                credentials=ROOT / "credentials.yml", api=False, ready_path="/webhooks/instagram/"
            )
            clinic = Clinic(
                create_database_engine(database_url), Settings(database_url=database_url)
            )
            browser = Browser(console_url)
            link = subprocess.run(  # noqa: S603 - our own command
                [str(BIN / "python"), "-m", "clinic", "staff", "add", "owner@clinic.example",
                 "--role", "admin", "--if-none"],
                cwd=ROOT, env={**stack.env, "CONSOLE_URL": console_url}, capture_output=True,
                text=True, check=True,
            ).stdout.strip().splitlines()[-1]  # fmt: skip
            browser.open(link)
            browser.fill("New password", PASSWORD)
            browser.fill("The same password again", PASSWORD)
            browser.click("Save and sign in")
            browser.wait_for("Set up your clinic")
            yield {"browser": browser, "graph": graph, "rasa": rasa_url, "clinic": clinic}
            browser.quit()
            clinic.engine.dispose()


def test_from_an_empty_database_to_a_booking_without_a_restart(site):
    browser, clinic = site["browser"], site["clinic"]
    browser.shot("setup-checklist")
    # The clinic's facts.
    browser.click("The clinic's address and phone")
    browser.fill("Clinic name", "Riverside Clinic")
    browser.fill("Address", "12 River Road, Springfield")
    browser.fill("Phone", "+1 202 555 0110")
    browser.click("Save")
    browser.wait_for("Saved. The bot answers with these from its next message.")
    # Two visit types.
    browser.click("Visit types")
    for name, minutes, price in (("Consultation", "30", "80"), ("Vaccination", "15", "25")):
        browser.fill("Name", name)
        browser.fill("Length (minutes)", minutes)
        browser.fill("Price", price)
        browser.click("Add the visit type")
        browser.wait_for(f"Saved {name}.")
    # A doctor with a lunch break, offering both, and a day off.
    browser.click("Doctors")
    browser.click("Add a doctor")
    browser.fill("Name", "Dr. Rivera")
    browser.fill("Slot length (minutes)", "15")
    browser.check("Vaccination")  # Consultation, the first, is ticked already
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        browser.fill(day, "9:00-12:00, 13:00-17:00")
    browser.shot("setup-doctor")
    browser.click("Add the doctor")
    browser.wait_for("Saved Dr. Rivera.")
    day_off = _next_weekday(clinic)
    _set_date(browser, "Date", day_off)
    browser.click("Add the override")
    browser.wait_for("a day off")
    # Dr. Rivera's calendar link, shown once, is served by the rasa server.
    browser.click("New calendar link")
    browser.wait_for("It is shown only now, and the old link stops working.")
    link = browser.driver.find_element(By.CSS_SELECTOR, "input[aria-label='Calendar link']")
    path = link.get_attribute("value").split("/calendar/", 1)[1]
    assert http_get(f"{site['rasa']}/calendar/{path}")[0] == 200
    # The confirmation in the clinic's own words, previewed first.
    browser.click("The bot's wording")
    browser.click("confirmation save this")
    browser.fill("Text", CONFIRMATION)
    browser.click("Preview")
    browser.wait_for("Booked for Feb 5, 2026 at 2:00 PM: Consultation with Dr. Smith.")
    browser.click("Save")
    browser.wait_for("Saved. The bot says it this way from its next message.")
    # The connection's check, against the fake Graph API.
    browser.click("Instagram")
    browser.click("Check the connection")
    browser.wait_for("Connected as @democlinic.")

    # A patient on Instagram, with no server restarted.
    patient = InstagramPatient(site["rasa"], site["graph"], "IG_TEST_SETUP", SECRET)
    (where,) = patient.say("what is your address?")
    assert where["text"] == "We're at 12 River Road, Springfield."
    (consent,) = patient.say("I'd like to book a vaccination")
    patient.tap(consent, 1)
    patient.say(TEST_NAME)
    (ask_day,) = patient.say(TEST_PHONE)
    assert ask_day["text"].startswith("Which day works for you?")
    offered_days = [q["title"] for q in ask_day["quick_replies"]]
    assert _title(day_off) not in offered_days  # the override's day off
    assert not [t for t in offered_days if t.startswith(("Sat", "Sun"))]
    (slot_list,) = patient.tap(ask_day, len(offered_days))  # days ahead, whatever today is
    times = re.findall(r"^\d+\. (\d{1,2}:\d{2} [AP]M)$", slot_list["text"], re.MULTILINE)
    clock = [_wall(t) for t in times]
    assert clock and all(time(9) <= t < time(12) or time(13) <= t < time(17) for t in clock)
    assert all(t.minute % 15 == 0 for t in clock)  # the 15-minute grid
    (confirmation,) = patient.tap(slot_list, 1)
    assert confirmation["text"].startswith("Booked for ")
    assert confirmation["text"].endswith("See you at Riverside!")
    browser.open("/")
    browser.wait_for("Dr. Rivera")


def test_overlapping_hours_are_refused_and_nothing_is_written(site):
    browser, clinic = site["browser"], site["clinic"]
    before = _count(clinic, Doctor)
    browser.open("/setup/doctors/new")
    browser.fill("Name", "Dr. Overlap")
    browser.fill("Monday", "9:00-13:00, 12:00-17:00")
    browser.click("Add the doctor")
    browser.wait_for("two ranges overlap")
    assert browser.field("Monday").get_attribute("value") == "9:00-13:00, 12:00-17:00"
    assert _count(clinic, Doctor) == before
    browser.shot("setup-bad-hours")


def test_a_slot_length_of_zero_is_refused_and_nothing_is_written(site):
    browser, clinic = site["browser"], site["clinic"]
    before = _count(clinic, Doctor)
    browser.open("/setup/doctors/new")
    browser.fill("Name", "Dr. Zero")
    browser.fill("Slot length (minutes)", "0")
    browser.fill("Monday", "9:00-12:00")
    browser.click("Add the doctor")
    browser.wait_for("The slot length must be 5 to 480 minutes.")
    assert _count(clinic, Doctor) == before


def test_a_price_that_is_not_a_number_is_refused_and_nothing_is_written(site):
    browser, clinic = site["browser"], site["clinic"]
    before = _count(clinic, VisitType)
    browser.open("/setup/visits")
    browser.fill("Name", "Check-up")
    browser.fill("Length (minutes)", "20")
    browser.fill("Price", "eighty")
    browser.click("Add the visit type")
    browser.wait_for("A price must be a number, like 80 or 49.50.")
    assert browser.field("Name").get_attribute("value") == "Check-up"
    assert _count(clinic, VisitType) == before


def test_a_text_with_an_unknown_placeholder_is_refused_and_nothing_is_written(site):
    browser, clinic = site["browser"], site["clinic"]
    browser.open("/setup/texts/reminder")
    browser.fill("Text", "See you {when} at {clinic_name}!")
    browser.click("Save")
    browser.wait_for("Not saved: it names {clinic_name}, which this text can't fill")
    with transaction(clinic.engine) as session:
        assert session.get(TextOverride, "reminder") is None
    browser.shot("setup-bad-text")


def _count(clinic: Clinic, model) -> int:  # noqa: ANN001
    with transaction(clinic.engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def _next_weekday(clinic: Clinic) -> date:
    day = clinic.today() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _title(day: date) -> str:
    return format_day(day)


def _wall(text: str) -> time:
    clock, suffix = text.split()
    hour, minute = (int(x) for x in clock.split(":"))
    return time(hour % 12 + (12 if suffix == "PM" else 0), minute)


def _set_date(browser: Browser, label: str, day: date) -> None:
    field = browser.field(label)
    browser.driver.execute_script("arguments[0].value = arguments[1]", field, day.isoformat())
