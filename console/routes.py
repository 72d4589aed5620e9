"""Every page and action of the console, and who may open it: the one table to read.

PUBLIC: anyone (signing in); DESK: any signed-in staff member; ADMIN: admins only.
tests/test_console_routes.py walks this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from console import (
    auth,
    blocks,
    booking,
    clinic_facts,
    connection,
    doctors,
    handoffs,
    patients,
    replies,
    staff,
    texts,
    visit_types,
    visits,
    week,
)
from console.app import ADMIN, DESK, PUBLIC


@dataclass(frozen=True)
class Route:
    rule: str
    view: Callable
    access: str
    methods: tuple[str, ...] = ("GET",)

    @property
    def endpoint(self) -> str:
        """ "handoffs.listing": the module and the view, as templates name it in url_for."""
        return f"{self.view.__module__.rsplit('.', 1)[-1]}.{self.view.__name__}"


ROUTES = (
    Route("/sign-in", auth.sign_in, PUBLIC, ("GET", "POST")),
    Route("/welcome/<token>", auth.welcome, PUBLIC, ("GET", "POST")),
    Route("/sign-out", auth.sign_out, DESK, ("POST",)),
    Route("/", week.today, DESK),
    Route("/week", week.doctor_week, DESK),
    Route("/book", booking.book, DESK, ("GET", "POST")),
    Route("/appointments/<int:appointment_id>", visits.appointment, DESK),
    Route("/appointments/<int:appointment_id>/cancel", visits.cancel, DESK, ("GET", "POST")),
    Route("/appointments/<int:appointment_id>/move", visits.move, DESK, ("GET", "POST")),
    Route("/notices/<int:notice_id>/called", visits.called, DESK, ("POST",)),
    Route("/blocks/new", blocks.new_block, DESK, ("GET", "POST")),
    Route("/handoffs", handoffs.listing, DESK),
    Route("/handoffs/<int:handoff_id>/give-back", handoffs.give_back, DESK, ("POST",)),
    Route("/replies", replies.listing, DESK),
    Route("/replies/<int:reply_id>/retry", replies.retry, DESK, ("POST",)),
    Route("/replies/<int:reply_id>/dismiss", replies.dismiss, DESK, ("POST",)),
    Route("/patients", patients.search, DESK),
    Route("/patients/<int:patient_id>", patients.record, DESK),
    Route("/patients/<int:patient_id>/erase", patients.erase, ADMIN, ("GET", "POST")),
    Route("/patients/<int:patient_id>/texts", patients.texts, DESK, ("POST",)),
    Route("/staff", staff.listing, ADMIN, ("GET", "POST")),
    Route("/staff/<int:member_id>/disable", staff.disable, ADMIN, ("POST",)),
    Route("/staff/<int:member_id>/link", staff.new_link, ADMIN, ("POST",)),
    Route("/setup/clinic", clinic_facts.edit, ADMIN, ("GET", "POST")),
    Route("/setup/visits", visit_types.listing, ADMIN, ("GET", "POST")),
    Route("/setup/visits/<key>", visit_types.edit, ADMIN, ("GET", "POST")),
    Route("/setup/visits/<key>/withdraw", visit_types.withdraw, ADMIN, ("POST",)),
    Route("/setup/doctors", doctors.listing, ADMIN),
    Route("/setup/doctors/new", doctors.new, ADMIN, ("GET", "POST")),
    Route("/setup/doctors/<int:doctor_id>", doctors.edit, ADMIN, ("GET", "POST")),
    Route("/setup/doctors/<int:doctor_id>/overrides", doctors.add_override, ADMIN, ("POST",)),
    Route(
        "/setup/doctors/<int:doctor_id>/overrides/<day>/delete",
        doctors.remove_override,
        ADMIN,
        ("POST",),
    ),
    Route("/setup/doctors/<int:doctor_id>/activate", doctors.activate, ADMIN, ("POST",)),
    Route("/setup/doctors/<int:doctor_id>/deactivate", doctors.deactivate, ADMIN, ("POST",)),
    Route("/setup/doctors/<int:doctor_id>/delete", doctors.delete, ADMIN, ("POST",)),
    Route(
        "/setup/doctors/<int:doctor_id>/calendar-link",
        doctors.new_calendar_link,
        ADMIN,
        ("POST",),
    ),
    Route("/setup/texts", texts.listing, ADMIN),
    Route("/setup/texts/<name>", texts.edit, ADMIN, ("GET", "POST")),
    Route("/setup/instagram", connection.status, ADMIN, ("GET", "POST")),
)
