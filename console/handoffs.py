"""Conversations staff took over: how long each has waited, the Instagram inbox where staff
answer, and "give back to the bot"."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from clinic import audit, handoffs
from clinic.db import transaction
from console.app import desk, staff_id

# Where staff answer Instagram DMs (the conversation itself is only there).
INSTAGRAM_INBOX = "https://www.instagram.com/direct/inbox/"


def listing():  # noqa: ANN201 - a Flask view
    clinic = desk().clinic
    settings = clinic.settings
    with transaction(clinic.engine) as session:
        rows = handoffs.open_for_staff(
            session, clinic.now(), settings.handoff_timeout, settings.staff_pause
        )
    return render_template("handoffs.html", handoffs=rows, inbox=INSTAGRAM_INBOX)


def give_back(handoff_id: int):  # noqa: ANN201 - a Flask view
    clinic = desk().clinic
    with transaction(clinic.engine) as session:
        done = handoffs.give_back(session, handoff_id, clinic.now())
        if done:
            audit.record(session, audit.HANDOFF_GIVEN_BACK, staff_id=staff_id(), handoff=handoff_id)
    flash(
        "Given back: the bot answers the patient's next message."
        if done
        else "That conversation was already back with the bot."
    )
    return redirect(url_for("handoffs.listing"), code=303)
