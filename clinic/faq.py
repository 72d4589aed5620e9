"""Answers to the questions clinics really get, from the profile and the schedule.

Pure functions: the topic a question asks about (by its words, typos forgiven), the clinic's
opening hours from its doctors' working hours and clinic-wide blocks, and the answer in the
words of templates.yml. Worked example: "r u open on saturday?" -> hours, on Sat, Feb 7 ->
"Sorry, we're closed on Sat, Feb 7. We're open Mon–Fri 9:00 AM–5:00 PM."
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from clinic.profile import Profile, Topic, VisitType
from clinic.templates import WEEKDAYS, Templates, format_clock, format_day

# The words that ask for each topic; the first topic with the most of them wins.
TOPIC_WORDS = {
    "hours": {"open", "opening", "opens", "close", "closing", "closes", "closed", "hours",
              "hour", "schedule", "weekend", "holiday", "holidays", "working"},
    "location": {"where", "address", "located", "location", "directions", "map", "street",
                 "get there", "find you", "area", "neighborhood"},
    "prices": {"price", "prices", "cost", "costs", "much", "fee", "fees", "pay", "payment",
               "cash", "card", "charge", "expensive", "cheap", "$", "rate", "rates"},
    "insurance": {"insurance", "insured", "covered", "coverage", "medicare", "medicaid",
                  "aetna", "cigna", "blue", "copay", "plan", "plans"},
    "parking": {"park", "parking", "car", "garage", "lot"},
    "languages": {"language", "languages", "speak", "spanish", "english", "español",
                  "espanol", "french", "habla", "hablan", "translator", "interpreter"},
    "phone": {"phone", "telephone", "tel", "number", "call", "ring"},
    "accessibility": {"wheelchair", "accessible", "accessibility", "stairs", "elevator",
                      "lift", "ramp", "disabled", "disability", "step-free", "steps"},
    "services": {"services", "service", "offer", "offers", "treat", "kind", "kinds", "types",
                 "type", "doctors", "doctor", "specialist", "specialists", "visits", "tests",
                 "test", "who"},
}  # fmt: skip
# Question words that lean to a topic but lose to a word naming one: "where do I park?"
# asks about parking, not the address.
WEAK_WORDS = {"where", "who", "much", "kind", "type", "types", "number", "plan", "area"}
_VOCABULARY = sorted({word for words in TOPIC_WORDS.values() for word in words if len(word) > 4})


@dataclass(frozen=True)
class OpeningHours:
    """Weekday (0 = Monday) -> the clinic's open ranges, whole days it is closed, and
    coming dates whose hours differ from their weekday's (the doctors' date overrides)."""

    weekly: dict[int, list[tuple[time, time]]]
    closed_days: dict[date, str]  # day -> reason
    special_days: dict[date, list[tuple[time, time]]] = field(default_factory=dict)

    def on(self, day: date) -> list[tuple[time, time]]:
        if day in self.special_days:
            return self.special_days[day]
        return self.weekly.get(day.weekday(), [])


def merge_ranges(ranges: list[tuple[time, time]]) -> list[tuple[time, time]]:
    """Overlapping or touching ranges of several doctors become the clinic's ranges."""
    merged: list[tuple[time, time]] = []
    for opens, closes in sorted(ranges):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def topic_of(text: str, profile: Profile) -> str | Topic | None:
    """What the question asks about: a topic name, one of the profile's own topics, or None."""
    words = _words(text)
    scores: dict[str | Topic, int] = {}
    for topic in profile.topics:
        scores[topic] = sum(2 for word in topic.words if _has(word, text, words))
    for name, topic_words in TOPIC_WORDS.items():
        scores[name] = sum(
            1 if word in WEAK_WORDS else 2 for word in topic_words if _has(word, text, words)
        )
    if scores["prices"] and visit_type_named(text, profile) is not None:
        scores["prices"] += 2  # "how much is a procedure": a price, not the list of visits
    best = max(scores.values(), default=0)
    if best == 0:
        return None
    return next(topic for topic, score in scores.items() if score == best)


def visit_type_named(text: str, profile: Profile) -> VisitType | None:
    """The visit type the words name ("follow up", "a consult", "procedure"), if one: by
    its name, its key or the words patients use for it."""
    words = _words(text)
    for visit_type in profile.visit_types:
        names = (visit_type.name.lower(), visit_type.key.replace("_", " "), *visit_type.words)
        if any(_has(word, text, words) for word in names):
            return visit_type
    return None


def answer(
    text: str,
    profile: Profile,
    hours: OpeningHours,
    templates: Templates,
    day: date | None,
    doctors: list[str],
) -> str | None:
    """The answer to a question about the clinic, or None when the profile can't answer it.
    `day` is the day the question names, if any ("are you open on saturday?"). A message
    with several questions ("how much is a visit and do you take Cigna?") gets every
    answer, in the order asked, in one text."""
    answers = []
    topics = [topic for topic in (topic_of(c, profile) for c in _clauses(text)) if topic]
    if len(set(topics)) < 2:
        topics = [topic_of(text, profile)]  # one question: read as a whole
    for topic in dict.fromkeys(topics):  # each topic once, in order
        clause = text if len(topics) == 1 else _clause_of(text, topic, profile)
        reply = _answer_topic(topic, clause, profile, hours, templates, day, doctors)
        if reply:
            answers.append(reply)
    return " ".join(answers) or None


