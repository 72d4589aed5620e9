"""Settings read from the environment, with documented defaults (see README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'clinic.db'}"
DEFAULT_TEMPLATES_PATH = Path(__file__).resolve().parent / "templates.yml"
# Only for development: production must set ID_HASH_KEY so hashed ids can't be reversed.
DEVELOPMENT_HASH_KEY = "clinic-dm-development-key"


class SettingsError(ValueError):
    """An environment variable holds a value that can't be used."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    timezone: str = "America/New_York"
    default_doctor_id: int | None = None
    phone_default_region: str = "US"
    min_notice: timedelta = timedelta(hours=2)
    horizon_days: int = 60
    reminder_lead: timedelta = timedelta(hours=24)
    templates_path: Path = DEFAULT_TEMPLATES_PATH
    id_hash_key: str = DEVELOPMENT_HASH_KEY

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Builds the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    defaults = Settings()
    settings = Settings(
        database_url=env.get("DATABASE_URL") or defaults.database_url,
        timezone=env.get("CLINIC_TIMEZONE") or defaults.timezone,
        default_doctor_id=_optional_int(env, "DEFAULT_DOCTOR_ID"),
        phone_default_region=(env.get("PHONE_DEFAULT_REGION") or "US").upper(),
        min_notice=timedelta(minutes=_int(env, "MIN_NOTICE_MINUTES", 120, minimum=0)),
        horizon_days=_int(env, "BOOKING_HORIZON_DAYS", 60, minimum=1),
        reminder_lead=timedelta(hours=_int(env, "REMINDER_LEAD_HOURS", 24, minimum=1)),
        templates_path=Path(env.get("CLINIC_TEMPLATES") or defaults.templates_path),
        id_hash_key=env.get("ID_HASH_KEY") or defaults.id_hash_key,
    )
    try:
        settings.zone  # noqa: B018 - fail early on an unknown time zone
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise SettingsError(f"CLINIC_TIMEZONE={settings.timezone!r} is not a time zone") from error
    return settings


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from error
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    return _int(env, name, 0, minimum=1) if env.get(name) else None
