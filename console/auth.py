"""Signing in and out, and the one-time link that sets a password."""

from __future__ import annotations

from datetime import datetime

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from clinic import audit
from clinic.db import transaction
from clinic.staff import SignIn, StaffError, link_is_valid, set_password
from clinic.staff import sign_in as check
from clinic.templates import format_time
from console.app import StaffUser, desk, error_page, safe_next
from console.forms import SignInForm, WelcomeForm


def sign_in():  # noqa: ANN201 - a Flask view
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")), code=303)
    form = SignInForm()
    if form.validate_on_submit():
        result = check(desk().clinic, form.email.data, form.password.data)
        if result.outcome == SignIn.OK:
            _start_session(StaffUser(result.staff))
            return redirect(safe_next(request.args.get("next")), code=303)
        if result.outcome == SignIn.LOCKED:
            until = result.locked_until
            form.password.errors.append(
                "Too many wrong passwords: this account is locked until "
                f"{_clock(until)}. An admin can send you a new sign-in link."
            )
        else:
            form.password.errors.append("That e-mail and password don't match an account.")
        return render_template("sign_in.html", form=form), 401
    return render_template("sign_in.html", form=form)


def welcome(token: str):  # noqa: ANN201 - a Flask view
    clinic = desk().clinic
    if not link_is_valid(clinic, token):
        return error_page(
            404, "This sign-in link has been used or has run out. Ask an admin for a new one."
        )
    form = WelcomeForm()
    if form.validate_on_submit():
        try:
            staff = set_password(clinic, token, form.password.data)
        except StaffError as error:
            form.password.errors.append(str(error))
        else:
            _start_session(StaffUser(staff))
            flash("Your password is set. Welcome!")
            return redirect(url_for("week.today"), code=303)
    return render_template("welcome.html", form=form)


def sign_out():  # noqa: ANN201 - a Flask view
    staff_id = current_user.staff_id
    with transaction(desk().clinic.engine) as db:
        audit.record(db, audit.STAFF_SIGNED_OUT, staff_id=staff_id)
    logout_user()
    session.clear()
    flash("You have signed out.")
    return redirect(url_for("auth.sign_in"), code=303)


def _start_session(user: StaffUser) -> None:
    session.clear()  # nothing from before signing in carries over
    login_user(user)
    session.permanent = True  # ends after CONSOLE_IDLE_MINUTES without a request


def _clock(moment: datetime) -> str:
    return format_time(moment, desk().clinic.settings.zone)
