"""Log redaction: registered values and Rasa's shapes of them never reach a log line."""

from __future__ import annotations

import logging

import pytest

from clinic.redaction import MASK, Redactor, install


@pytest.fixture
def redactor() -> Redactor:
    made = Redactor()
    made.register("17841400008475512", "my name is PATIENT_TEST", "+1 202 555 0143", "2")
    return made


@pytest.mark.parametrize(
    ("line", "hidden"),
    [
        ("Received user message 'my name is PATIENT_TEST' with intent", "PATIENT_TEST"),
        ("Acquired lock for conversation '17841400008475512'.", "17841400008475512"),
        ("SlotSet(key: patient_name, value: PATIENT_TEST)", "PATIENT_TEST"),
        ("the phone +1 202 555 0143, again 202 555 0143", "555"),
        ('{"parse_data_text": "an unregistered text", "event": "parse"}', "unregistered"),
        ("UserUttered(text: call me at home, intent: give_phone)", "home"),
    ],
)
def test_values_and_their_shapes_are_masked(redactor, line, hidden):
    redacted = redactor.redact(line)
    assert hidden not in redacted
    assert MASK in redacted


def test_harmless_words_and_short_values_stay_readable(redactor):
    line = "Predicted next action 'action_book_appointment' for my booking, appointment=2"
    assert redactor.redact(line) == line


def test_installed_it_redacts_every_record_and_its_traceback(redactor, caplog):
    before = logging.getLogRecordFactory()
    install(redactor)
    try:
        logger = logging.getLogger("tests.redaction")
        with caplog.at_level(logging.DEBUG):
            logger.debug("got %s from %s", "my name is PATIENT_TEST", "17841400008475512")
            try:
                raise ValueError("PATIENT_TEST typed a bad date")
            except ValueError:
                logger.exception("turn failed")
        text = caplog.text
    finally:
        logging.setLogRecordFactory(before)
    assert "PATIENT_TEST" not in text and "17841400008475512" not in text
    assert text.count(MASK) >= 3


def test_registering_known_values_again_keeps_the_compiled_pattern():
    """Each turn registers its sender again: recompiling hundreds of values for it cost
    milliseconds of every turn that logged a line."""
    redactor = Redactor()
    redactor.register("IG_TEST_1", "PATIENT_TEST")
    assert redactor.redact("from IG_TEST_1") == f"from {MASK}"
    compiled = redactor._compiled()
    redactor.register("IG_TEST_1")
    assert redactor._compiled() is compiled
    redactor.register("IG_TEST_2")
    assert redactor._compiled() is not compiled
    assert redactor.redact("IG_TEST_1 and IG_TEST_2") == f"{MASK} and {MASK}"
