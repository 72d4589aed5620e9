"""The Instagram connection (admins): does the token work, when did the last message come,
what waits in the inbox and what failed in the outbox."""

from __future__ import annotations

from flask import render_template, request

from clinic.connection import TokenCheck, connection_health
from console.app import desk


def status():  # noqa: ANN201 - a Flask view
    """GET: the counts; POST ("Check"): also asks the Graph API whose token this is."""
    checked = desk().check_token() if request.method == "POST" else None
    health = connection_health(desk().clinic, checked or TokenCheck(False))
    return render_template(
        "setup/instagram.html",
        health=health,
        checked=checked,
        configured=bool(desk().clinic.settings.instagram_access_token),
    )
