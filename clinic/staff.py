"""Staff accounts of the console: one-time links that set a password, Argon2 passwords,
and a lock after five wrong passwords in a row.

A link is a random token shown once (printed by `python -m clinic staff add`); only its
SHA-256 is stored, and using it sets the password and spends it. Signing in with a wrong
password five times in a row locks the account for 15 minutes, whatever is typed then.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from clinic import audit
from clinic.context import Clinic
from clinic.db import transaction
from clinic.errors import ClinicError
from clinic.models import ROLES, Staff
from clinic.secret_links import MAX_TOKEN_LENGTH, new_token, token_hash
from clinic.settings import Settings

MAX_FAILED_SIGN_INS = 5
LOCK_TIME = timedelta(minutes=15)
LINK_LIFETIME = timedelta(hours=48)
MIN_PASSWORD_LENGTH = 10
_HASHER = PasswordHasher()


class StaffError(ClinicError):
    """A staff account can't be made or changed as asked; the message says why."""


@dataclass(frozen=True)
class StaffView:
    id: int
    email: str
    role: str
    active: bool
    has_password: bool
    last_sign_in_at: datetime | None


class SignIn:
    """How a sign-in ended."""

    OK = "ok"
    WRONG = "wrong"  # unknown e-mail, no password yet, disabled, or a wrong password
    LOCKED = "locked"


@dataclass(frozen=True)
class SignInResult:
    outcome: str
    staff: StaffView | None = None
    locked_until: datetime | None = None


def sign_in_url(settings: Settings, token: str) -> str:
    """The one-time link on the console's address."""
    return f"{settings.console_url.rstrip('/')}/welcome/{token}"


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if not (3 <= len(email) <= 254) or "@" not in email or any(c.isspace() for c in email):
        raise StaffError("that is not an e-mail address")
    return email


def add_staff(clinic: Clinic, email: str, role: str, by_staff_id: int | None = None) -> str:
    """A new account without a password; the one-time link's token (shown once)."""
    if role not in ROLES:
        raise StaffError(f"the role must be one of {', '.join(ROLES)}")
    email = normalize_email(email)
    token, link_hash = new_token()
    try:
        with transaction(clinic.engine) as session:
            staff = Staff(
                email=email,
                role=role,
                link_hash=link_hash,
                link_expires_at=clinic.now() + LINK_LIFETIME,
                created_at=clinic.now(),
            )
            session.add(staff)
            session.flush()
            audit.record(session, audit.STAFF_ADDED, staff_id=by_staff_id, subject_staff=staff.id)
    except IntegrityError as error:
        raise StaffError(f"{email} already has an account") from error
    return token


def new_link(clinic: Clinic, email: str, by_staff_id: int | None = None) -> str:
    """A fresh one-time link for an active account (a forgotten password); the old one and
    the password stop working."""
    token, link_hash = new_token()
    with transaction(clinic.engine) as session:
        staff = _by_email(session, normalize_email(email))
        if staff is None or not staff.active:
            raise StaffError("no active account has that e-mail")
        staff.link_hash, staff.link_expires_at = link_hash, clinic.now() + LINK_LIFETIME
        staff.password_hash = None
        staff.failed_sign_ins, staff.locked_until = 0, None
        audit.record(session, audit.STAFF_LINK_ISSUED, staff_id=by_staff_id, subject_staff=staff.id)
    return token


def has_staff(clinic: Clinic) -> bool:
    with transaction(clinic.engine) as session:
        return bool(session.scalar(select(func.count()).select_from(Staff)))


def list_staff(clinic: Clinic) -> list[StaffView]:
    with transaction(clinic.engine) as session:
        return [_view(s) for s in session.scalars(select(Staff).order_by(Staff.email))]


def get_staff(clinic: Clinic, staff_id: int) -> StaffView | None:
    """The account, if it exists and is active (the console checks this on every request)."""
    with transaction(clinic.engine) as session:
        staff = session.get(Staff, staff_id)
        return _view(staff) if staff is not None and staff.active else None


