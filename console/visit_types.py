"""Visit types (admins): what the clinic offers, how long each takes and what it costs."""

from __future__ import annotations

import re

from flask import flash, redirect, render_template, url_for

from clinic.profile import ProfileError, canonical_price, visit_type_from
from clinic.profile_store import all_visit_types, save_visit_type, withdraw_visit_type
from console.app import desk, error_page
from console.forms import VisitTypeForm


def listing():  # noqa: ANN201 - a Flask view
    """GET: the visit types and a form for a new one; POST: adds it."""
    form = VisitTypeForm()
    if form.is_submitted():
        saved = _save(form, key=None)
        if saved:
            return saved
    return _page(form, None, status=400 if form.is_submitted() else 200)


def edit(key: str):  # noqa: ANN201 - a Flask view
    current = next((v for v, _ in all_visit_types(desk().clinic) if v.key == key), None)
    if current is None:
        return error_page(404, "There is no such visit type.")
    form = VisitTypeForm()
    if form.is_submitted():
        saved = _save(form, key)
        if saved:
            return saved
        return _page(form, current, status=400)
    form.name.data, form.minutes.data = current.name, current.minutes
    form.price.data, form.price_from.data = current.price, current.price_from
    form.words.data = ", ".join(current.words)
    return _page(form, current)


def withdraw(key: str):  # noqa: ANN201 - a Flask view
    withdraw_visit_type(desk().clinic, key)
    flash("Withdrawn: no doctor offers it now. Visits booked with it keep it.")
    return redirect(url_for("visit_types.listing"), code=303)


def _save(form: VisitTypeForm, key: str | None):  # noqa: ANN202
    if not form.validate():
        return None
    try:
        price = canonical_price(form.price.data)
    except ProfileError as error:
        form.price.errors.append(str(error).capitalize() + ".")
        return None
    try:
        visit = visit_type_from(
            {
                "key": key or _key_for(form.name.data),
                "name": form.name.data,
                "minutes": form.minutes.data,
                "price": price,
                "price_from": form.price_from.data,
                "words": [w for w in (form.words.data or "").split(",")],
            }
        )
    except ProfileError as error:
        form.minutes.errors.append(str(error).capitalize() + ".")
        return None
    if key is None and any(v.key == visit.key for v, _ in all_visit_types(desk().clinic)):
        form.name.errors.append("A visit type with this name exists: edit it instead.")
        return None
    save_visit_type(desk().clinic, visit)
    flash(f"Saved {visit.name}. The bot offers it from its next message.")
    return redirect(url_for("visit_types.listing"), code=303)


def _page(form: VisitTypeForm, current, status: int = 200):  # noqa: ANN001, ANN202
    types = all_visit_types(desk().clinic)
    page = render_template(
        "setup/visit_types.html",
        form=form,
        current=current,
        types=types,
        currency=desk().profile.currency,
    )
    return page, status


def _key_for(name: str) -> str:
    """'Follow-up visit' -> 'follow_up_visit'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:64] or "visit"
