"""Doctors' calendar links: random, stored only as a hash, one per doctor, replaced from the
command line or by an admin in the console (the old link then finds no doctor), and each
replacement an audit row of ids. tests/test_calendar_feeds.py serves them over HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from clinic import audit
from clinic.context import Clinic
from clinic.db import create_database_engine, transaction
from clinic.feed_links import doctor_for_token, feed_links, rotate_feed
from clinic.models import AuditEvent, FeedToken
from clinic.settings import load_settings
from entrypoints.cli import main
from tests.console_support import console_app, csrf_token, post_form, signed_in
from tests.factories import add_doctor

URL_START = "https://clinic.example/calendar/"


def test_a_new_link_replaces_the_old_and_only_its_hash_is_kept(any_clinic):
    doctor, other = add_doctor(any_clinic), add_doctor(any_clinic)
    assert doctor_for_token(any_clinic, "") is None  # no link yet: nothing matches
    first, kept = rotate_feed(any_clinic, doctor), rotate_feed(any_clinic, other)
    assert doctor_for_token(any_clinic, first) == doctor

    second = rotate_feed(any_clinic, doctor, staff_id=7)

    assert len(second) == 43 and second != first  # 32 random bytes, URL-safe
    assert doctor_for_token(any_clinic, first) is None
    assert doctor_for_token(any_clinic, second) == doctor
    assert doctor_for_token(any_clinic, kept) == other
    with transaction(any_clinic.engine) as session:
        stored = session.scalars(select(FeedToken.token_hash)).all()
        rows = session.execute(
            select(AuditEvent.doctor_id, AuditEvent.staff_id, AuditEvent.details).where(
                AuditEvent.name == audit.CALENDAR_LINK_ISSUED
            )
        ).all()
    assert sorted(stored) == sorted(hashlib.sha256(t.encode()).hexdigest() for t in (second, kept))
    assert [(d, s, dict(x)) for d, s, x in rows] == [
        (doctor, None, {"revoked": 0}),
        (other, None, {"revoked": 0}),
        (doctor, 7, {"revoked": 1}),
    ]
    assert not any(t in repr(rows) for t in (first, second, kept))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):  # noqa: ANN201
    """`python -m clinic` on a fresh SQLite clinic with two demo doctors."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("PUBLIC_URL", "https://clinic.example/")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert run("init")[0] == 0
    assert run("seed", "--demo", "--doctors", "2")[0] == 0
    return run


def test_feed_urls_make_a_link_for_each_doctor_once(cli):
    code, out, _ = cli("doctors", "--feed-urls")
    links = [line.split("\t")[2] for line in out.splitlines()]
    assert code == 0 and len(links) == 2
    assert links[0].startswith(URL_START + "1.ics?token=")
    assert links[1].startswith(URL_START + "2.ics?token=")
    assert len({link.split("token=")[1] for link in links}) == 2

    code, out, _ = cli("doctors", "--feed-urls")  # the links exist: not shown, not replaced
    assert code == 0 and "token=" not in out
    assert out.splitlines()[0].startswith("1\tDr. Demo\ta calendar link exists")
    assert "`python -m clinic doctors --rotate-feed 2` replaces it" in out.splitlines()[1]


def test_rotate_feed_prints_a_new_link_once_and_the_old_stops_working(cli):
    old = cli("doctors", "--feed-urls")[1].splitlines()[0].split("\t")[2]
    code, out, err = cli("doctors", "--rotate-feed", "1")
    new = out.removesuffix("\n")
    assert code == 0 and new.startswith(URL_START + "1.ics?token=") and new != old
    assert "\n" not in new and "old calendar link no longer works" in err
    clinic = Clinic(create_database_engine(load_settings().database_url), load_settings())
    assert doctor_for_token(clinic, old.split("token=")[1]) is None
    assert doctor_for_token(clinic, new.split("token=")[1]) == 1
    clinic.engine.dispose()
    code, out, _ = cli("doctors", "--feed-urls")
    assert "token=" not in out  # both doctors still have a link


def test_rotate_feed_of_an_unknown_doctor_fails_clearly(cli):
    code, out, err = cli("doctors", "--rotate-feed", "99")
    assert code == 1 and out == "" and err == "error: no doctor with id 99\n"
    with pytest.raises(SystemExit) as exit_:
        main(["doctors", "--rotate-feed", "1", "--feed-urls"])  # one or the other
    assert exit_.value.code == 2


def test_an_admin_makes_a_new_link_in_the_console_and_the_desk_cannot(clinic):
    doctor = add_doctor(clinic)
    old = rotate_feed(clinic, doctor)
    app = console_app(clinic)
    admin, admin_id = signed_in(app, clinic, "admin")
    desk, _ = signed_in(app, clinic, "desk")
    page = f"/setup/doctors/{doctor}"
    action = f"{page}/calendar-link"
    assert "A link was made on Feb 2, 2026 at 8:00 AM." in admin.get(page).text

    refused = desk.post(action, data={"csrf_token": csrf_token(desk.get("/").text)})
    assert refused.status_code == 403
    assert doctor_for_token(clinic, old) == doctor  # nothing changed

    answer = post_form(admin, action, page=page)

    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert "It is shown only now, and the old link stops working." in answer.text
    shown = answer.text.split('aria-label="Calendar link"')[0].rsplit('value="', 1)[1]
    new = shown.split('"')[0].split("token=")[1]
    assert shown.startswith(f"http://localhost:5005/calendar/{doctor}.ics?token=")
    assert doctor_for_token(clinic, old) is None
    assert doctor_for_token(clinic, new) == doctor
    assert new not in admin.get(page).text  # shown once
    with transaction(clinic.engine) as session:
        row = session.execute(
            select(AuditEvent.doctor_id, AuditEvent.details).where(
                AuditEvent.name == audit.CALENDAR_LINK_ISSUED, AuditEvent.staff_id == admin_id
            )
        ).one()
    assert (row[0], dict(row[1])) == (doctor, {"revoked": 1})
    assert post_form(admin, "/setup/doctors/999/calendar-link", page=page).status_code == 404


def test_a_doctor_without_a_link_is_told_so_in_the_console(clinic):
    doctor = add_doctor(clinic)
    admin, _ = signed_in(console_app(clinic), clinic, "admin")
    assert "No calendar link yet" in admin.get(f"/setup/doctors/{doctor}").text
    assert [link.issued_at for link in feed_links(clinic)] == [None]
