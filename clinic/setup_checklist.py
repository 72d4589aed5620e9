"""What a new clinic still has to set up before the bot can book for it: the first-run
checklist of the console's home page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from clinic.context import Clinic
from clinic.db import transaction
from clinic.models import Doctor, InboxMessage, WorkingHours
from clinic.profile_store import read_profile


@dataclass(frozen=True)
class Step:
    key: str  # facts, doctor, visit_types, instagram
    title: str
    done: bool


def setup_checklist(clinic: Clinic) -> list[Step]:
    with transaction(clinic.engine) as session:
        profile = read_profile(session)
        doctors_with_hours = session.scalar(
            select(func.count(func.distinct(Doctor.id)))
            .join(WorkingHours, WorkingHours.doctor_id == Doctor.id)
            .where(Doctor.active == 1)
        )
        heard_from_instagram = session.scalar(select(InboxMessage.id).limit(1)) is not None
    return [
        Step("facts", "The clinic's address and phone", bool(profile.address and profile.phone)),
        Step("visit_types", "Visit types, with their length and price", bool(profile.visit_types)),
        Step("doctor", "A doctor with working hours", bool(doctors_with_hours)),
        Step(
            "instagram",
            "Instagram connected, and a first message received",
            bool(clinic.settings.instagram_access_token) and heard_from_instagram,
        ),
    ]
