"""The staff console in a real Chromium, against a real console process, a real rasa server
(the Instagram channel, whose outbox sends the console's notices), a real action server, a
fake Graph API and one SQLite database. Each flow ends with a screenshot
(results/console/, or CONSOLE_SCREENSHOTS)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, text

from clinic.application import ClinicApp, Wish
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.front_desk import Caller, add_block, book_caller
from clinic.models import Appointment, OutboxMessage, Patient
from clinic.patients import note_message
from clinic.settings import Settings
from clinic.templates import format_time
from connectors.fake_graph import FakeGraphApi
from tests.browser import Browser
from tests.conftest import TEST_NAME
from tests.helpers import wait_until
from tests.instagram_patient import InstagramPatient
from tests.servers import BIN, ROOT, Stack, clinic_command, running_stack

SECRET = "console-app-secret"
TOKEN = "console-access-token"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    console_url: str
    rasa_url: str
    graph: FakeGraphApi
    database_url: str
    stack: Stack
    clinic: Clinic

    @property
    def app(self) -> ClinicApp:
        return ClinicApp(self.clinic)

    def cli(self, *argv: str) -> str:
        env = {**self.stack.env, "CONSOLE_URL": self.console_url}
        done = subprocess.run(  # noqa: S603 - our own command
            [str(BIN / "python"), "-m", "clinic", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def link_for(self, email: str, role: str) -> str:
        return self.cli("staff", "add", email, "--role", role).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("console")
    database_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    tracker_url = f"sqlite:///{tmp_path / 'conversations.db'}"
    with FakeGraphApi(access_token=TOKEN) as graph:
        env = dict(
            INSTAGRAM_VERIFY_TOKEN="console-verify",
            INSTAGRAM_APP_SECRET=SECRET,
            INSTAGRAM_ACCESS_TOKEN=TOKEN,
            INSTAGRAM_GRAPH_URL=graph.base_url,
            INSTAGRAM_TYPING_INDICATOR="0",
            TRACKER_STORE_URL=tracker_url,
        )
        with running_stack(database_url, tmp_path, **env) as stack:
            for command in (["init"], ["seed", "--demo", "--doctors", "2"]):
                assert clinic_command(database_url, command) == 0
            console_url = stack.start_console()
            stack.start_action_server()
            rasa_url = stack.start_rasa(
                credentials=ROOT / "credentials.yml", api=False, ready_path="/webhooks/instagram/"
            )
            settings = Settings(database_url=database_url, instagram_access_token=TOKEN)
            clinic = Clinic(create_database_engine(database_url), settings)
            yield Site(console_url, rasa_url, graph, database_url, stack, clinic)
            clinic.engine.dispose()


@pytest.fixture(scope="module")
def admin(site) -> Iterator[Browser]:
    """A browser signed in as an admin, who set their password through their link."""
    browser = Browser(site.console_url)
    browser.open(site.link_for("admin@clinic.example", "admin"))
    browser.fill("New password", PASSWORD)
    browser.fill("The same password again", PASSWORD)
    browser.click("Save and sign in")
    browser.wait_for("Your password is set. Welcome!")
    yield browser
    browser.quit()


def test_sign_in_lock_out_and_sign_out(site):
    browser = Browser(site.console_url)
    try:
        browser.open("/week")
        assert browser.path.startswith("/sign-in")
        browser.open(site.link_for("desk@clinic.example", "desk"))
        browser.fill("New password", PASSWORD)
        browser.fill("The same password again", "something else entirely")
        browser.click("Save and sign in")
        browser.wait_for("The two passwords differ.")
        browser.fill("New password", PASSWORD)
        browser.fill("The same password again", PASSWORD)
        browser.click("Save and sign in")
        browser.wait_for("Your password is set. Welcome!")
        assert not browser.has("Staff")  # the desk role does not manage staff
        browser.click("Sign out")
        browser.wait_for("You have signed out.")
        browser.open("/")
        assert browser.path.startswith("/sign-in")
        for _ in range(4):
            _sign_in(browser, "desk@clinic.example", "not my password")
            browser.wait_for("That e-mail and password don't match an account.")
        _sign_in(browser, "desk@clinic.example", "not my password")
        browser.wait_for("this account is locked until")
        _sign_in(browser, "desk@clinic.example", PASSWORD)
        browser.wait_for("this account is locked until")
        browser.shot("sign-in-locked")
        # Still locked for others' eyes too: an admin's fresh link unlocks it.
        site.cli("staff", "link", "desk@clinic.example")
    finally:
        browser.quit()


def test_a_session_ends_after_its_idle_time(site):
    """A console whose sessions last 3 idle seconds: the browser's cookie, left alone, is
    refused once that time has passed (probed with a copy, so the probe keeps it idle)."""
    quick = site.stack.start_console(CONSOLE_IDLE_MINUTES="0.05")
    browser = Browser(quick)
    try:
        browser.open(site.link_for("quick@clinic.example", "desk").replace(site.console_url, quick))
        browser.fill("New password", PASSWORD)
        browser.fill("The same password again", PASSWORD)
        browser.click("Save and sign in")
        browser.wait_for("Your password is set. Welcome!")
        cookie = browser.driver.get_cookie("clinic_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        def refused() -> bool:
            probe = requests.get(
                f"{quick}/",
                cookies={"clinic_console": cookie["value"]},
                allow_redirects=False,
                timeout=10,
            )
            return probe.status_code == 303

        assert wait_until(refused, timeout=60, interval=0.5)
        browser.open("/")
        assert browser.path.startswith("/sign-in")
    finally:
        browser.quit()
        site.stack.process(f"console-{quick.rsplit(':', 1)[1]}").stop()


def test_the_week_and_the_day(site, admin):
    offer = _next_offer(site, doctor_id=1)
    patient = _instagram_patient(site, "IG_TEST_WEEK", "+12025550150", window_open=True)
    booked = site.app.book_for(patient, offer, site.app.now())
    # A week as the front desk knows it: callers, a walk-in, a meeting.
    later = site.app.slots_on(offer.start.date() + timedelta(days=1), Wish(doctor_id=1))
    for start, name, phone, source in (
        (later[1].start, "Caller Weekly", "202 555 0160", "phone"),
        (later[4].start, "Walker Weekly", "202 555 0161", "walk_in"),
    ):
        book_caller(site.clinic, site.app.profile, 1, 1, None, start, Caller(name, phone, source))
    meeting = later[-1].start
    add_block(
        site.clinic, site.app.templates, 1, 1, meeting, meeting + timedelta(hours=1),
        "Team meeting", cancel_hits=False,
    )  # fmt: skip
    admin.open(f"/week?doctor=1&week={offer.start.date().isoformat()}")
    admin.wait_for(TEST_NAME)
    assert "(202) 555-0150" in admin.text() and "Consultation" in admin.text()
    assert "Consultation · Instagram" in admin.text()
    assert "Walk-in" in admin.text() and "Blocked: Team meeting" in admin.text()
    admin.shot("week")
    week = admin.path
    admin.click("Next week →")
    admin.wait_for("Week of")
    assert admin.path != week
    admin.click("← Previous week")
    admin.wait_for(TEST_NAME)
    admin.click(offer.start.strftime("%a ") + str(offer.start.day))  # the day's column
    admin.wait_for("Dr. Smith")
    assert "Dr. Demo" in admin.text() and TEST_NAME in admin.text()
    assert booked.appointment.id


def test_booking_a_caller(site, admin):
    admin.open("/book")
    admin.wait_for("1. Doctor, visit and day")
    admin.select("Doctor", "Dr. Smith")  # htmx fetches Dr. Smith's visits and times
    admin.wait_for("Procedure (60 min")
    admin.select("Visit", "Procedure (60 min, from $150)")
    day = _next_offer(site, doctor_id=2, visit="procedure").start.date()
    admin.open(f"/book?doctor=2&visit=procedure&day={day.isoformat()}")
    admin.wait_for("2. A free time on")
    choices = _choices(admin)
    first, second = choices[0], choices[-1]  # an hour's visit: far enough apart
    admin.check(first)
    admin.fill("Patient's full name", "Caller Test")
    admin.fill("Phone number", "202 555 0151")
    admin.check("They agreed")
    admin.shot("book")
    admin.click("Book")
    admin.wait_for("Booked Caller Test.")
    assert "Procedure (60 min)" in admin.text() and "Phone" in admin.text()
    # The same caller again: the phone is on file, so no second patient.
    admin.open(f"/book?doctor=2&visit=procedure&day={day.isoformat()}")
    admin.check(second)
    admin.fill("Patient's full name", "Caller Test")
    admin.fill("Phone number", "+1 202 555 0151")
    admin.check("Walk-in")
    admin.check("They agreed")
    admin.click("Book")
    admin.wait_for("(already a patient with this phone number)")
    with transaction(site.clinic.engine) as session:
        count = session.scalar(
            select(func.count()).select_from(Patient).where(Patient.phone == "+12025550151")
        )
    assert count == 1


def test_a_slot_taken_meanwhile_says_so_with_the_fresh_times(site, admin):
    offer = _next_offer(site, doctor_id=1)
    day = offer.start.date()
    admin.open(f"/book?doctor=1&day={day.isoformat()}")
    admin.check(format_time(offer.start, site.clinic.settings.zone))
    admin.fill("Patient's full name", "Late Caller")
    admin.fill("Phone number", "202 555 0152")
    admin.check("They agreed")
    taker = _instagram_patient(site, "IG_TEST_TAKER", "+12025550153", window_open=True)
    site.app.book_for(taker, offer, site.app.now())  # someone on Instagram was quicker
    admin.click("Book")
    admin.wait_for("That slot was just taken. Here are available slots for")
    shown = _choices(admin)
    assert format_time(offer.start, site.clinic.settings.zone) not in shown and shown
    assert "Late Caller" in admin.driver.page_source  # what was typed is kept


def test_cancelling_and_moving_tell_the_patient_by_dm_inside_the_window(site, admin):
    patient = _instagram_patient(site, "IG_TEST_DM", "+12025550154", window_open=True)
    booked = site.app.book_for(patient, _next_offer(site, doctor_id=1), site.app.now())
    admin.open(f"/appointments/{booked.appointment.id}")
    admin.click("Move…")
    admin.wait_for("Free times on")
    new_time = _choices(admin)[0]
    admin.check(new_time)
    admin.click("Move the visit")
    admin.wait_for("The patient is being told by Instagram message.")
    assert wait_until(lambda: len(_dms(site, patient)) == 1, 60)
    assert _dms(site, patient)[0].startswith("The clinic has moved your appointment to ")
    assert new_time in _dms(site, patient)[0]
    admin.click("Cancel visit…")
    admin.click("Cancel the visit")
    admin.wait_for("The patient is being told by Instagram message.")
    assert wait_until(lambda: len(_dms(site, patient)) == 2, 60)
    assert _dms(site, patient)[1].startswith("The clinic has had to cancel your appointment")
    admin.open(admin.path)
    admin.wait_for("Told by Instagram message.")
    admin.shot("cancelled-with-dm")


def test_outside_the_window_the_console_says_to_call(site, admin):
    patient = _instagram_patient(site, "IG_TEST_CALL", "+12025550155", window_open=False)
    booked = site.app.book_for(patient, _next_offer(site, doctor_id=1), site.app.now())
    admin.open(f"/appointments/{booked.appointment.id}/cancel")
    admin.click("Cancel the visit")
    admin.wait_for("please call them at (202) 555-0155")
    admin.open("/")
    admin.wait_for("Patients to call")
    assert "(202) 555-0155" in admin.text()
    admin.click("Called")
    admin.wait_for("Marked as called.")
    assert "(202) 555-0155" not in admin.text()
    assert _dms(site, patient) == []


def test_a_block_shows_the_visits_it_hits_and_cancels_them_with_notice(site, admin):
    day = _free_day(site, doctor_id=2, after=14)
    starts = site.app.slots_on(day, Wish(doctor_id=2))
    texted = _instagram_patient(site, "IG_TEST_BLOCK_DM", "+12025550156", window_open=True)
    called = _instagram_patient(site, "IG_TEST_BLOCK_CALL", "+12025550157", window_open=False)
    site.app.book_for(texted, starts[0], site.app.now())
    site.app.book_for(called, starts[1], site.app.now())
    admin.open("/blocks/new")
    admin.select("Who", "Dr. Smith")
    admin.fill("Reason", "Sick")
    _set_date(admin, "From (day)", day)
    admin.click("Check and block")
    admin.wait_for("This block falls on 2 visits")
    assert "(202) 555-0156" in admin.text() and "(202) 555-0157" in admin.text()
    admin.shot("block-consequences")
    admin.click("Block and cancel these 2 visits, telling the patients")
    admin.wait_for("2 visit(s) cancelled")
    assert "1 must be called" in admin.text()
    assert wait_until(lambda: len(_dms(site, texted)) == 1, 60)
    assert _dms(site, called) == []
    with transaction(site.clinic.engine) as session:
        active = session.scalar(
            select(func.count())
            .select_from(Appointment)
            .join(Patient)
            .where(Patient.instagram_id.like("IG_TEST_BLOCK%"), Appointment.status == "booked")
        )
    assert active == 0


def test_the_handoff_list_and_giving_back(site, admin):
    patient = InstagramPatient(site.rasa_url, site.graph, "IG_TEST_HANDOFF", SECRET)
    (handed,) = patient.say("can I talk to a person please")
    assert handed["text"].startswith("I've asked our team to take over.")
    admin.open("/handoffs")
    admin.wait_for("Waiting for a person")
    assert "Open Instagram inbox ↗" in admin.text()
    admin.shot("handoffs")
    admin.click("Give back to the bot")
    admin.wait_for("Given back: the bot answers the patient's next message.")
    # The inbox still holds the thread, so Meta sends the patient's next words on standby:
    # the bot takes the conversation back and answers.
    (answer,) = patient.say("hi again", standby=True)
    assert answer["text"]
    assert any("take_thread_control" in r.path for r in site.graph.sent)
    admin.open("/handoffs")
    admin.wait_for("No one is waiting for a person.")


def test_retrying_a_failed_reply(site, admin):
    patient = _instagram_patient(site, "IG_TEST_RETRY", "+12025550158", window_open=True)
    with transaction(site.clinic.engine) as session:
        session.add(
            OutboxMessage(
                recipient_id=patient,
                origin="mid.test-failed-reply",
                seq=0,
                body={"text": "Your appointment is confirmed for a time."},
                status="failed",
                attempts=3,
                error="gave up: unavailable",
                created_at=site.app.now() - timedelta(minutes=5),
            )
        )
    admin.open("/replies")
    admin.wait_for("Your appointment is confirmed for a time.")
    assert "Instagram could not be reached for several minutes" in admin.text()
    admin.click("Retry")
    admin.wait_for("The reply will be sent again in a moment.")
    assert wait_until(
        lambda: _dms(site, patient) == ["Your appointment is confirmed for a time."], 60
    )
    admin.open("/replies")
    admin.wait_for("No failed replies")


def test_patient_search_and_erasure(site, admin):
    patient = InstagramPatient(site.rasa_url, site.graph, "IG_TEST_ERASE", SECRET)
    patient.say("hi")  # a conversation in the tracker store
    _instagram_patient(site, "IG_TEST_ERASE", "+12025550159", window_open=True, name="Erase Me")
    admin.open("/patients")
    admin.fill("Name or phone number", "555 0159")
    admin.click("Search")
    admin.wait_for("Erase Me")
    admin.click("Erase Me")
    admin.wait_for("Erase this patient")
    admin.click("Erase…")
    admin.click("Erase the patient")
    admin.wait_for("The patient's details and conversation are erased.")
    with transaction(site.clinic.engine) as session:
        assert session.scalar(select(Patient).where(Patient.phone == "+12025550159")) is None
    tracker = create_database_engine(site.stack.env["TRACKER_STORE_URL"])
    with tracker.connect() as connection:
        events = connection.execute(
            text("SELECT count(*) FROM events WHERE sender_id = 'IG_TEST_ERASE'")
        ).scalar()
    tracker.dispose()
    assert events == 0


def test_a_console_booking_and_an_instagram_booking_race_for_one_slot(site):
    """Exactly one of them gets the slot; the other is told and shown fresh times."""
    desk = _desk_session(site)
    for round_, letters in enumerate(("Alpha", "Beta")):
        sender = f"IG_TEST_RACE_{round_}"
        patient = InstagramPatient(site.rasa_url, site.graph, sender, SECRET)
        (consent,) = patient.say("book an appointment with dr demo")
        patient.tap(consent, 1)
        patient.say(f"Race Patient {letters}")
        (ask_day,) = patient.say(f"+1202555016{round_}")
        if ask_day["text"] == "What kind of visit do you need?":
            (ask_day,) = patient.tap(ask_day, 1)
        assert ask_day["text"].startswith("Which day works for you?"), ask_day
        # the last day offered: not today, whose last free slot may be the one raced for
        (slot_list,) = patient.tap(ask_day, len(ask_day["quick_replies"]))
        choice = slot_list["quick_replies"][0]
        start = choice["payload"].rsplit("@", 1)[0]
        form = desk.get(f"{site.console_url}/book", params={"doctor": 1, "start": start})
        fields = {
            "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)[1],
            "doctor": "1",
            "visit": "consultation",
            "day": start[:10],
            "start": start,
            "name": f"Desk Caller {letters}",
            "phone": f"+1202555017{round_}",
            "source": "phone",
            "consent": "y",
        }
        desk_page, (reply,) = _at_once(
            lambda f=fields: desk.post(f"{site.console_url}/book", data=f, timeout=60),
            lambda p=patient, s=slot_list: p.tap(s, 1),
        )
        with transaction(site.clinic.engine) as session:
            holders = session.scalars(
                select(Patient.name)
                .join(Appointment, Appointment.patient_id == Patient.id)
                .where(Appointment.start_at == _utc(start), Appointment.status == "booked")
            ).all()
        assert len(holders) == 1, holders
        if holders[0] == f"Desk Caller {letters}":
            assert reply["text"].startswith("That slot was just taken. Here are available slots")
            assert reply.get("quick_replies")
        else:
            assert desk_page.status_code == 400
            assert "That slot was just taken. Here are available slots for" in desk_page.text
            assert 'name="start"' in desk_page.text  # fresh times to choose from
            assert reply["text"].startswith("Your appointment is confirmed")


def test_the_console_logs_no_name_phone_or_instagram_id(site):
    logs = "\n".join(p.log() for p in site.stack.processes if p.name.startswith("console"))
    assert "GET /week 200" in logs  # the flows above did run through it
    for secret in (TEST_NAME, "Caller Test", "Erase Me", "IG_TEST_", "555015", "555-015"):
        assert secret not in logs


# --- helpers ----------------------------------------------------------------------


def _at_once(*calls):  # noqa: ANN002, ANN202
    """Runs the calls on threads released together; their results, in order."""
    go = threading.Barrier(len(calls))
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(lambda c=c: (go.wait(), c())[1]) for c in calls]
        return [f.result() for f in futures]


def _sign_in(browser: Browser, email: str, password: str) -> None:
    """Submits the sign-in form (the caller waits for the answer it expects)."""
    browser.open("/sign-in")
    browser.fill("E-mail", email)
    browser.fill("Password", password)
    browser.click("Sign in")


def _desk_session(site: Site) -> requests.Session:
    """Signed in over plain HTTP, for the race (a browser can't be timed that closely)."""
    link = site.link_for("racer@clinic.example", "desk")
    session = requests.Session()
    page = session.get(link, timeout=30)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)[1]
    form = {"csrf_token": token, "password": PASSWORD, "repeat": PASSWORD}
    done = session.post(link, data=form, timeout=30)
    assert done.status_code == 200 and "Welcome" in done.text
    return session


