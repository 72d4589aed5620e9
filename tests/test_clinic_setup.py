"""The clinic's setup in its database: the profile's import and export, the wording of the
texts (checked placeholders, reset), date overrides of the hours, and the bot reading each
change at its next message, without a restart."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select, text

from clinic.application import ClinicApp, Wish
from clinic.db import transaction
from clinic.doctor_setup import (
    DoctorSetup,
    SetupError,
    delete_doctor,
    doctor_setup,
    doctor_setups,
    overrides_of,
    parse_ranges,
    save_doctor,
    set_active,
    set_override,
    show_ranges,
    upcoming_visits,
)
from clinic.live_config import LiveConfig
from clinic.models import ScheduleOverride
from clinic.profile import ProfileError, Topic, VisitType, load_profile, profile_from_yaml
from clinic.profile_store import (
    export_profile,
    import_profile,
    load_clinic_profile,
    save_facts,
    save_topics,
    save_visit_type,
    withdraw_visit_type,
)
from clinic.settings import DEFAULT_PROFILE_PATH
from clinic.setup_checklist import setup_checklist
from clinic.templates import TemplateError
from clinic.texts_store import check_text, preview, reset_text, save_text, text_views
from tests.factories import add_doctor

MONDAY = date(2026, 2, 2)  # the clock fixture's day


def test_export_then_import_round_trips_the_demo_profile_byte_for_byte(any_clinic):
    packaged = DEFAULT_PROFILE_PATH.read_text(encoding="utf-8")
    import_profile(any_clinic, load_profile(DEFAULT_PROFILE_PATH))
    exported = export_profile(any_clinic)
    assert exported == packaged
    import_profile(any_clinic, profile_from_yaml(exported))
    assert export_profile(any_clinic) == packaged


def test_a_bad_profile_file_is_refused_with_its_reason():
    with pytest.raises(ProfileError, match="a price must be a number"):
        profile_from_yaml("name: X\nvisit_types:\n- {key: a, name: A, minutes: 30, price: cheap}\n")
    with pytest.raises(ProfileError, match="5 to 480 minutes"):
        profile_from_yaml("name: X\nvisit_types:\n- {key: a, name: A, minutes: 0, price: 5}\n")
    with pytest.raises(ProfileError, match="unknown entries: adress"):
        profile_from_yaml("name: X\nadress: 1 Main St\n")
    with pytest.raises(ProfileError, match="needs the clinic's name"):
        profile_from_yaml("address: 1 Main St\n")


def test_facts_topics_and_visit_types_are_kept_as_given(clinic):
    save_facts(clinic, {"address": "1 Real Street", "languages": ["English", "French"]})
    save_topics(clinic, [Topic(("vaccines",), "We give flu shots every autumn.")])
    save_visit_type(clinic, VisitType("checkup", "Check-up", 45, "95.50", ("check",)))
    profile = load_clinic_profile(clinic)
    assert (profile.address, profile.languages) == ("1 Real Street", ("English", "French"))
    assert profile.topics == (Topic(("vaccines",), "We give flu shots every autumn."),)
    assert profile.visit_type("checkup").price_text("$") == "$95.50"
    assert profile.name == "Demo Clinic"  # a fact not given stays
    withdraw_visit_type(clinic, "checkup")
    assert "checkup" not in [v.key for v in load_clinic_profile(clinic).visit_types]


def test_the_bot_reads_a_change_at_its_next_message_without_a_restart(clinic):
    add_doctor(clinic)
    app = ClinicApp(clinic)
    before = app.answer_question("where are you?", None)
    assert before.startswith("We're at 100 Example Street")
    save_facts(clinic, {"address": "7 New Road", "map_link": ""})
    app._live = LiveConfig(clinic.engine, clinic.settings, refresh_seconds=0)  # no waiting
    assert app.answer_question("where are you?", None) == "We're at 7 New Road."


def test_a_live_configuration_checks_at_most_once_a_second(clinic):
    ticks = iter([0.0, 0.5, 0.9, 1.1])
    live = LiveConfig(clinic.engine, clinic.settings, monotonic=lambda: next(ticks))
    assert live.current().profile.address.startswith("100 Example")
    save_facts(clinic, {"address": "7 New Road"})
    assert live.current().profile.address.startswith("100 Example")  # 0.5 s
    assert live.current().profile.address.startswith("100 Example")  # 0.9 s
    assert live.current().profile.address == "7 New Road"  # 1.1 s


def test_texts_keep_their_placeholders_and_name_no_other(clinic):
    assert check_text("confirmation", "  See you {when}{visit_with_doctor}!  ") == (
        "See you {when}{visit_with_doctor}!"
    )
    with pytest.raises(TemplateError, match=r"names \{time\}, which this text can't fill"):
        check_text("confirmation", "See you {when} at {time}{visit_with_doctor}")
    with pytest.raises(TemplateError, match=r"must keep \{when\}"):
        check_text("confirmation", "See you soon{visit_with_doctor}!")
    with pytest.raises(TemplateError, match="not closed"):
        check_text("confirmation", "See you {when{visit_with_doctor}")
    with pytest.raises(TemplateError, match="no text called"):
        check_text("no_such_text", "Hi")
    assert check_text("privacy", "We keep it {retention_days} days.")  # a setting: anywhere


def test_a_text_is_previewed_saved_and_reset(clinic):
    edited = "See you on {when}{visit_with_doctor}! Reply here if plans change."
    assert preview("confirmation", edited) == (
        "See you on Feb 5, 2026 at 2:00 PM: Consultation with Dr. Smith! Reply here if plans "
        "change."
    )
    save_text(clinic, None, "confirmation", edited)
    view = next(v for v in text_views(clinic) if v.name == "confirmation")
    assert (view.text, view.changed) == (edited, True)
    start = datetime(2026, 2, 5, 19, 0).astimezone()
    confirmation = ClinicApp(clinic).templates.confirmation(
        start, clinic.settings.zone, "instagram"
    )
    assert confirmation.startswith("See you on Feb 5, 2026")
    reset_text(clinic, None, "confirmation")
    view = next(v for v in text_views(clinic) if v.name == "confirmation")
    assert (view.text, view.changed) == (view.default, False)


def test_a_date_override_replaces_the_weekday_hours(any_clinic):
    doctor = add_doctor(any_clinic)
    tuesday, wednesday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)
    with transaction(any_clinic.engine) as session:
        session.add(ScheduleOverride(doctor_id=doctor, day=tuesday))  # a day off
        session.add(
            ScheduleOverride(doctor_id=doctor, day=wednesday, start_time=time(7), end_time=time(8))
        )
    app = ClinicApp(any_clinic)
    assert app.slots_on(tuesday) == []
    assert [o.start.time() for o in app.slots_on(wednesday)] == [time(7), time(7, 30)]
    assert app.first_day_with_slots(tuesday, Wish()).day == wednesday
    hours = app.answer_question("are you open on tuesday", tuesday)
    assert hours.startswith("Sorry, we're closed on Tue, Feb 3.")
    assert app.answer_question("open wednesday?", wednesday) == (
        "On Wed, Feb 4 we're open 7:00 AM–8:00 AM."
    )
    with transaction(any_clinic.engine) as session:
        assert len(session.scalars(select(ScheduleOverride)).all()) == 2


def test_two_questions_in_one_message_get_both_answers_in_one_text(clinic):
    add_doctor(clinic)
    app = ClinicApp(clinic)
    assert app.answer_question("how much is a visit and do you take Cigna?", None) == (
        "A Consultation costs $80. We accept most major insurance plans, including Aetna, Blue "
        "Cross and Cigna. Please bring your insurance card to your visit."
    )
    assert app.answer_question("where are you, and is there parking?", None) == (
        "We're at 100 Example Street, Springfield. Map: "
        "https://maps.example.com/?q=100+Example+Street There is free parking behind the "
        "building; the entrance is on Oak Street."
    )


def test_a_clinic_without_a_fact_says_it_does_not_know(clinic):
    save_facts(clinic, {"parking": ""})
    add_doctor(clinic)
    assert ClinicApp(clinic).answer_question("is there parking?", None) is None


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("9:00-12:00, 13:00-17:00", [(time(9), time(12)), (time(13), time(17))]),
        ("13-17, 9-12", [(time(9), time(12)), (time(13), time(17))]),
        ("9am-12pm and 1-5pm", [(time(9), time(12)), (time(13), time(17))]),
        ("8:30 – 11:45", [(time(8, 30), time(11, 45))]),
        ("11-1pm", [(time(11), time(13))]),
        ("", []),
    ],
)
def test_hours_are_read_as_people_write_them(text, ranges):
    assert parse_ranges(text) == ranges
    assert parse_ranges(show_ranges(ranges)) == ranges


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9-13, 12-17", "two ranges overlap"),
        ("17-9", "the end is not after the start"),
        ("9:00", "not a range"),
        ("25:00-26:00", "not a time of day"),
        ("nine-ten", "not a time like"),
    ],
)
def test_bad_hours_are_refused_with_their_reason(text, reason):
    with pytest.raises(SetupError, match=reason):
        parse_ranges(text)


def test_a_doctor_is_set_up_with_hours_overrides_and_visits(any_clinic):
    setup = DoctorSetup(None, "Dr. New", 20, ("procedure",), {1: parse_ranges("9-12, 13-17")})
    doctor_id = save_doctor(any_clinic, None, setup)
    set_override(any_clinic, None, doctor_id, MONDAY + timedelta(days=8), [])
    stored = doctor_setup(any_clinic, doctor_id)
    assert (stored.name, stored.slot_minutes, stored.visit_keys) == ("Dr. New", 20, ("procedure",))
    assert stored.weekly == {1: [(time(9), time(12)), (time(13), time(17))]}
    (override,) = overrides_of(any_clinic, doctor_id, MONDAY)
    assert (override.day, override.ranges) == (MONDAY + timedelta(days=8), [])
    with pytest.raises(SetupError, match="5 to 480"):
        save_doctor(any_clinic, None, DoctorSetup(None, "Dr. Zero", 0, (), {}))


def test_a_doctor_with_visits_in_the_books_is_deactivated_not_deleted(clinic):
    from tests.factories import add_appointment, add_patient

    doctor = add_doctor(clinic)
    add_appointment(
        clinic, doctor, add_patient(clinic).id, datetime(2026, 2, 3, 15, 0).astimezone()
    )
    with pytest.raises(SetupError, match="deactivate them instead"):
        delete_doctor(clinic, None, doctor)
    assert [v.id for v in upcoming_visits(clinic, doctor)]
    set_active(clinic, None, doctor, False)
    assert ClinicApp(clinic).doctors() == []
    empty = add_doctor(clinic, name="Dr. Unused")
    delete_doctor(clinic, None, empty)
    assert [d.name for d in doctor_setups(clinic)] == ["Dr. Test"]


def test_the_checklist_follows_what_is_set_up(database_url, clock):
    from tests.conftest import build_clinic

    fresh = build_clinic(database_url, clock, instagram_access_token="t")
    with transaction(fresh.engine) as session:
        for table in ("visit_types", "clinic_facts"):
            session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our table names
    assert [s.done for s in setup_checklist(fresh)] == [False, False, False, False]
    import_profile(fresh, load_profile(DEFAULT_PROFILE_PATH))
    add_doctor(fresh)
    assert [s.done for s in setup_checklist(fresh)] == [True, True, True, False]
    fresh.engine.dispose()
