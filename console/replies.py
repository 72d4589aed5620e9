"""Replies Instagram would not take (dead letters): try again, or dismiss."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from clinic.dead_letters import dismiss_reply, failed_replies, retry_reply
from console.app import desk, staff_id


def listing():  # noqa: ANN201 - a Flask view
    return render_template("replies.html", replies=failed_replies(desk().clinic))


def retry(reply_id: int):  # noqa: ANN201 - a Flask view
    if retry_reply(desk().clinic, staff_id(), reply_id):
        flash("The reply will be sent again in a moment.")
    else:
        flash("That reply is no longer waiting.")
    return redirect(url_for("replies.listing"), code=303)


def dismiss(reply_id: int):  # noqa: ANN201 - a Flask view
    if dismiss_reply(desk().clinic, staff_id(), reply_id):
        flash("Dismissed: the reply is deleted.")
    return redirect(url_for("replies.listing"), code=303)
