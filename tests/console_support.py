"""The console in the test's process (Flask's test client), signed in as a given role."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from clinic.context import Clinic
from clinic.staff import add_staff, set_password
from console.app import create_app

PASSWORD = "correct horse battery"
SECRET_KEY = "test-console-secret-key-" + "x" * 24
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def console_app(clinic: Clinic) -> Flask:
    app = create_app(clinic, SECRET_KEY)
    app.config["TESTING"] = True
    return app


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in(app: Flask, clinic: Clinic, role: str = "desk", email: str | None = None):
    """A test client with a session of a new staff member of `role`; and their id."""
    email = email or f"{role}@clinic.example"
    staff = set_password(clinic, add_staff(clinic, email, role), PASSWORD)
    client = app.test_client()
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
    return client, staff.id


def post_form(client: FlaskClient, path: str, data: dict | None = None, page: str | None = None):
    """POSTs `data` with the CSRF token of `page` (by default `path` itself)."""
    token = csrf_token(client.get(page or path).text)
    return client.post(path, data={"csrf_token": token, **(data or {})})
