"""Staff accounts (admins): who may sign in, a one-time link for a new person or a
forgotten password, and disabling an account."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from clinic.staff import StaffError, add_staff, disable_staff, list_staff, sign_in_url
from clinic.staff import new_link as issue_link
from console.app import desk, staff_id
from console.forms import StaffForm


def listing():  # noqa: ANN201 - a Flask view
    """GET: the accounts; POST: adds one and shows its sign-in link, once."""
    clinic = desk().clinic
    form = StaffForm()
    link = None
    status = 200
    if form.validate_on_submit():
        try:
            token = add_staff(clinic, form.email.data, form.role.data, staff_id())
        except StaffError as error:
            form.email.errors.append(str(error).capitalize() + ".")
            status = 400
        else:
            link = sign_in_link(token)
            form = StaffForm(formdata=None)
    elif form.is_submitted():
        status = 400
    members = list_staff(clinic)
    return render_template("staff.html", members=members, form=form, link=link), status


def disable(member_id: int):  # noqa: ANN201 - a Flask view
    member = _member(member_id)
    if member is not None:
        try:
            disable_staff(desk().clinic, member.email, staff_id())
            flash(f"{member.email} can no longer sign in.")
        except StaffError as error:
            flash(str(error).capitalize() + ".")
    return redirect(url_for("staff.listing"), code=303)


def new_link(member_id: int):  # noqa: ANN201 - a Flask view
    member = _member(member_id)
    if member is None:
        return redirect(url_for("staff.listing"), code=303)
    try:
        token = issue_link(desk().clinic, member.email, staff_id())
    except StaffError as error:
        flash(str(error).capitalize() + ".")
        return redirect(url_for("staff.listing"), code=303)
    members = list_staff(desk().clinic)
    return render_template(
        "staff.html",
        members=members,
        form=StaffForm(formdata=None),
        link=sign_in_link(token),
        link_for=member.email,
    )


def sign_in_link(token: str) -> str:
    return sign_in_url(desk().clinic.settings, token)


def _member(member_id: int):  # noqa: ANN202
    return next((m for m in list_staff(desk().clinic) if m.id == member_id), None)
