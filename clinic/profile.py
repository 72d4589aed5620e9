"""The clinic's profile (clinic/profile.yml, or the clinic's own CLINIC_PROFILE): its facts
for the questions patients ask, and the visit types it offers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

REQUIRED = (
    "name",
    "address",
    "map_link",
    "phone",
    "languages",
    "visit_types",
    "insurance",
    "parking",
)


class ProfileError(ValueError):
    """The profile misses a fact or holds one that can't be used."""


@dataclass(frozen=True)
class VisitType:
    key: str
    name: str
    minutes: int
    price: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Topic:
    words: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Profile:
    name: str
    address: str
    map_link: str
    phone: str
    languages: tuple[str, ...]
    visit_types: tuple[VisitType, ...]
    insurance: str
    parking: str
    topics: tuple[Topic, ...] = ()

    def visit_type(self, key: str | None) -> VisitType:
        """The visit type with this key; the first (the default visit) for None."""
        if key is None:
            return self.visit_types[0]
        for visit_type in self.visit_types:
            if visit_type.key == key:
                return visit_type
        raise ProfileError(f"no visit type {key!r} in the profile")


def load_profile(path: Path) -> Profile:
    """Reads and checks a profile: every fact present, visit types well formed."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ProfileError(f"{path} must map fact names to facts")
    missing = [key for key in REQUIRED if not data.get(key)]
    if missing:
        raise ProfileError(f"{path} misses: {', '.join(missing)}")
    visit_types = tuple(_visit_type(item, path) for item in data["visit_types"])
    keys = [v.key for v in visit_types]
    if len(set(keys)) != len(keys):
        raise ProfileError(f"{path}: two visit types share a key")
    return Profile(
        name=str(data["name"]),
        address=str(data["address"]),
        map_link=str(data["map_link"]),
        phone=str(data["phone"]),
        languages=tuple(str(language) for language in data["languages"]),
        visit_types=visit_types,
        insurance=str(data["insurance"]),
        parking=str(data["parking"]),
        topics=tuple(
            Topic(tuple(str(w).lower() for w in t["words"]), str(t["answer"]))
            for t in data.get("topics") or []
        ),
    )


def _visit_type(item: object, path: Path) -> VisitType:
    if not isinstance(item, dict) or not {"key", "name", "minutes", "price"} <= set(item):
        raise ProfileError(f"{path}: each visit type needs key, name, minutes and price")
    minutes = item["minutes"]
    if not isinstance(minutes, int) or not 5 <= minutes <= 480:
        raise ProfileError(f"{path}: visit type {item['key']!r} must last 5 to 480 minutes")
    words = (item["name"], item["key"].replace("_", " "), *(item.get("words") or []))
    return VisitType(
        key=str(item["key"]),
        name=str(item["name"]),
        minutes=minutes,
        price=str(item["price"]),
        words=tuple(str(w).lower() for w in words),
    )
