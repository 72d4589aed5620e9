"""The clinic's facts and its own topics (admins): what the bot answers patients with."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from clinic.profile import DEFAULT_CURRENCY, FACTS, Topic
from clinic.profile_store import save_facts, save_topics
from console.app import desk
from console.forms import FactsForm


def edit():  # noqa: ANN201 - a Flask view
    profile = desk().profile
    form = FactsForm()
    if not form.is_submitted():
        for key in FACTS:
            value = getattr(profile, key)
            form[key].data = ", ".join(value) if key == "languages" else value
        for _ in range(len(profile.topics)):
            form.topics.append_entry()
        for entry, topic in zip(form.topics.entries, profile.topics, strict=False):
            entry.form.words.data = ", ".join(topic.words)
            entry.form.answer.data = topic.answer
        return render_template("setup/clinic.html", form=form)
    if not form.validate():
        return render_template("setup/clinic.html", form=form), 400
    facts = {key: (form[key].data or "").strip() for key in FACTS}
    facts["languages"] = [x.strip() for x in facts["languages"].split(",") if x.strip()]
    facts["currency"] = facts["currency"] or DEFAULT_CURRENCY
    topics, bad = [], False
    for entry in form.topics.entries:
        words = [w.strip().lower() for w in (entry.form.words.data or "").split(",") if w.strip()]
        answer = (entry.form.answer.data or "").strip()
        if words and answer:
            topics.append(Topic(tuple(words), answer))
        elif words or answer:
            entry.form.answer.errors.append("A topic needs both its words and its answer.")
            bad = True
    if bad:
        return render_template("setup/clinic.html", form=form), 400
    save_facts(desk().clinic, facts)
    save_topics(desk().clinic, topics)
    flash("Saved. The bot answers with these from its next message.")
    return redirect(url_for("clinic_facts.edit"), code=303)
