"""The bot's wording (admins): every patient text, editable with a preview filled with
sample values; placeholders are checked; each can go back to its default."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clinic.templates import TemplateError
from clinic.texts_store import placeholders, preview, reset_text, save_text, text_views
from console.app import desk, error_page, staff_id
from console.forms import TextForm


def listing():  # noqa: ANN201 - a Flask view
    return render_template("setup/texts.html", texts=text_views(desk().clinic))


def edit(name: str):  # noqa: ANN201 - a Flask view
    view = next((v for v in text_views(desk().clinic) if v.name == name), None)
    if view is None:
        return error_page(404, "There is no such text.")
    form = TextForm()
    shown, status = None, 200
    if not form.is_submitted():
        form.text.data = view.text
    elif request.form.get("action") == "reset":
        reset_text(desk().clinic, staff_id(), name)
        flash("Back to the default wording, from the bot's next message.")
        return redirect(url_for("texts.edit", name=name), code=303)
    elif form.validate():
        try:
            if request.form.get("action") == "save":
                save_text(desk().clinic, staff_id(), name, form.text.data)
                flash("Saved. The bot says it this way from its next message.")
                return redirect(url_for("texts.edit", name=name), code=303)
            shown = preview(name, form.text.data)
        except TemplateError as error:
            form.text.errors.append(f"Not saved: {error}.")
            status = 400
    else:
        status = 400
    page = render_template(
        "setup/text.html",
        form=form,
        view=view,
        preview=shown or _safe_preview(name, view.text),
        placeholders=sorted(placeholders(view.default)),
    )
    return page, status


def _safe_preview(name: str, text: str) -> str:
    try:
        return preview(name, text)
    except TemplateError:
        return ""