def disable_staff(clinic: Clinic, email: str, by_staff_id: int | None = None) -> None:
    """The account can no longer sign in; its sessions end at their next request."""
    with transaction(clinic.engine) as session:
        staff = _by_email(session, normalize_email(email))
        if staff is None:
            raise StaffError("no account has that e-mail")
        if staff.id == by_staff_id:
            raise StaffError("you can't disable your own account")
        staff.active = 0
        staff.link_hash = staff.link_expires_at = None
        audit.record(session, audit.STAFF_DISABLED, staff_id=by_staff_id, subject_staff=staff.id)


def link_is_valid(clinic: Clinic, token: str) -> bool:
    with transaction(clinic.engine) as session:
        return _by_link(session, clinic, token) is not None


def set_password(clinic: Clinic, token: str, password: str) -> StaffView:
    """Uses a one-time link: sets the password and spends the link."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    with transaction(clinic.engine) as session:
        staff = _by_link(session, clinic, token)
        if staff is None:
            raise StaffError("this link has been used or has run out: ask an admin for a new one")
        staff.password_hash = _HASHER.hash(password)
        staff.link_hash = staff.link_expires_at = None
        staff.failed_sign_ins, staff.locked_until = 0, None
        audit.record(session, audit.STAFF_PASSWORD_SET, staff_id=staff.id)
        return _view(staff)


def sign_in(clinic: Clinic, email: str, password: str) -> SignInResult:
    """Checks the password. Five wrong ones in a row lock the account for 15 minutes."""
    now = clinic.now()
    with transaction(clinic.engine) as session:
        try:
            staff = _by_email(session, normalize_email(email), for_update=True)
        except StaffError:
            staff = None
        usable = staff is not None and staff.active and staff.password_hash
        if usable and staff.locked_until is not None and staff.locked_until > now:
            audit.record(session, audit.STAFF_SIGN_IN_FAILED, staff_id=staff.id, reason="locked")
            return SignInResult(SignIn.LOCKED, locked_until=staff.locked_until)
        if not usable:
            _verify(_dummy_hash(), password)
            audit.record(session, audit.STAFF_SIGN_IN_FAILED, reason="unknown")
            return SignInResult(SignIn.WRONG)
        if not _verify(staff.password_hash, password):
            staff.failed_sign_ins += 1
            if staff.failed_sign_ins >= MAX_FAILED_SIGN_INS:
                staff.failed_sign_ins, staff.locked_until = 0, now + LOCK_TIME
            audit.record(session, audit.STAFF_SIGN_IN_FAILED, staff_id=staff.id, reason="password")
            if staff.locked_until is not None and staff.locked_until > now:
                return SignInResult(SignIn.LOCKED, locked_until=staff.locked_until)
            return SignInResult(SignIn.WRONG)
        if _HASHER.check_needs_rehash(staff.password_hash):
            staff.password_hash = _HASHER.hash(password)
        staff.failed_sign_ins, staff.locked_until = 0, None
        staff.last_sign_in_at = now
        audit.record(session, audit.STAFF_SIGNED_IN, staff_id=staff.id)
        return SignInResult(SignIn.OK, _view(staff))


@cache
def _dummy_hash() -> str:
    """Checked against when the e-mail is unknown, so a wrong e-mail costs the time a wrong
    password does and tells nothing."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _by_email(session, email: str, for_update: bool = False) -> Staff | None:
    query = select(Staff).where(Staff.email == email)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def _by_link(session, clinic: Clinic, token: str) -> Staff | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    staff = session.scalars(select(Staff).where(Staff.link_hash == token_hash(token))).first()
    if staff is None or not staff.active or staff.link_expires_at <= clinic.now():
        return None
    return staff


def _view(staff: Staff) -> StaffView:
    return StaffView(
        staff.id,
        staff.email,
        staff.role,
        bool(staff.active),
        staff.password_hash is not None,
        staff.last_sign_in_at,
    )
