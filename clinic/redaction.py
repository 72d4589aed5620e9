"""Log redaction: what patients wrote, what the bot said to them, their slot values and their
Instagram ids never reach a log line, at any level, from our code or from Rasa's and rasa-sdk's.

Rasa logs message texts, the bot's utterances, parse results, slot values and conversation ids
at DEBUG (and a typed "/text" that is not an intent in a warning). Two nets catch them:
- the shapes Rasa prints them in, masked whatever they hold: the text of every `BotUttered`
  and `UserUttered`, every `SlotSet` value, the processor's slot listing, "user message '…'",
  "'text': '…'", "conversation '…'";
- the values themselves, for any other line: each server registers what it is about to handle
  (the sender id, the text and its words, slot values, also inside lists and dicts), and every
  log line has them masked, in any letter case, as they are and as JSON escapes them.
Installed once per server process, as a log record factory, so every handler and every
formatter sees only the redacted line.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from functools import lru_cache

MASK = "[redacted]"
# A first name can be two letters ("Al"); values are only ever masked as whole words.
MIN_LENGTH = 2
# Numbers shorter than this ("2", a list choice) reveal nothing and would blank every number.
MIN_DIGITS = 3
# Words patients type that are not personal, and would only make logs unreadable.
_HARMLESS = frozenset({
    "a", "an", "the", "i", "me", "my", "you", "your", "we", "our", "is", "am", "are", "was",
    "be", "to", "of", "in", "on", "at", "for", "and", "or", "but", "not", "no", "yes", "ok",
    "okay", "hi", "hello", "hey", "please", "pls", "thanks", "thank", "bye", "book", "booking",
    "appointment", "cancel", "stop", "help", "today", "tomorrow", "monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday", "sunday", "morning", "afternoon", "evening",
    "next", "this", "that", "it", "can", "could", "would", "like", "want", "need", "see",
    "doctor", "time", "day", "what", "when", "where", "which", "who", "how", "do", "does",
    "delete", "data", "person", "talk",
})  # fmt: skip
_WORD = re.compile(rf"[\w+@.'’-]{{{MIN_LENGTH},}}")
# Shapes in which Rasa and rasa-sdk print what a patient or the bot said, or a slot holds:
# (before, the value, after).
_SHAPES = [
    re.compile(p, re.IGNORECASE | re.DOTALL)
    for p in (
        r"(BotUttered\(')(.*?)(', \{)",  # repr: the whole text, apostrophes and all
        r"(BotUttered\(text: )(.*?)(, data: )",
        r"(UserUttered\(text: )(.*?)(, intent: )",
        r"(, entities: )(.*?)(, use_text_for_featurization)",
        r"(SlotSet\(key: \w+, value: )(.*?)(\)(?=[\"',\]]|$))",
        r"((?:\\t|\t)\w+: )(?!None\b)([^\\\"\n]*)()",  # the processor's "\tslot: value"
        r"(user message |text[\"']?: ?|message[\"']?: ?|value[\"']?: ?|slot values?:? ?)"
        r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')()",  # quoted
        r"((?:text|value|sender_id|sender|conversation_id|conversation id|recipient)=)"
        r"([^\s,)]+)()",  # key=value
        r"((?:conversation|sender|tracker)(?: id| ID)? ')([^']*)(')",
    )
]


class Redactor:
    """Masks registered values (the newest `capacity` of them) and Rasa's value shapes.

    Values are indexed by their words (runs of word characters, in lower case): a line is
    matched only against the values whose words it holds, so its cost does not grow with
    the values kept, and registering one compiles nothing."""

    def __init__(self, capacity: int = 4096):
        self._values: OrderedDict[str, None] = OrderedDict()
        self._by_word: dict[str, set[str]] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def register(self, *values: object) -> None:
        """Values about to be handled (a text also for each of its words; the strings
        inside lists and dicts)."""
        fresh = set()
        for value in (v.strip() for v in _strings(values)):
            for candidate in (value, *_WORD.findall(value)):
                if _maskable(candidate):
                    fresh.update({candidate, json.dumps(candidate)[1:-1]})
        with self._lock:
            for value in fresh:
                if value not in self._values:
                    for word in _index_words(value):
                        self._by_word.setdefault(word, set()).add(value)
                self._values[value] = None
                self._values.move_to_end(value)
            while len(self._values) > self._capacity:
                self._forget(self._values.popitem(last=False)[0])

    def redact(self, line: str) -> str:
        with self._lock:
            found = [self._by_word.get(word, ()) for word in _index_words(line)]
            # A value with no word characters (emoji) is found under "".
            candidates = frozenset().union(*found, self._by_word.get("", ()))
        if candidates:
            line = _pattern_for(candidates).sub(MASK, line)
        for shape in _SHAPES:
            line = shape.sub(_mask_value, line)
        return line

    def _forget(self, value: str) -> None:
        for word in _index_words(value):
            values = self._by_word.get(word, set())
            values.discard(value)
            if not values:
                self._by_word.pop(word, None)


# A registered value found in a line is whole there, so each of its runs of word
# characters is a run of the line too: the index and the lookup use the same runs.
_RUN = re.compile(r"\w+")


def _index_words(text: str) -> set[str]:
    return set(_RUN.findall(text.lower())) or {""}


@lru_cache(maxsize=256)
def _pattern_for(values: frozenset[str]) -> re.Pattern:
    """The values as whole words, in any letter case, the longest first."""
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _mask_value(match: re.Match) -> str:
    before, _, after = match.groups()
    return before + MASK + after


def _strings(value: object) -> Iterator[str]:
    """The strings in a value, also inside lists, tuples and dicts (slot values as JSON)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        yield from _strings(list(value.values()))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _maskable(value: str) -> bool:
    """Not a harmless word, nor a short number."""
    if len(value) < MIN_LENGTH or value.lower() in _HARMLESS:
        return False
    return not (value.isdigit() and len(value) < MIN_DIGITS)


def install(redactor: Redactor) -> None:
    """Every log record of the process is redacted as it is made (once per process)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redactor", None) is redactor:
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            record.msg = redactor.redact(record.getMessage())
            record.args = ()
            if record.exc_info:
                record.exc_text = redactor.redact(
                    logging.Formatter().formatException(record.exc_info)
                )
        except Exception:  # noqa: BLE001 - a line that can't be redacted is not logged whole
            record.msg, record.args = "[a log line that could not be redacted]", ()
        return record

    factory.redactor = redactor  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# The process's one redactor: logging is process-wide, and so is what it must hide.
REDACTOR = Redactor()
