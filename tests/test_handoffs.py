"""Hand-offs in the core: when the bot keeps quiet, when it answers again, what staff see,
and that erasure and retention take them away. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clinic.application import ClinicApp
from clinic.db import transaction
from clinic.handoffs import Decision, HandoffDesk, StaffNotice, listing
from clinic.models import Handoff
from clinic.retention import purge
from tests.factories import add_patient

PATIENT = "IG_TEST_HANDOFF"


@pytest.fixture
def desk(any_clinic, clock) -> HandoffDesk:
    return HandoffDesk(any_clinic.engine, any_clinic.settings, clock)


def _rows(clinic) -> list[tuple]:
    with transaction(clinic.engine) as session:
        rows = session.scalars(select(Handoff).order_by(Handoff.id)).all()
        return [(r.sender_id, r.state, r.close_reason) for r in rows]


def test_a_handoff_keeps_the_bot_quiet_until_the_timeout_then_takes_back(any_clinic, desk, clock):
    ClinicApp(any_clinic).request_handoff(PATIENT)
    assert desk.decide("IG_TEST_SOMEONE_ELSE") is Decision.ANSWER

    clock.advance(timedelta(hours=23, minutes=59))
    assert desk.decide(PATIENT) is Decision.STAY_SILENT
    clock.advance(timedelta(minutes=1))  # HANDOFF_TIMEOUT_HOURS: 24

    assert desk.decide(PATIENT) is Decision.TAKE_BACK_AND_ANSWER
    assert desk.decide(PATIENT) is Decision.ANSWER
    assert _rows(any_clinic) == [(None, "closed", "timeout")]


def test_control_coming_back_ends_the_handoff_but_an_older_notice_does_not(any_clinic, desk, clock):
    earlier = clock()
    clock.advance(timedelta(minutes=5))
    ClinicApp(any_clinic).request_handoff(PATIENT)

    desk.record([StaffNotice(PATIENT, earlier, returned=True)])  # redelivered, from before
    assert desk.decide(PATIENT) is Decision.STAY_SILENT

    desk.record([StaffNotice(PATIENT, None, returned=True)])
    assert desk.decide(PATIENT) is Decision.ANSWER
    assert _rows(any_clinic) == [(None, "closed", "returned")]


def test_staff_writing_pauses_the_bot_from_their_latest_message(any_clinic, desk, clock):
    desk.record([StaffNotice(PATIENT, clock())])
    clock.advance(timedelta(minutes=50))
    desk.record([StaffNotice(PATIENT, clock())])
    desk.record([StaffNotice(PATIENT, clock() - timedelta(minutes=40))])  # late redelivery
    clock.advance(timedelta(minutes=59))
    assert desk.decide(PATIENT) is Decision.STAY_SILENT

    clock.advance(timedelta(minutes=1))  # STAFF_PAUSE_MINUTES: 60

    assert desk.decide(PATIENT) is Decision.ANSWER  # the bot never passed control: no take
    assert _rows(any_clinic) == [(None, "closed", "timeout")]


def test_a_future_timestamp_cannot_pause_the_bot_for_longer(any_clinic, desk, clock):
    desk.record([StaffNotice(PATIENT, clock() + timedelta(days=3))])
    clock.advance(timedelta(minutes=61))
    assert desk.decide(PATIENT) is Decision.ANSWER


def test_staff_see_state_and_age_by_reference_only(any_clinic, desk, clock):
    ClinicApp(any_clinic).request_handoff(PATIENT)
    ClinicApp(any_clinic).request_handoff("IG_TEST_HANDOFF_2")
    desk.record([StaffNotice("IG_TEST_HANDOFF_2", clock())])
    clock.advance(timedelta(hours=25))
    ClinicApp(any_clinic).request_handoff("IG_TEST_HANDOFF_3")
    settings = any_clinic.settings

    with transaction(any_clinic.engine) as session:
        views = listing(session, clock(), settings.handoff_timeout, settings.staff_pause)

    assert [view.state for view in views] == ["waiting", "closed", "closed"]
    assert all(len(view.ref) == 8 and "IG_" not in view.ref for view in views)


def test_erasure_and_retention_take_handoffs_away(any_clinic, desk, clock):
    add_patient(any_clinic, PATIENT)
    app = ClinicApp(any_clinic)
    app.request_handoff(PATIENT)
    app.request_handoff("IG_TEST_HANDOFF_OLD")
    desk.record([StaffNotice("IG_TEST_HANDOFF_OLD", None, returned=True)])

    app.erase_patient(PATIENT)
    assert _rows(any_clinic) == [(None, "closed", "returned")]

    clock.advance(timedelta(days=any_clinic.settings.retention_days + 1))
    assert purge(any_clinic, None).handoffs == 1
    assert _rows(any_clinic) == []


def test_a_patient_has_at_most_one_open_handoff(any_clinic, clock):
    def open_one() -> Handoff:
        return Handoff(sender_id=PATIENT, sender_hash="h", state="waiting", opened_at=clock())

    with pytest.raises(IntegrityError), transaction(any_clinic.engine) as session:
        session.add_all([open_one(), open_one()])

    ClinicApp(any_clinic).request_handoff(PATIENT)
    HandoffDesk(any_clinic.engine, any_clinic.settings, clock).record([StaffNotice(PATIENT, None)])
    assert _rows(any_clinic) == [(PATIENT, "with_staff", None)]


def test_a_hand_back_seconds_after_the_hand_off_counts_despite_clocks_apart(
    any_clinic, desk, clock
):
    ClinicApp(any_clinic).request_handoff(PATIENT)
    meta_clock_behind = clock() - timedelta(seconds=20)
    desk.record([StaffNotice(PATIENT, meta_clock_behind, returned=True)])
    assert desk.decide(PATIENT) is Decision.ANSWER
