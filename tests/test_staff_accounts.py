"""Staff accounts: one-time links, Argon2 passwords, the lock after five wrong passwords."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic import audit
from clinic.db import transaction
from clinic.models import AuditEvent, Staff
from clinic.staff import (
    LOCK_TIME,
    SignIn,
    StaffError,
    add_staff,
    disable_staff,
    get_staff,
    link_is_valid,
    new_link,
    set_password,
    sign_in,
)

PASSWORD = "correct horse battery"


def _member(clinic, email="desk@clinic.example", role="desk"):
    token = add_staff(clinic, email, role)
    return set_password(clinic, token, PASSWORD)


def test_a_link_sets_the_password_once_and_only_its_hash_is_stored(any_clinic):
    token = add_staff(any_clinic, " Desk@Clinic.example ", "desk")
    assert link_is_valid(any_clinic, token)
    staff = set_password(any_clinic, token, PASSWORD)
    assert (staff.email, staff.role, staff.has_password) == ("desk@clinic.example", "desk", True)
    assert not link_is_valid(any_clinic, token)
    with pytest.raises(StaffError, match="used or has run out"):
        set_password(any_clinic, token, PASSWORD)
    with transaction(any_clinic.engine) as session:
        row = session.scalars(select(Staff)).one()
    assert token not in (row.link_hash or "") and PASSWORD not in row.password_hash
    assert row.password_hash.startswith("$argon2id$")


def test_a_link_runs_out_after_48_hours(clinic, clock):
    token = add_staff(clinic, "desk@clinic.example", "desk")
    clock.advance(timedelta(hours=48, seconds=1))
    assert not link_is_valid(clinic, token)


def test_short_passwords_and_duplicate_accounts_are_refused(clinic):
    token = add_staff(clinic, "desk@clinic.example", "desk")
    with pytest.raises(StaffError, match="at least 10"):
        set_password(clinic, token, "short")
    with pytest.raises(StaffError, match="already has an account"):
        add_staff(clinic, "DESK@clinic.example", "admin")
    with pytest.raises(StaffError, match="role"):
        add_staff(clinic, "other@clinic.example", "owner")


def test_five_wrong_passwords_lock_the_account_for_15_minutes(any_clinic, clock):
    _member(any_clinic)
    for _ in range(4):
        assert sign_in(any_clinic, "desk@clinic.example", "wrong").outcome == SignIn.WRONG
    locked = sign_in(any_clinic, "desk@clinic.example", "wrong")
    assert locked.outcome == SignIn.LOCKED
    assert locked.locked_until == clock() + LOCK_TIME
    # Locked: even the right password is refused until the time is up.
    assert sign_in(any_clinic, "desk@clinic.example", PASSWORD).outcome == SignIn.LOCKED
    clock.advance(LOCK_TIME - timedelta(seconds=1))
    assert sign_in(any_clinic, "desk@clinic.example", PASSWORD).outcome == SignIn.LOCKED
    clock.advance(timedelta(seconds=2))
    assert sign_in(any_clinic, "desk@clinic.example", PASSWORD).outcome == SignIn.OK


def test_a_right_password_resets_the_count(clinic):
    _member(clinic)
    for _ in range(4):
        sign_in(clinic, "desk@clinic.example", "wrong")
    assert sign_in(clinic, "desk@clinic.example", PASSWORD).outcome == SignIn.OK
    for _ in range(4):
        assert sign_in(clinic, "desk@clinic.example", "wrong").outcome == SignIn.WRONG


def test_unknown_and_disabled_accounts_get_the_same_answer_as_a_wrong_password(clinic):
    staff = _member(clinic)
    _member(clinic, "admin@clinic.example", "admin")
    assert sign_in(clinic, "nobody@clinic.example", PASSWORD).outcome == SignIn.WRONG
    disable_staff(clinic, "desk@clinic.example")
    assert get_staff(clinic, staff.id) is None  # its sessions end at their next request
    assert sign_in(clinic, "desk@clinic.example", PASSWORD).outcome == SignIn.WRONG
    with pytest.raises(StaffError):
        new_link(clinic, "desk@clinic.example")


def test_sign_ins_are_audited_by_staff_id_without_the_email(clinic):
    staff = _member(clinic)
    sign_in(clinic, "desk@clinic.example", "wrong")
    sign_in(clinic, "desk@clinic.example", PASSWORD)
    sign_in(clinic, "nobody@clinic.example", PASSWORD)
    with transaction(clinic.engine) as session:
        rows = session.execute(
            select(AuditEvent.name, AuditEvent.staff_id, AuditEvent.details).where(
                AuditEvent.name.like("staff_sign%")
            )
        ).all()
    assert [(name, who) for name, who, _ in rows] == [
        (audit.STAFF_SIGN_IN_FAILED, staff.id),
        (audit.STAFF_SIGNED_IN, staff.id),
        (audit.STAFF_SIGN_IN_FAILED, None),
    ]
    assert "clinic.example" not in repr(rows)


def test_a_new_link_replaces_the_password_and_unlocks(clinic):
    _member(clinic)
    for _ in range(5):
        sign_in(clinic, "desk@clinic.example", "wrong")
    token = new_link(clinic, "desk@clinic.example")
    assert sign_in(clinic, "desk@clinic.example", PASSWORD).outcome == SignIn.WRONG
    set_password(clinic, token, "another long password")
    assert sign_in(clinic, "desk@clinic.example", "another long password").outcome == SignIn.OK


def test_admins_cannot_disable_themselves(clinic):
    admin = _member(clinic, "admin@clinic.example", "admin")
    with pytest.raises(StaffError, match="your own"):
        disable_staff(clinic, "admin@clinic.example", by_staff_id=admin.id)
