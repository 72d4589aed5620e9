"""Consent, name and phone: the details form, skipped for patients on file."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import read_answer, read_yes_no
from actions.common import (
    FormQuestion,
    current_patient,
    say_unavailable,
    skips_cleared,
    templates,
)
from actions.parsing import extract_name
from actions.runtime import current_clinic, run_core
from clinic.errors import DatabaseUnavailableError, InvalidNameError, InvalidPhoneError
from clinic.patients import normalize_name, normalize_phone, record_consent, save_details


class ValidateDetailsForm(FormValidationAction):
    def name(self) -> str:
        return "validate_details_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        # Consent stays required (rasa_sdk only returns required slots), but once it
        # is declined, or consent and details are on file, nothing else is asked.
        if tracker.get_slot("consent_given") is False:
            return ["consent_given"]
        try:
            patient = await current_patient(tracker)
        except DatabaseUnavailableError:
            return domain_slots
        if patient is not None and patient.has_consented and patient.has_details:
            return ["consent_given"]
        return domain_slots

    async def extract_consent_given(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("consent_given") is not None:
            return {}
        try:
            patient = await current_patient(tracker)
        except DatabaseUnavailableError:
            patient = None
        if patient is not None and patient.has_consented:
            return {"consent_given": True}  # consent on file: don't ask again
        return read_yes_no(tracker, dispatcher, "consent_given")

    async def extract_patient_name(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return read_answer(tracker, "patient_name")

    async def extract_patient_phone(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return read_answer(tracker, "patient_phone")

    @skips_cleared
    async def validate_consent_given(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is not True:
            return {"consent_given": value}
        try:
            patient = await current_patient(tracker)
            if patient is None or not patient.has_consented:
                await run_core(record_consent, current_clinic(), tracker.sender_id)
        except DatabaseUnavailableError:
            say_unavailable(dispatcher, tracker, "consent")
            return {"consent_given": None}
        return {"consent_given": True}

    @skips_cleared
    def validate_patient_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            return {"patient_name": normalize_name(extract_name(str(value)))}
        except InvalidNameError:
            dispatcher.utter_message(text=templates().render("invalid_name"))
            return {"patient_name": None}

    @skips_cleared
    async def validate_patient_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        clinic = current_clinic()
        try:
            normalize_phone(str(value), clinic.settings.phone_default_region)
        except InvalidPhoneError:
            dispatcher.utter_message(text=templates().render("invalid_phone"))
            return {"patient_phone": None}
        try:
            patient = await current_patient(tracker)
            if patient is None or not patient.has_consented:
                patient = await run_core(record_consent, clinic, tracker.sender_id)
            name = tracker.get_slot("patient_name") or ""
            await run_core(save_details, clinic, patient.id, name, str(value))
        except InvalidNameError:
            return {"patient_name": None, "patient_phone": None}
        except DatabaseUnavailableError:
            say_unavailable(dispatcher, tracker, "details")
            return {"patient_phone": None}
        # Stored in the clinic's database; the conversation need not carry them on.
        return {"patient_name": None, "patient_phone": None}


class ActionAskConsentGiven(FormQuestion):
    question, buttons = "ask_consent", ("consent_yes_button", "consent_no_button")

    def name(self) -> str:
        return "action_ask_consent_given"


class ActionAskPatientName(FormQuestion):
    question = "ask_name"

    def name(self) -> str:
        return "action_ask_patient_name"


class ActionAskPatientPhone(FormQuestion):
    question = "ask_phone"

    def name(self) -> str:
        return "action_ask_patient_phone"
