"""Reading patients' answers: days, slot choices, yes/no. Plain functions, no Rasa.

Patients write "tmrw", "next fri", "the 5th", "2:30pm", "the second one", "yes pls";
each reader returns a value or None, and the validation actions re-prompt on None.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dateparser

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAY_ABBREVIATIONS = {
    "mon": 0, "tue": 1, "tues": 1, "wed": 2, "weds": 2, "thu": 3, "thur": 3, "thurs": 3,
    "fri": 4, "sat": 5, "sun": 6,
}  # fmt: skip
MONTHS = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
]  # fmt: skip
TYPOS = {
    "tmrw": "tomorrow", "tmr": "tomorrow", "tmrow": "tomorrow", "tomoz": "tomorrow",
    "2morrow": "tomorrow", "2moro": "tomorrow", "tmw": "tomorrow", "tdy": "today",
    "2day": "today", "nxt": "next",
}  # fmt: skip
# Words a fuzzy match may correct: "tomorow", "wendsday", "febuary".
FUZZY_WORDS = ["today", "tomorrow", "yesterday", "next", *WEEKDAYS, *MONTHS]
ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
}  # fmt: skip
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
}  # fmt: skip
YES_WORDS = {
    "yes", "y", "yeah", "yea", "yep", "yup", "ya", "sure", "ok", "okay", "k", "fine", "agree",
    "agreed", "accept", "correct", "absolutely", "definitely", "please", "pls", "go", "alright",
    "👍", "✅", "si", "oui",
}  # fmt: skip
NO_WORDS = {
    "no", "n", "nope", "nah", "not", "don't", "dont", "decline", "refuse", "never", "👎", "❌",
}  # fmt: skip

_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)")
_ORDINAL_DAY = re.compile(r"\b(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b")
_IN_DAYS = re.compile(r"\bin\s+(\d{1,2}|a|one|two|three|four|five|six|seven)\s+(day|week)s?\b")
_CLOCK = re.compile(r"\b(\d{1,2})(?:[:.h](\d{2}))?\s*(a\.?m\.?|p\.?m\.?)?(?![\d/])", re.IGNORECASE)


def _words(text: str) -> list[str]:
    """Lower-case words with typos of date words corrected."""
    words = re.findall(r"[a-z0-9']+|[^\sa-z0-9]", text.lower())
    fixed = []
    for word in words:
        word = TYPOS.get(word, word)
        if word.isalpha() and len(word) >= 5 and word not in FUZZY_WORDS:
            close = difflib.get_close_matches(word, FUZZY_WORDS, n=1, cutoff=0.8)
            word = close[0] if close else word
        fixed.append(word)
    return fixed


def parse_day(text: str, today: date, date_order: str = "MDY") -> date | None:
    """The calendar day a message names, preferring the future, or None.

    `today` is the clinic's local date; `date_order` (MDY, DMY or YMD) reads numeric
    dates. Handles relative words, weekdays with "this"/"next", "in 3 days", "the 5th",
    month names and numeric dates.
    """
    if match := _ISO_DATE.search(text):
        try:
            return date.fromisoformat(match.group(1))
        except ValueError:
            return None
    words = _words(text)
    joined = " ".join(words)
    if "day after tomorrow" in joined:
        return today + timedelta(days=2)
    if "tomorrow" in words:
        return today + timedelta(days=1)
    if "today" in words or "tonight" in words:
        return today
    if "yesterday" in words:
        return today - timedelta(days=1)
    if match := _IN_DAYS.search(joined):
        amount = NUMBER_WORDS.get(match.group(1), 1 if match.group(1) == "a" else None)
        amount = amount if amount is not None else int(match.group(1))
        return today + timedelta(days=amount * (7 if match.group(2) == "week" else 1))
    weekday = _weekday_in(words)
    if weekday is not None:
        ahead = (weekday - today.weekday()) % 7
        if ahead == 0 and "next" in words:
            ahead = 7
        return today + timedelta(days=ahead)
    if "next week" in joined:
        return today + timedelta(days=7 - today.weekday())
    return _calendar_date(joined, today, date_order)


def _weekday_in(words: list[str]) -> int | None:
    for word in words:
        if word in WEEKDAYS:
            return WEEKDAYS.index(word)
        if word in WEEKDAY_ABBREVIATIONS:
            return WEEKDAY_ABBREVIATIONS[word]
        if word.endswith("s") and word[:-1] in WEEKDAYS:  # "fridays"
            return WEEKDAYS.index(word[:-1])
    return None


def _calendar_date(text: str, today: date, date_order: str) -> date | None:
    has_month = any(m in text or m[:3] in text.split() for m in MONTHS)
    ordinal = _ORDINAL_DAY.search(text)
    if ordinal and not has_month:
        # "the 5th": this month, or next month once it has passed.
        return _next_day_of_month(int(ordinal.group(1)), today)
    candidate = _date_like_part(text)
    if candidate is None:
        return None
    parsed = dateparser.parse(
        candidate,
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": datetime.combine(today, time(0)),
            "DATE_ORDER": date_order,
            "REQUIRE_PARTS": ["day", "month"],
        },
    )
    return parsed.date() if parsed else None


def _date_like_part(text: str) -> str | None:
    """The piece of a sentence that looks like a date, for dateparser."""
    month = "|".join(m[:3] + r"[a-z]*" for m in MONTHS)
    patterns = [
        rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s*(?:of\s+)?(?:{month})\b(?:\s+\d{{4}})?",
        rf"\b(?:{month})\s*\d{{1,2}}(?:st|nd|rd|th)?\b(?:\s*,?\s*\d{{4}})?",
        r"\b\d{1,2}\s*[/.]\s*\d{1,2}(?:\s*[/.]\s*\d{2,4})?\b",
    ]
    for pattern in patterns:
        if match := re.search(pattern, text):
            return match.group(0).replace(" / ", "/").replace(" . ", ".")
    return None


def _next_day_of_month(day_number: int, today: date) -> date | None:
    year, month = today.year, today.month
    for _ in range(3):
        try:
            candidate = date(year, month, day_number)
        except ValueError:
            candidate = None
        if candidate and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def parse_slot_choice(
    text: str, offered: list[datetime], zone: ZoneInfo | None = None
) -> datetime | None:
    """The offered slot an answer picks: "2", "2:30", "2:30pm", "14:30", "the second one",
    "last", or a quick-reply payload (the slot's ISO start). None if it picks none or several.
    Clock times are read in `zone`, or in each slot's own offset when no zone is given.
    """
    if not offered:
        return None
    cleaned = text.strip().lower()
    if _ISO_DATETIME.fullmatch(text.strip()):  # a quick-reply payload
        try:
            chosen = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return next((slot for slot in offered if slot == chosen), None)
    index = parse_list_index(cleaned, len(offered))
    if index is not None:
        return offered[index]
    return _slot_at_clock_time(cleaned, offered, zone)


def parse_list_index(text: str, count: int) -> int | None:
    """A zero-based index into a numbered list of `count` items, or None."""
    words = re.findall(r"\d+(?:st|nd|rd|th)\b|[a-z]+|\d+", text.lower())
    if not words:
        return None
    if "last" in words:
        return count - 1
    numbers = [int(w) for w in words if w.isdigit()]
    if len(words) == 1 and numbers:  # a bare "3"
        return numbers[0] - 1 if 1 <= numbers[0] <= count else None
    if re.search(r"[:.]\d{2}|\d\s*(am|pm|a\.m|p\.m)|\bat\b", text.lower()):
        return None  # "at 2", "2:30", "2pm" are clock times
    for word in words:
        number = ORDINAL_WORDS.get(word)
        if number is None:
            match = difflib.get_close_matches(word, list(ORDINAL_WORDS), n=1, cutoff=0.8)
            number = ORDINAL_WORDS[match[0]] if match and len(word) >= 5 else None
        if number is None and re.fullmatch(r"\d+(st|nd|rd|th)", word):
            number = int(re.match(r"\d+", word).group(0))
        if (
            number is None
            and word in NUMBER_WORDS
            and (len(words) == 1 or _after_a_label(words, word))
        ):
            number = NUMBER_WORDS[word]  # "two", "option two"; not "the purple one"
        if number is not None:
            return number - 1 if 1 <= number <= count else None
    if len(numbers) == 1 and re.search(r"\b(option|number|no|choice|slot|#)\b|#", text.lower()):
        return numbers[0] - 1 if 1 <= numbers[0] <= count else None
    return None


def _after_a_label(words: list[str], word: str) -> bool:
    position = words.index(word)
    return position > 0 and words[position - 1] in {"option", "number", "no", "choice", "slot"}


def _slot_at_clock_time(
    text: str, offered: list[datetime], zone: ZoneInfo | None
) -> datetime | None:
    text = text.replace("noon", "12:00 pm").replace("midday", "12:00 pm")
    match = _CLOCK.search(text)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    suffix = (match.group(3) or "").replace(".", "").lower()
    if hour > 23 or minute > 59:
        return None
    if suffix == "pm" and hour < 12:
        hour += 12
    elif suffix == "am" and hour == 12:
        hour = 0
    if suffix or hour >= 13 or hour == 0:
        wanted = {(hour, minute)}
    else:
        wanted = {(hour, minute), (hour + 12, minute)}  # "2:30": whichever is offered
    local = [(slot, slot.astimezone(zone) if zone else slot) for slot in offered]
    matches = [slot for slot, wall in local if (wall.hour, wall.minute) in wanted]
    return matches[0] if len(matches) == 1 else None


_EXPLICIT_CLOCK = re.compile(
    r"\b(?:at\s+)?\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)"  # 3pm, at 3:30 pm
    r"|\b(?:at\s+)?\d{1,2}:\d{2}(?![\d/])"  # 14:30, at 2:30
    r"|\bat\s+\d{1,2}(?![\d/:])"  # at 3
    r"|\bnoon\b",
    re.IGNORECASE,
)


# A time after these words bounds a wish ("after 4pm", "before 10:30"): it is no pick.
_RANGE_WORD_BEFORE = re.compile(
    r"\b(?:after|from|past|later than|before|earlier than|by|until|till|til)\s*$",
    re.IGNORECASE,
)


def find_clock_time(text: str) -> str | None:
    """A time of day named in a longer message ("tomorrow at 3pm" -> "at 3pm"), or None.
    Only unmistakable forms count: with am/pm, with minutes, after "at", or "noon"; a time
    that bounds a wish ("anything after 4pm on monday") is not one (`parse_time_of_day`)."""
    for match in _EXPLICIT_CLOCK.finditer(text):
        if not _RANGE_WORD_BEFORE.search(text[: match.start()]):
            return match.group(0)
    return None


def parse_yes_no(text: str, intent: str | None) -> bool | None:
    """True for yes, False for no, None when the answer is neither (or both)."""
    if intent == "affirm":
        return True
    if intent == "deny":
        return False
    words = set(re.findall(r"[a-z']+|[^\s\w]", text.lower()))
    said_yes, said_no = bool(words & YES_WORDS), bool(words & NO_WORDS)
    if said_yes != said_no:
        return said_yes
    return None


_NAME_PREFIX = re.compile(
    r"^(?:(?:hi|hello|hey)[,!.]?\s+)?(?:my\s+(?:full\s+)?name\s+is|name\s*(?:is|:)|"
    r"i\s*am|i'?m|it'?s|this\s+is|call\s+me|me)\s+",
    re.IGNORECASE,
)


def extract_name(text: str) -> str:
    """The name in "my name is Maria Lopez", "I'm Ana.", "Li Wei": prefixes and end
    punctuation removed; what remains is checked by `clinic.patients.normalize_name`."""
    name = _NAME_PREFIX.sub("", text.strip(), count=1)
    return name.strip().rstrip(".!")


_SOONEST = re.compile(
    r"\b(asap|a\.s\.a\.p|as soon as|soonest|earliest|first (?:available|free|open)|"
    r"next available|right away|urgent(?:ly)?|emergency)\b",
    re.IGNORECASE,
)
_AFTER_BEFORE = re.compile(
    r"\b(after|from|past|later than|before|earlier than|by)\s+"
    r"(noon|midday|\d{1,2}(?:[:.]\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)?)(?![\d/])",
    re.IGNORECASE,
)
_DAY_PARTS = {
    "morning": "morning", "mornings": "morning", "am": "morning",
    "afternoon": "afternoon", "afternoons": "afternoon", "arvo": "afternoon", "pm": "afternoon",
    "evening": "evening", "evenings": "evening", "night": "evening", "tonight": "evening",
}  # fmt: skip
_LATEST = re.compile(r"\b(latest|last (?:one|appointment|slot|time)|late as possible)\b", re.I)


def wants_soonest(text: str) -> bool:
    """ "asap", "soonest", "first available": the earliest free times, whatever the day."""
    return bool(_SOONEST.search(text))


def parse_time_of_day(text: str) -> str | None:
    """A time-of-day wish in a message, as a `clinic.preferences.TimeOfDay` code:
    "morning", "afternoon", "evening", "after 15:00", "before 12:00", "earliest", "latest".
    "after 3" means 3 PM: clinics open in the morning."""
    if match := _AFTER_BEFORE.search(text):
        word, clock = match.group(1).lower(), match.group(2).lower().replace(".", ":")
        at = _wall_clock(clock)
        if at is not None:
            after = word in {"after", "from", "past", "later than"}
            return f"{'after' if after else 'before'} {at}"
    if _LATEST.search(text):
        return "latest"
    if wants_soonest(text) or re.search(r"\bearly\b", text, re.IGNORECASE):
        return "earliest"
    for word in re.findall(r"[a-z]+", text.lower()):
        fixed = word if len(word) < 5 else _close(word, list(_DAY_PARTS))
        if fixed in _DAY_PARTS and (len(word) > 2 or word in {"am", "pm"} and len(text) < 12):
            return _DAY_PARTS[fixed]
    return None


def _wall_clock(clock: str) -> str | None:
    """'3' -> '15:00', '10am' -> '10:00', 'noon' -> '12:00'."""
    if clock in {"noon", "midday"}:
        return "12:00"
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*(a:?m:?|p:?m:?)?", clock.replace(" ", ""))
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    suffix = (match.group(3) or "").replace(":", "")
    if suffix == "pm" and hour < 12 or not suffix and 1 <= hour <= 7:
        hour += 12
    elif suffix == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def _close(word: str, choices: list[str]) -> str:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.8)
    return found[0] if found else word


_QUESTION_START = re.compile(
    r"^\s*(what|whats|what's|where|wheres|when|how|hows|why|who|which|is|are|do|does|did|can|"
    r"could|will|would|should|may)\b",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    """Plainly a question: it asks ("?") or opens like one ("how much…", "do you…")."""
    return "?" in text or bool(_QUESTION_START.match(text))


def doctor_named(text: str, doctors: list[tuple[int, str]]) -> int | None:
    """The doctor a message names ("Dr. Smith", "smith", "dr smiht"): their id, or None.
    `doctors` are (id, name) pairs."""
    words = [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in {"doctor"}]
    for doctor_id, name in doctors:
        parts = [p for p in re.findall(r"[a-z]+", name.lower()) if p not in {"dr", "doctor"}]
        if any(difflib.get_close_matches(p, words, n=1, cutoff=0.8) for p in parts if len(p) >= 3):
            return doctor_id
    return None


_ANY_DOCTOR = re.compile(
    r"\b(any(?:one|body)?|whoever|no preference|doesn'?t matter|don'?t (?:care|mind)|either)\b",
    re.IGNORECASE,
)


def wants_any_doctor(text: str) -> bool:
    return bool(_ANY_DOCTOR.search(text))
