"""Domain errors. Adapters (actions, CLI) turn them into words for people."""


class ClinicError(Exception):
    """Base class of every error the booking core raises on purpose."""


class SlotTakenError(ClinicError):
    """Another booking holds this slot (found by the check or refused by the database)."""


class SlotUnavailableError(ClinicError):
    """The start is not a bookable slot: off the grid, past, too soon, blocked or too far."""


class NotConsentedError(ClinicError):
    """The patient has not granted consent, so nothing may be booked or stored for them."""


class InvalidPhoneError(ClinicError):
    """The phone number does not parse or is not a valid number of its region."""


class PhoneNeedsAreaCodeError(InvalidPhoneError):
    """The number could be a local one: it needs its area code to be callable."""


class InvalidNameError(ClinicError):
    """The name is empty, too long or holds characters a name can't have."""


class UnknownDoctorError(ClinicError):
    """No active doctor has this id."""


class AppointmentNotFoundError(ClinicError):
    """No active appointment with this id belongs to this patient."""


class DatabaseUnavailableError(ClinicError):
    """The database could not be reached; nothing was written."""
