"""Consent, name and phone: the details form, skipped for patients on file."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.answers import read_yes_no, typed_answer
from actions.common import FormQuestion, UsesClinic, skips_cleared
from actions.parsing import extract_name
from clinic.application import PatientView
from clinic.errors import (
    DatabaseUnavailableError,
    InvalidNameError,
    InvalidPhoneError,
    PhoneNeedsAreaCodeError,
)
from clinic.patients import normalize_name, normalize_phone

_UNKNOWN = object()
# The patient as read for the message being handled: rasa-sdk asks the form's
# required slots three times per message, and the database once.
_patient_this_message: ContextVar[Any] = ContextVar("patient_this_message", default=_UNKNOWN)


class ValidateDetailsForm(UsesClinic, FormValidationAction):
    def name(self) -> str:
        return "validate_details_form"

    async def run(self, dispatcher, tracker, domain):  # noqa: ANN001 - rasa-sdk's signature
        token = _patient_this_message.set(_UNKNOWN)
        try:
            return await super().run(dispatcher, tracker, domain)
        finally:
            _patient_this_message.reset(token)

    async def _patient(self, tracker: Tracker) -> PatientView | None:
        """The patient on file, read once per message (None also when the database is down)."""
        patient = _patient_this_message.get()
        if patient is _UNKNOWN:
            try:
                patient = await self.core(self.app.patient, tracker.sender_id)
            except DatabaseUnavailableError:
                patient = None
            _patient_this_message.set(patient)
        return patient

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
        patient = await self._patient(tracker)
        if patient is not None and patient.on_file:
            return ["consent_given"]
        return domain_slots

    async def extract_consent_given(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot("consent_given") is not None:
            return {}
        patient = await self._patient(tracker)
        if patient is not None and patient.consented:
            return {"consent_given": True}  # consent on file: don't ask again
        return read_yes_no(tracker, dispatcher, "consent_given", self.texts)

    extract_patient_name = typed_answer("patient_name")

    extract_patient_phone = typed_answer("patient_phone")

    @skips_cleared
    async def validate_consent_given(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is not True:
            return {"consent_given": value}
        patient = await self._patient(tracker)
        if patient is None or not patient.consented:
            try:
                patient = await self.core(self.app.grant_consent, tracker.sender_id)
            except DatabaseUnavailableError:
                self.say_unavailable(dispatcher, tracker, "consent")
                return {"consent_given": None}
            _patient_this_message.set(patient)
        return {"consent_given": True}

    @skips_cleared
    def validate_patient_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            return {"patient_name": normalize_name(extract_name(str(value)))}
        except InvalidNameError:
            dispatcher.utter_message(text=self.texts.render("invalid_name"))
            return {"patient_name": None}

    @skips_cleared
    async def validate_patient_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            normalize_phone(str(value), self.app.settings.phone_default_region)
        except PhoneNeedsAreaCodeError:
            dispatcher.utter_message(text=self.texts.render("phone_needs_area_code"))
            return {"patient_phone": None}
        except InvalidPhoneError:
            dispatcher.utter_message(text=self.texts.render("invalid_phone"))
            return {"patient_phone": None}
        name = tracker.get_slot("patient_name") or ""
        try:
            patient = await self.core(self.app.save_details, tracker.sender_id, name, str(value))
        except InvalidNameError:
            return {"patient_name": None, "patient_phone": None}
        except DatabaseUnavailableError:
            self.say_unavailable(dispatcher, tracker, "details")
            return {"patient_phone": None}
        _patient_this_message.set(patient)
        refused = tracker.get_slot("texts_refused")
        if refused is not None:  # said about texts before the details were stored
            await self.core(self.app.choose_texts, tracker.sender_id, not refused)
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
