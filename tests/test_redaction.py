"""Log redaction: registered values and Rasa's shapes of them never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest

from clinic.redaction import MASK, Redactor, _pattern_for, install


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


BOT_SAID = "Welcome back, Patricia! What's your\nphone? (202) 555-0143"


@pytest.mark.parametrize(
    "line",
    [
        # rasa.core.processor at DEBUG, as the structlog JSON line renders the event's repr
        json.dumps({"rasa_events": [f"BotUttered('{BOT_SAID}', {{}}, {{}}, 17.0)"]}),
        f"BotUttered('{BOT_SAID}', {{\"buttons\": null}}, {{}}, 1770037200.0)",
        f"Action ended with events '[BotUttered(text: {BOT_SAID}, data: {{}}, metadata: {{}})]'",
        f"UserUttered(text: {BOT_SAID}, intent: greet, entities: Patricia (Type: name, "
        "Role: None, Group: None), use_text_for_featurization: False)",
        '{"slot_values": "\\tconsent_given: True\\n\\tpatient_name: Patricia Testcase\\n"}',
        "SlotSet(key: patient_name, value: Testcase, Patricia (202) 555-0143)",
    ],
    ids=["processor-json", "repr", "str", "user-uttered", "slot-listing", "slot-set"],
)
def test_what_the_bot_said_and_slot_values_are_masked_by_their_shape(line):
    """No value registered: Rasa's event shapes alone hide the whole text."""
    redacted = Redactor().redact(line)
    for word in ("Patricia", "Testcase", "phone", "555"):
        assert word not in redacted
    assert MASK in redacted


def test_the_processors_slot_listing_keeps_which_slots_are_empty():
    line = '{"slot_values": "\\tpatient_name: None\\n\\tpatient_phone: +12025550143\\n"}'
    assert Redactor().redact(line) == (
        '{"slot_values": "\\tpatient_name: None\\n\\tpatient_phone: [redacted]\\n"}'
    )


def test_registered_values_are_masked_in_any_case_in_json_and_short_names_as_words():
    redactor = Redactor()
    redactor.register({"patient": {"name": "maria lópez", "nicknames": ["Al"]}}, ["José"])
    line = (
        'MARIA López: {"name": "maria l\\u00f3pez"}, Jos\\u00e9, al, AL; '
        "but not Alma, total or al_pha"
    )
    assert redactor.redact(line) == (
        f'{MASK}: {{"name": "{MASK}"}}, {MASK}, {MASK}, {MASK}; but not Alma, total or al_pha'
    )


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


def test_a_line_meets_only_the_values_whose_words_it_holds():
    """Every turn registers new words: no line may cost more, nor compile anything, for
    the thousands of values kept."""
    redactor = Redactor()
    for number in range(4096):
        redactor.register(f"IG_TEST_{number}")
    compiled = _pattern_for.cache_info().misses
    line = "instagram item processed: text from 3f2a9c1b0d"
    assert redactor.redact(line) == line
    assert _pattern_for.cache_info().misses == compiled
    assert redactor.redact("from IG_TEST_7 and ig_test_4095") == f"from {MASK} and {MASK}"


def test_the_oldest_values_are_forgotten_past_the_capacity():
    redactor = Redactor(capacity=2)
    for value in ("PATIENT_TEST", "IG_TEST_1", "IG_TEST_2"):
        redactor.register(value)
    assert redactor.redact("PATIENT_TEST, IG_TEST_1") == f"PATIENT_TEST, {MASK}"
    redactor.register("IG_TEST_3")
    assert redactor.redact("IG_TEST_1 IG_TEST_2 IG_TEST_3") == f"IG_TEST_1 {MASK} {MASK}"
