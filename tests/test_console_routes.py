"""The console's perimeter, walked from its route table: who may open what, CSRF, headers,
cookies, session expiry; and that each staff action leaves an audit row of ids."""

from __future__ import annotations

import re
import time as clock_time
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from clinic import audit
from clinic.db import transaction
from clinic.front_desk import Caller, book_caller
from clinic.models import Appointment, AuditEvent, Patient, Staff
from clinic.profile import load_profile
from clinic.settings import DEFAULT_PROFILE_PATH
from console.app import ADMIN, PUBLIC
from console.routes import ROUTES
from tests.conftest import TEST_NAME, TEST_PHONE, build_clinic
from tests.console_support import console_app, csrf_token, post_form, signed_in
from tests.factories import add_doctor

ZONE = ZoneInfo("America/New_York")


def concrete(rule: str) -> str:
    """A URL of the rule: every <…> part filled in."""
    return re.sub(r"<(?:int:)?[a-z_]+>", "1", rule)


PROTECTED = [(r, m) for r in ROUTES if r.access != PUBLIC for m in r.methods]


@pytest.fixture
def app(clinic):
    return console_app(clinic)


@pytest.mark.parametrize(("route", "method"), PROTECTED, ids=lambda x: getattr(x, "rule", x))
def test_every_route_refuses_a_request_without_a_session(app, route, method):
    client = app.test_client()
    url = concrete(route.rule)
    answer = client.open(url, method=method, data={} if method == "POST" else None)
    if method == "GET":
        assert answer.status_code == 303
        assert answer.headers["Location"].startswith("/sign-in?next=")
    else:
        assert answer.status_code in (401, 403)  # no session: refused before or by CSRF
        client.get("/sign-in")  # a session with a CSRF token, but nobody signed in
        with client.session_transaction() as session:
            token = session.get("csrf_token")
        assert token is not None
        answer = client.post(url, data={"csrf_token": _signed(app, client)})
        assert answer.status_code == 401


def test_htmx_requests_without_a_session_get_401(app):
    assert app.test_client().get("/week", headers={"HX-Request": "true"}).status_code == 401


ADMIN_ONLY = [(r, m) for r in ROUTES if r.access == ADMIN for m in r.methods]


@pytest.mark.parametrize(("route", "method"), ADMIN_ONLY, ids=lambda x: getattr(x, "rule", x))
def test_every_admin_route_refuses_the_desk_role(app, clinic, route, method):
    client, _ = signed_in(app, clinic, "desk")
    token = csrf_token(client.get("/").text)
    answer = client.open(concrete(route.rule), method=method, data={"csrf_token": token})
    assert answer.status_code == 403
    assert "Only an admin can open this page." in answer.text


POSTS = [r for r in ROUTES if "POST" in r.methods]


@pytest.mark.parametrize("route", POSTS, ids=lambda r: r.rule)
def test_a_form_posted_without_its_csrf_token_gets_403_and_changes_nothing(app, clinic, route):
    client, _ = signed_in(app, clinic, "admin")
    before = _audit_rows(clinic)
    answer = client.post(concrete(route.rule), data={"email": "x@clinic.example"})
    assert answer.status_code == 403
    assert "This form was out of date or did not come from the console" in answer.text
    assert _audit_rows(clinic) == before


def test_pages_are_never_cached_and_carry_security_headers(app, clinic):
    client, _ = signed_in(app, clinic, "admin")
    for path in ("/", "/week", "/patients", "/sign-in", "/nowhere"):
        headers = client.get(path).headers
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Frame-Options"] == "DENY"
        assert "script-src 'self';" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_session_cookie_is_httponly_lax_and_secure_behind_https(sqlite_url, clock):
    for url, secure in (("http://127.0.0.1:8000", False), ("https://desk.clinic.example", True)):
        clinic = build_clinic(sqlite_url, clock, console_url=url)
        client, _ = signed_in(console_app(clinic), clinic, "desk", f"{secure}@clinic.example")
        cookie = client.get_cookie("clinic_console")
        assert cookie.http_only and cookie.same_site == "Lax" and cookie.secure is secure
        clinic.engine.dispose()


def test_a_session_ends_after_eight_idle_hours(app, clinic, monkeypatch):
    client, _ = signed_in(app, clinic, "desk")
    now = clock_time.time()
    for hours in (4, 7.9, 11.8):  # each request within 8 hours of the last keeps it going
        monkeypatch.setattr(clock_time, "time", lambda h=hours: now + h * 3600)
        assert client.get("/").status_code == 200
    monkeypatch.setattr(clock_time, "time", lambda: now + (11.8 + 8) * 3600 + 5)
    answer = client.get("/")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/sign-in")


def test_a_disabled_account_loses_its_session_at_the_next_request(app, clinic):
    admin, _ = signed_in(app, clinic, "admin")
    desk, desk_id = signed_in(app, clinic, "desk")
    assert desk.get("/").status_code == 200
    assert post_form(admin, f"/staff/{desk_id}/disable", page="/staff").status_code == 303
    assert desk.get("/").status_code == 303


def test_the_sign_in_page_locks_after_five_wrong_passwords(app, clinic):
    signed_in(app, clinic, "desk")
    client = app.test_client()
    for _ in range(5):
        answer = post_form(client, "/sign-in", {"email": "desk@clinic.example", "password": "nope"})
        assert answer.status_code == 401
    assert "locked until" in answer.text
    answer = post_form(
        client, "/sign-in", {"email": "desk@clinic.example", "password": "correct horse battery"}
    )
    assert answer.status_code == 401 and "locked until" in answer.text