def _instagram_patient(
    site: Site, sender: str, phone: str, window_open: bool, name: str = TEST_NAME
) -> str:
    """A patient on file through Instagram; their last message now, or two days ago."""
    site.app.grant_consent(sender)
    site.app.save_details(sender, name, phone)
    last = site.app.now() - (timedelta(minutes=5) if window_open else timedelta(days=2))
    note_message(site.clinic, sender, last)
    return sender


def _next_offer(site: Site, doctor_id: int, visit: str | None = None):  # noqa: ANN202
    found = site.app.first_day_with_slots(
        site.app.today() + timedelta(days=1), Wish(visit=visit, doctor_id=doctor_id)
    )
    return found.offers[0]


def _free_day(site: Site, doctor_id: int, after: int):  # noqa: ANN202
    return site.app.first_day_with_slots(
        site.app.today() + timedelta(days=after), Wish(doctor_id=doctor_id)
    ).day


def _choices(browser: Browser) -> list[str]:
    return [
        label.text.strip()
        for label in browser.driver.find_elements("css selector", "label.time-choice")
    ]


def _set_date(browser: Browser, label: str, day) -> None:  # noqa: ANN001
    field = browser.field(label)
    browser.driver.execute_script("arguments[0].value = arguments[1]", field, day.isoformat())


def _dms(site: Site, sender: str) -> list[str]:
    return [
        b["message"]["text"]
        for b in site.graph.messages_to(sender)
        if "message" in b and "text" in b["message"]
    ]


def _utc(iso: str):  # noqa: ANN202
    from datetime import datetime, timezone

    return datetime.fromisoformat(iso).astimezone(timezone.utc)


def test_screenshots_are_where_the_readme_shows_them():
    readme = (ROOT / "README.md").read_text()
    for name in ("week", "book", "handoffs"):
        assert f"docs/console/{name}.png" in readme
        assert Path(ROOT / "docs" / "console" / f"{name}.png").exists()
