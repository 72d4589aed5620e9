"""The clinic's profile: its facts for the questions patients ask, its own topics, and the
visit types it offers. The database holds it (`clinic/profile_store.py`); this module is
the shape, and the YAML form of `python -m clinic profile import/export`."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

# The facts, in the order the console and the YAML show them; languages is a list.
FACTS = (
    "name",
    "address",
    "map_link",
    "phone",
    "languages",
    "insurance",
    "parking",
    "accessibility",
    "instagram_handle",
    "currency",
)
DEFAULT_CURRENCY = "$"
MIN_MINUTES, MAX_MINUTES = 5, 480
EXPORT_HEADER = (
    "# The clinic's facts, topics and visit types, as `python -m clinic profile export` writes\n"
    "# them and `python -m clinic profile import FILE` reads them. The clinic's database\n"
    "# holds them, and the staff console edits them there; opening hours come from the\n"
    "# doctors' hours. A visit type's `minutes` is its length, `words` how patients name it.\n"
)


class ProfileError(ValueError):
    """The profile holds something that can't be used; the message says what."""


@dataclass(frozen=True)
class VisitType:
    key: str
    name: str
    minutes: int
    price: str  # a decimal number, without the currency: "80", "49.50"
    words: tuple[str, ...]
    price_from: bool = False  # "from $150": the price can be higher

    def price_text(self, currency: str = DEFAULT_CURRENCY) -> str:
        return f"{'from ' if self.price_from else ''}{currency}{self.price}"


@dataclass(frozen=True)
class Topic:
    words: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Profile:
    name: str = ""
    address: str = ""
    map_link: str = ""
    phone: str = ""
    languages: tuple[str, ...] = ()
    insurance: str = ""
    parking: str = ""
    accessibility: str = ""
    instagram_handle: str = ""
    currency: str = DEFAULT_CURRENCY
    visit_types: tuple[VisitType, ...] = ()
    topics: tuple[Topic, ...] = field(default=())

    def visit_type(self, key: str | None) -> VisitType:
        """The visit type with this key; the first (the default visit) for None."""
        if not self.visit_types:
            raise ProfileError("the clinic has no visit types yet")
        if key is None:
            return self.visit_types[0]
        for visit_type in self.visit_types:
            if visit_type.key == key:
                return visit_type
        raise ProfileError(f"no visit type {key!r}")

    def price_of(self, visit: VisitType) -> str:
        return visit.price_text(self.currency)


def canonical_price(raw: object) -> str:
    """A price as stored: a number of at most two decimals, "80" or "49.50"."""
    try:
        price = Decimal(str(raw).strip().lstrip("$€£"))
    except InvalidOperation as error:
        raise ProfileError("a price must be a number, like 80 or 49.50") from error
    if not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
        raise ProfileError("a price must be a number, like 80 or 49.50")
    return str(price.quantize(Decimal(1))) if price == price.to_integral() else f"{price:.2f}"


def visit_type_from(item: object, position: str = "") -> VisitType:
    """A visit type from its YAML (or form) fields, checked."""
    if not isinstance(item, dict) or not {"key", "name", "minutes", "price"} <= set(item):
        raise ProfileError(f"visit type {position}: needs key, name, minutes and price")
    minutes = item["minutes"]
    if not isinstance(minutes, int) or not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ProfileError(
            f"visit type {item['key']!r} must last {MIN_MINUTES} to {MAX_MINUTES} minutes"
        )
    key = str(item["key"]).strip()
    if not key or not key.replace("_", "").isalnum():
        raise ProfileError(f"visit type key {key!r}: letters, digits and _ only")
    return VisitType(
        key=key,
        name=str(item["name"]).strip(),
        minutes=minutes,
        price=canonical_price(item["price"]),
        words=tuple(str(w).strip().lower() for w in item.get("words") or [] if str(w).strip()),
        price_from=bool(item.get("price_from", False)),
    )


def profile_from_yaml(text: str) -> Profile:
    """Reads and checks the YAML of `profile export` (every fact optional but the name)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ProfileError("the profile must map fact names to facts")
    unknown = set(data) - {*FACTS, "visit_types", "topics"}
    if unknown:
        raise ProfileError(f"unknown entries: {', '.join(sorted(unknown))}")
    if not str(data.get("name") or "").strip():
        raise ProfileError("the profile needs the clinic's name")
    visit_types = tuple(
        visit_type_from(item, str(n)) for n, item in enumerate(data.get("visit_types") or [], 1)
    )
    keys = [v.key for v in visit_types]
    if len(set(keys)) != len(keys):
        raise ProfileError("two visit types share a key")
    topics = []
    for n, topic in enumerate(data.get("topics") or [], 1):
        if not isinstance(topic, dict) or not topic.get("words") or not topic.get("answer"):
            raise ProfileError(f"topic {n}: needs words and an answer")
        words = tuple(str(w).strip().lower() for w in topic["words"] if str(w).strip())
        topics.append(Topic(words, str(topic["answer"]).strip()))
    facts: dict[str, Any] = {key: str(data.get(key) or "").strip() for key in FACTS}
    facts["languages"] = tuple(str(x).strip() for x in data.get("languages") or [] if x)
    facts["currency"] = facts["currency"] or DEFAULT_CURRENCY
    return Profile(**facts, visit_types=visit_types, topics=tuple(topics))


def load_profile(path: Path) -> Profile:
    return profile_from_yaml(Path(path).read_text(encoding="utf-8"))


def profile_to_yaml(profile: Profile) -> str:
    """The YAML `profile export` prints: the same profile always gives the same bytes."""
    data: dict[str, Any] = {}
    for key in FACTS:
        value = getattr(profile, key)
        data[key] = list(value) if key == "languages" else value
    data["visit_types"] = [
        {
            "key": v.key,
            "name": v.name,
            "minutes": v.minutes,
            "price": _number(v.price),
            **({"price_from": True} if v.price_from else {}),
            "words": list(v.words),
        }
        for v in profile.visit_types
    ]
    data["topics"] = [{"words": list(t.words), "answer": t.answer} for t in profile.topics]
    body = yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )
    return EXPORT_HEADER + body


def _number(price: str) -> int | float:
    return int(price) if "." not in price else float(price)
