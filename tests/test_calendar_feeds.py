"""Each doctor's calendar feed over real HTTP, from the rasa server that `make serve` runs:
the feed a calendar app subscribes to, its secret link and its replacement, and
conditional requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from icalendar import Calendar

from clinic.context import Clinic
from clinic.db import create_database_engine
from clinic.feed_links import feed_url, rotate_feed
from clinic.migrate import upgrade_to_latest
from clinic.settings import load_settings
from tests.factories import add_appointment, add_doctor, add_patient
from tests.helpers import wait_until
from tests.servers import ROOT, Stack, http_get, running_stack

FEEDS_ONLY = dict(
    INSTAGRAM_VERIFY_TOKEN="feed-verify",
    INSTAGRAM_APP_SECRET="feed-secret",
    INSTAGRAM_ACCESS_TOKEN="feed-token",
    INSTAGRAM_GRAPH_URL="http://127.0.0.1:9/v21.0",
    ACTION_SERVER_URL="http://127.0.0.1:9/webhook",  # no turns here: feeds only
)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Clinic, str, Stack]]:
    """The rasa server of make serve in front of a clinic; one doctor (with a booking) is
    there before the server starts, the tests add their own."""
    tmp_path = tmp_path_factory.mktemp("feeds")
    database_url = f"sqlite:///{tmp_path / 'feeds.db'}"
    with running_stack(database_url, tmp_path, **FEEDS_ONLY) as servers:
        upgrade_to_latest(database_url)
        clinic = Clinic(create_database_engine(database_url), load_settings(servers.env))
        book(clinic, add_doctor(clinic), add_patient(clinic).id, days=2)
        rasa_url = servers.start_rasa(
            credentials=ROOT / "credentials.yml", api=False, ready_path="/webhooks/instagram/"
        )
        settings = load_settings({**servers.env, "PUBLIC_URL": rasa_url})
        served_clinic = Clinic(clinic.engine, settings)
        yield served_clinic, rasa_url, servers
        clinic.engine.dispose()


def book(clinic: Clinic, doctor_id: int, patient_id: int | None, days: int) -> None:
    add_appointment(
        clinic, doctor_id, patient_id, (clinic.now() + timedelta(days=days)).replace(microsecond=0)
    )


def link(clinic: Clinic, doctor_id: int) -> str:
    """A new link for the doctor, as `doctors --rotate-feed` and the console make it."""
    return feed_url(clinic.settings, doctor_id, rotate_feed(clinic, doctor_id))


def test_a_doctor_subscribes_to_a_feed_that_names_patients_by_initial_only(served):
    clinic, _, _ = served
    doctor = add_doctor(clinic)
    book(clinic, doctor, add_patient(clinic).id, days=2)
    book(clinic, doctor, None, days=3)  # a patient who erased their data

    status, headers, body = http_get(link(clinic, doctor))

    assert status == 200 and headers["Content-Type"].startswith("text/calendar")
    assert headers["Cache-Control"] == "no-store"
    events = Calendar.from_ical(body).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Appointment (P.)", "Appointment"]
    assert b"PATIENT_TEST" not in body and b"555" not in body


def test_a_wrong_token_or_an_unknown_doctor_gets_404(served):
    clinic, rasa_url, _ = served
    doctor = add_doctor(clinic)
    good = link(clinic, doctor)
    assert http_get(good.replace("token=", "token=0"))[0] == 404
    assert http_get(good.split("?")[0])[0] == 404
    other = good.replace(f"/{doctor}.ics", f"/{doctor + 1}.ics")  # the token of another
    assert http_get(other)[0] == 404
    assert http_get(f"{rasa_url}/calendar/{doctor}.txt?token=x")[0] == 404
    assert http_get(good)[0] == 200


def test_a_doctor_without_a_link_has_no_feed(served):
    clinic, rasa_url, _ = served
    doctor = add_doctor(clinic)
    book(clinic, doctor, add_patient(clinic).id, days=2)
    for token in ("", "x", "None"):
        status, headers, _ = http_get(f"{rasa_url}/calendar/{doctor}.ics?token={token}")
        assert status == 404 and headers["Cache-Control"] == "no-store"


def test_a_new_link_revokes_the_old_one(served):
    clinic, _, servers = served
    doctor = add_doctor(clinic)
    other = add_doctor(clinic)
    book(clinic, doctor, add_patient(clinic).id, days=2)
    old, kept = link(clinic, doctor), link(clinic, other)
    assert http_get(old)[0] == 200

    new = link(clinic, doctor)

    assert new != old
    status, headers, _ = http_get(old)
    assert status == 404 and headers["Cache-Control"] == "no-store"
    status, headers, body = http_get(new)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert "private" not in headers["Cache-Control"] and "max-age" not in headers["Cache-Control"]
    assert len(Calendar.from_ical(body).walk("VEVENT")) == 1
    assert http_get(kept)[0] == 200  # another doctor's link is untouched
    tokens = [url.split("token=")[1] for url in (old, new, kept)]
    assert not [token for token in tokens if token in servers.logs()]


def test_a_conditional_request_gets_304_until_the_feed_changes(served):
    clinic, _, _ = served
    doctor = add_doctor(clinic)
    book(clinic, doctor, add_patient(clinic).id, days=2)
    url = link(clinic, doctor)
    _, headers, _ = http_get(url)
    etag, last_modified = headers["ETag"], headers["Last-Modified"]

    status, not_modified, _ = http_get(url, **{"If-None-Match": etag})
    assert status == 304 and not_modified["Cache-Control"] == "no-store"
    assert http_get(url, **{"If-Modified-Since": last_modified})[0] == 304

    book(clinic, doctor, None, days=4)
    status, changed, body = http_get(url, **{"If-None-Match": etag})
    assert status == 200 and changed["ETag"] != etag
    assert len(Calendar.from_ical(body).walk("VEVENT")) == 2


def test_the_server_builds_the_feeds_when_it_starts_and_freezes_its_startup_heap(served):
    _, _, servers = served
    warmed = re.compile(r"calendar feeds warmed: (\d+) doctors")
    assert wait_until(lambda: warmed.search(servers.logs()), 60)
    assert int(warmed.search(servers.logs())[1]) >= 1  # the one there before the start
    frozen = re.search(r"startup heap frozen: (\d+) objects", servers.logs())
    assert frozen and int(frozen[1]) > 100_000  # the model and its libraries