def _answer_topic(
    topic: str | Topic | None,
    text: str,
    profile: Profile,
    hours: OpeningHours,
    templates: Templates,
    day: date | None,
    doctors: list[str],
) -> str | None:
    """One topic's answer; None for a fact the clinic has not given."""
    if isinstance(topic, Topic):
        return topic.answer
    if topic == "hours":
        return _hours_answer(hours, templates, day) if hours.weekly else None
    if topic == "location":
        if not profile.address:
            return None
        if not profile.map_link:
            return templates.render("faq_location_no_map", address=profile.address)
        return templates.render("faq_location", address=profile.address, map_link=profile.map_link)
    if topic == "prices":
        named = visit_type_named(text, profile)
        if named is not None:
            price = profile.price_of(named)
            return templates.render("faq_price_of", visit=named.name, price=price)
        if not profile.visit_types:
            return None
        prices = ", ".join(f"{v.name} {profile.price_of(v)}" for v in profile.visit_types)
        return templates.render("faq_prices", prices=prices)
    if topic in ("insurance", "parking", "accessibility"):
        return getattr(profile, topic) or None
    if topic == "languages":
        if not profile.languages:
            return None
        return templates.render("faq_languages", languages=_listing(profile.languages))
    if topic == "phone":
        return templates.render("faq_phone", phone=profile.phone) if profile.phone else None
    if topic == "services":
        if not profile.visit_types and not doctors:
            return None
        visits = _listing([v.name for v in profile.visit_types])
        return templates.render("faq_services", visits=visits, doctors=_listing(doctors))
    return None


# Where a message asks its next question: "and", "&", "also", a question mark, a semicolon.
_CLAUSE_BREAK = re.compile(r"\?|;|\s(?:and|&|also|plus)\s|,\s*(?:and\s)?(?=\w)", re.IGNORECASE)


def _clauses(text: str) -> list[str]:
    return [part.strip() for part in _CLAUSE_BREAK.split(text) if part and part.strip()]


def _clause_of(text: str, topic: str | Topic, profile: Profile) -> str:
    """The first clause of `text` that asks about `topic` (a price named in it counts)."""
    return next((c for c in _clauses(text) if topic_of(c, profile) == topic), text)


def _hours_answer(hours: OpeningHours, templates: Templates, day: date | None) -> str:
    weekly = templates.render("faq_hours", hours=describe_week(hours.weekly))
    if day is not None:
        ranges = [] if day in hours.closed_days else hours.on(day)
        if not ranges:
            return f"{templates.render('faq_closed_on_day', day=format_day(day))} {weekly}"
        return templates.render("faq_hours_on_day", day=format_day(day), hours=_ranges(ranges))
    closures = describe_closures(hours.closed_days)
    return f"{weekly} {templates.render('faq_closures', closures=closures)}" if closures else weekly


def describe_week(weekly: dict[int, list[tuple[time, time]]]) -> str:
    """'Mon–Fri 9:00 AM–12:00 PM and 1:00 PM–5:00 PM, Sat 9:00 AM–12:00 PM'"""
    groups: list[tuple[int, int, str]] = []
    for weekday in range(7):
        ranges = weekly.get(weekday)
        if not ranges:
            continue
        shown = _ranges(ranges)
        if groups and groups[-1][1] == weekday - 1 and groups[-1][2] == shown:
            groups[-1] = (groups[-1][0], weekday, shown)
        else:
            groups.append((weekday, weekday, shown))
    return ", ".join(
        f"{WEEKDAYS[first]}{'' if first == last else '–' + WEEKDAYS[last]} {shown}"
        for first, last, shown in groups
    )


def describe_closures(closed_days: dict[date, str]) -> str:
    """'Dec 24–27 (Holiday), Jan 1 (New Year)': runs of closed days, with their reason."""
    runs: list[list] = []
    for day in sorted(closed_days):
        reason = closed_days[day]
        if runs and runs[-1][1] == day - timedelta(days=1) and runs[-1][2] == reason:
            runs[-1][1] = day
        else:
            runs.append([day, day, reason])
    return ", ".join(
        _span(first, last) + (f" ({reason})" if reason else "") for first, last, reason in runs
    )


def _span(first: date, last: date) -> str:
    start = format_day(first).split(", ")[1]  # 'Dec 24'
    if first == last:
        return start
    end = str(last.day) if last.month == first.month else format_day(last).split(", ")[1]
    return f"{start}–{end}"


def _ranges(ranges: list[tuple[time, time]]) -> str:
    return " and ".join(f"{format_clock(opens)}–{format_clock(closes)}" for opens, closes in ranges)


def _listing(items: list[str] | tuple[str, ...]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _words(text: str) -> set[str]:
    """The words of a message, typos of our vocabulary corrected ("opning" -> "opening")."""
    words = set()
    for word in re.findall(r"[\w$']+", text.lower()):
        words.add(word)
        if len(word) > 4 and word not in _VOCABULARY:
            words.update(difflib.get_close_matches(word, _VOCABULARY, n=1, cutoff=0.85))
    return words


def _has(phrase: str, text: str, words: set[str]) -> bool:
    if " " in phrase or "-" in phrase:
        return phrase in text.lower()
    return phrase in words or (
        len(phrase) > 4 and bool(difflib.get_close_matches(phrase, list(words), n=1, cutoff=0.85))
    )