def test_sign_in_goes_on_only_to_local_pages(app, clinic):
    signed_in(app, clinic, "desk")
    client = app.test_client()
    page = client.get("/sign-in?next=https://evil.example/")
    answer = client.post(
        "/sign-in?next=https://evil.example/",
        data={
            "csrf_token": csrf_token(page.text),
            "email": "desk@clinic.example",
            "password": "correct horse battery",
        },
    )
    assert answer.headers["Location"] == "/"


def test_bad_booking_input_rerenders_with_the_error_and_writes_nothing(app, clinic):
    doctor = add_doctor(clinic)
    client, _ = signed_in(app, clinic, "desk")
    page = f"/book?doctor={doctor}&day=2026-02-03"
    start = datetime.combine(date(2026, 2, 3), time(10), tzinfo=ZONE).isoformat()
    fields = {"doctor": doctor, "visit": "consultation", "day": "2026-02-03", "start": start}
    answer = post_form(
        client,
        "/book",
        {**fields, "name": TEST_NAME, "phone": "555 0100", "source": "phone", "consent": "y"},
        page,
    )
    assert answer.status_code == 400
    assert "That is not a phone number we can call" in answer.text
    assert f'value="{TEST_NAME}"' in answer.text  # what was typed is kept
    answer = post_form(
        client, "/book", {**fields, "name": TEST_NAME, "phone": TEST_PHONE, "source": "phone"}, page
    )
    assert answer.status_code == 400 and "The booking needs their consent." in answer.text
    with transaction(clinic.engine) as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 0
        assert session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_bad_block_and_staff_input_rerenders_with_the_error(app, clinic):
    doctor = add_doctor(clinic)
    client, _ = signed_in(app, clinic, "admin")
    answer = post_form(
        client,
        "/blocks/new",
        {
            "doctor": doctor,
            "day": "2026-02-03",
            "start_time": "15:00",
            "end_time": "13:00",
            "reason": "Sick",
        },
    )
    assert answer.status_code == 400 and "The end must be after the start." in answer.text
    answer = post_form(client, "/staff", {"email": "not an address", "role": "desk"})
    assert answer.status_code == 400 and "That is not an e-mail address." in answer.text
    with transaction(clinic.engine) as session:
        assert session.scalar(select(func.count()).select_from(Staff)) == 1


def test_each_staff_action_on_a_patient_is_an_audit_row_of_ids(clinic):
    desk_clinic = build_clinic(
        clinic.settings.database_url, clinic.clock, instagram_access_token="t"
    )
    app = console_app(desk_clinic)
    doctor = add_doctor(desk_clinic)
    client, admin_id = signed_in(app, desk_clinic, "admin")
    page = f"/book?doctor={doctor}&day=2026-02-03"
    start = datetime.combine(date(2026, 2, 3), time(10), tzinfo=ZONE)
    answer = post_form(
        client,
        "/book",
        {
            "doctor": doctor,
            "visit": "consultation",
            "day": "2026-02-03",
            "start": start.isoformat(),
            "name": TEST_NAME,
            "phone": TEST_PHONE,
            "source": "walk_in",
            "consent": "y",
        },
        page,
    )
    appointment_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    assert client.get(f"/appointments/{appointment_id}").status_code == 200
    later = (start + timedelta(hours=1)).isoformat()
    answer = post_form(client, f"/appointments/{appointment_id}/move", {"start": later})
    moved_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    post_form(client, f"/appointments/{moved_id}/cancel")
    patient_id = _patient_id(desk_clinic)
    post_form(client, f"/patients/{patient_id}/erase")
    post_form(client, "/sign-out", page="/")
    with transaction(desk_clinic.engine) as session:
        rows = session.execute(
            select(AuditEvent.name, AuditEvent.staff_id, AuditEvent.details).where(
                AuditEvent.staff_id == admin_id
            )
        ).all()
    names = [name for name, _, _ in rows]
    for expected in (
        audit.STAFF_SIGNED_IN,
        audit.APPOINTMENT_BOOKED,
        audit.PATIENT_VIEWED,
        audit.APPOINTMENT_MOVED,
        audit.APPOINTMENT_CANCELLED,
        audit.PATIENT_ERASED,
        audit.STAFF_SIGNED_OUT,
    ):
        assert expected in names
    for secret in (TEST_NAME, TEST_PHONE, "admin@clinic.example"):
        assert secret not in repr(rows)
    desk_clinic.engine.dispose()


def test_the_desk_books_a_caller_on_file_and_sees_them_in_the_week(app, clinic):
    doctor = add_doctor(clinic)
    profile = load_profile(DEFAULT_PROFILE_PATH)
    start = datetime.combine(date(2026, 2, 3), time(10), tzinfo=ZONE)
    book_caller(clinic, profile, 1, doctor, None, start, Caller(TEST_NAME, TEST_PHONE))
    client, _ = signed_in(app, clinic, "desk")
    week = client.get(f"/week?doctor={doctor}&week=2026-02-02").text
    assert TEST_NAME in week and "(202) 555-0143" in week and "Phone" in week
    found = client.get("/patients?q=555-0143").text
    assert TEST_NAME in found


def _patient_id(clinic) -> int:
    with transaction(clinic.engine) as session:
        return session.scalar(select(Patient.id))


def _audit_rows(clinic) -> int:
    with transaction(clinic.engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def _signed(app, client) -> str:
    """The session's CSRF token as a form carries it (signed)."""
    return csrf_token(client.get("/sign-in").text)
