"""Every setting of clinic-dm, read from the environment, each default defined once here.

The README's configuration table lists the same variables; `python -m clinic settings`
prints the values in effect, and the scripts take their defaults from it.
"""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATES_PATH = Path(__file__).resolve().parent / "templates.yml"
DEFAULT_PROFILE_PATH = Path(__file__).resolve().parent / "profile.yml"
# Only for development: production must set ID_HASH_KEY so hashed ids can't be reversed.
DEVELOPMENT_HASH_KEY = "clinic-dm-development-key"
MIN_HASH_KEY_LENGTH = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATE_ORDERS = ("MDY", "DMY", "YMD")
# Instagram's own inbox app, where a hand-off sends the conversation (Meta's handover docs).
INSTAGRAM_INBOX_APP_ID = "1217981644879628"
# Where 2/5 is February 5 (elsewhere it is 2 May), and where dates start with the year.
_MONTH_FIRST_COUNTRIES = {"US", "CA", "PH", "FM", "MH", "PW", "AS", "GU", "MP", "PR", "VI", "UM"}
_YEAR_FIRST_COUNTRIES = {"CN", "JP", "KR", "KP", "TW", "HU", "LT", "MN", "IR"}


class SettingsError(ValueError):
    """An environment variable holds a value that can't be used."""


def _variable(name: str, default: Any, meaning: str, parse: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"env": name, "parse": parse, "meaning": meaning})


def _minutes(raw: str) -> timedelta:
    return timedelta(minutes=_whole(raw, minimum=0))


def _hours(raw: str) -> timedelta:
    return timedelta(hours=_whole(raw, minimum=1))


def _idle_minutes(raw: str) -> timedelta:
    minutes = float(raw)
    if not minutes > 0:
        raise ValueError("must be more than 0")
    return timedelta(minutes=minutes)


def _rate(raw: str) -> float:
    rate = float(raw)
    if not rate > 0:
        raise ValueError("must be more than 0")
    return rate


def _whole(raw: str, minimum: int = 1) -> int:
    value = int(raw)
    if value < minimum:
        raise ValueError(f"must be at least {minimum}")
    return value


def _flag(raw: str) -> bool:
    if raw.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be 1 or 0")


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _date_order(raw: str) -> str:
    order = raw.strip().upper()
    if order not in DATE_ORDERS:
        raise ValueError(f"must be one of {', '.join(DATE_ORDERS)}")
    return order


@dataclass(frozen=True)
class Settings:
    # The booking core
    database_url: str = _variable(
        "DATABASE_URL",
        f"sqlite:///{PROJECT_ROOT / 'var' / 'clinic.db'}",
        "SQLAlchemy URL; `postgresql+psycopg2://…` in production",
    )
    timezone: str = _variable(
        "CLINIC_TIMEZONE", "America/New_York", "the clinic's time zone: every time patients read"
    )
    default_doctor_id: int | None = _variable(
        "DEFAULT_DOCTOR_ID", None, "doctor the bot books with (default: the first)", _whole
    )
    phone_default_region: str = _variable(
        "PHONE_DEFAULT_REGION", "US", "region of phone numbers written without +country", str.upper
    )
    date_order: str | None = _variable(
        "DATE_ORDER",
        None,
        "how 2/5 is read: MDY or DMY (default: by the clinic's country)",
        _date_order,
    )
    min_notice: timedelta = _variable(
        "MIN_NOTICE_MINUTES", timedelta(minutes=120), "earliest bookable slot from now", _minutes
    )
    horizon_days: int = _variable(
        "BOOKING_HORIZON_DAYS", 60, "latest bookable day, counted from today", _whole
    )
    reminder_lead: timedelta = _variable(
        "REMINDER_LEAD_HOURS", timedelta(hours=24), "how long before a visit it is due", _hours
    )
    id_hash_key: str = _variable(
        "ID_HASH_KEY", DEVELOPMENT_HASH_KEY, "key of hashed ids in audit rows and logs"
    )
    # The servers
    log_level: str = _variable(
        "LOG_LEVEL", "INFO", "how much every server logs (DEBUG logs carry more)", _log_level
    )
    allow_debug_logs: bool = _variable(
        "ALLOW_DEBUG_LOGS",
        False,
        "1 lets production run at LOG_LEVEL=DEBUG (with a warning)",
        _flag,
    )
    action_server_host: str = _variable(
        "ACTION_SERVER_HOST", "127.0.0.1", "address the action server listens on"
    )
    action_server_token: str | None = _variable(
        "ACTION_SERVER_TOKEN",
        None,
        "shared secret the rasa server sends with every action call (make run makes one)",
    )
    action_server_port: int = _variable(
        "ACTION_SERVER_PORT", 5055, "port of the action server", _whole
    )
    action_server_url: str | None = _variable(
        "ACTION_SERVER_URL",
        None,
        "where the rasa server finds the action server (default: localhost, its port)",
    )
    rasa_port: int = _variable("RASA_PORT", 5005, "port of the rasa server", _whole)
    rasa_api_token: str | None = _variable(
        "RASA_API_TOKEN", None, "turns on Rasa's HTTP API for `make serve`, behind this token"
    )
    rasa_api_token_file: Path | None = _variable(
        "RASA_API_TOKEN_FILE", None, "a file holding RASA_API_TOKEN instead", Path
    )
    fake_graph_port: int = _variable(
        "FAKE_GRAPH_PORT", 8765, "port of the fake Graph API of `make simulate`", _whole
    )
    fake_twilio_port: int = _variable(
        "FAKE_TWILIO_PORT", 8766, "port of the fake Twilio of `make simulate`", _whole
    )
    # The staff console
    console_host: str = _variable(
        "CONSOLE_HOST", "127.0.0.1", "address the staff console listens on"
    )
    console_port: int = _variable("CONSOLE_PORT", 8000, "port of the staff console", _whole)
    console_url: str | None = _variable(
        "CONSOLE_URL",
        None,
        "where staff reach the console, for sign-in links (default: http://host:port); "
        "https:// marks session cookies Secure",
    )
    console_secret_key: str | None = _variable(
        "CONSOLE_SECRET_KEY",
        None,
        "signs the console's sessions (default: a random key kept in var/console-secret-key)",
    )
    console_idle: timedelta = _variable(
        "CONSOLE_IDLE_MINUTES",
        timedelta(hours=8),
        "a console session ends after this long without a request",
        _idle_minutes,
    )
    # The Instagram channel
    instagram_verify_token: str | None = _variable(
        "INSTAGRAM_VERIFY_TOKEN", None, "Meta's webhook handshake (read through credentials.yml)"
    )
    instagram_app_secret: str | None = _variable(
        "INSTAGRAM_APP_SECRET", None, "signs Meta's webhooks (read through credentials.yml)"
    )
    instagram_access_token: str | None = _variable(
        "INSTAGRAM_ACCESS_TOKEN", None, "sends messages (read through credentials.yml)"
    )
    public_url: str = _variable(
        "PUBLIC_URL",
        "http://localhost:5005",
        "where the rasa server is reached from outside (calendar feed links)",
    )
    graph_url: str = _variable(
        "INSTAGRAM_GRAPH_URL", "https://graph.instagram.com/v21.0", "Graph API base URL"
    )
    max_concurrency: int = _variable(
        "INSTAGRAM_MAX_CONCURRENCY", 8, "conversations processed at once per rasa server", _whole
    )
    typing_indicator: bool = _variable(
        "INSTAGRAM_TYPING_INDICATOR", True, "0 stops the typing indicator", _flag
    )
    instagram_app_id: str | None = _variable(
        "INSTAGRAM_APP_ID",
        None,
        "our Meta app's id: tells the bot's own echoes and control coming back apart",
    )
    instagram_account_id: str | None = _variable(
        "INSTAGRAM_ACCOUNT_ID",
        None,
        "the clinic's Instagram account id (`user_id` of GET /me): webhooks for others are ignored",
    )
    # Text messages (reminders when Instagram's window is closed): Twilio
    twilio_account_sid: str | None = _variable(
        "TWILIO_ACCOUNT_SID", None, "Twilio account (texts are off without it)"
    )
    twilio_auth_token: str | None = _variable(
        "TWILIO_AUTH_TOKEN", None, "Twilio's secret: sends texts and signs its webhooks"
    )
    twilio_from: str | None = _variable(
        "TWILIO_FROM", None, "the number texts come from (or TWILIO_MESSAGING_SERVICE_SID)"
    )
    twilio_messaging_service_sid: str | None = _variable(
        "TWILIO_MESSAGING_SERVICE_SID", None, "a Twilio messaging service to send texts with"
    )
    twilio_api_url: str = _variable(
        "TWILIO_API_URL", "https://api.twilio.com", "Twilio's API base URL (a fake in tests)"
    )
    twilio_rate: float = _variable(
        "TWILIO_MESSAGES_PER_SECOND",
        1.0,
        "texts sent per second at most (Twilio's limit for one number)",
        _rate,
    )
    # Staff taking over (README: "When staff take over")
    handoff_target_app_id: str = _variable(
        "HANDOFF_TARGET_APP_ID",
        INSTAGRAM_INBOX_APP_ID,
        "the app a hand-off passes the conversation to (default: Instagram's inbox)",
    )
    handoff_timeout: timedelta = _variable(
        "HANDOFF_TIMEOUT_HOURS",
        timedelta(hours=24),
        "after this the bot answers a handed-off patient again",
        _hours,
    )
    staff_pause: timedelta = _variable(
        "STAFF_PAUSE_MINUTES",
        timedelta(minutes=60),
        "the bot stays quiet this long after staff write to a patient",
        _minutes,
    )
    # Delivery: the channel's durable inbox and outbox (docs/delivery.md)
    replica_id: str | None = _variable(
        "REPLICA_ID",
        None,
        "this rasa server's name in the inbox's leases (default: host name and RASA_PORT)",
    )
    lease_seconds: int = _variable(
        "INBOX_LEASE_SECONDS", 15, "how long a dead server's messages wait for another", _whole
    )
    max_pending: int = _variable(
        "INBOX_MAX_PENDING", 1000, "messages waiting before webhooks get 503", _whole
    )
    shutdown_grace_seconds: int = _variable(
        "SHUTDOWN_GRACE_SECONDS", 20, "how long a stopping server finishes its turns", _whole
    )
    turn_deadline_seconds: int = _variable(
        "TURN_DEADLINE_SECONDS",
        120,
        "a turn still running after this is cut short and tried again later",
        _whole,
    )
    outbox_retry_seconds: int = _variable(
        "OUTBOX_RETRY_SECONDS", 180, "how long a reply is retried before it is failed", _whole
    )
    # Privacy
    retention_days: int = _variable(
        "CONVERSATION_RETENTION_DAYS",
        30,
        "conversations idle longer than this are deleted, with their delivery records",
        _whole,
    )
    # Rasa's stores
    tracker_store_url: str | None = _variable(
        "TRACKER_STORE_URL", None, "Rasa's SQL tracker store (default: in memory)"
    )
    lock_store_url: str | None = _variable(
        "LOCK_STORE_URL", None, "Rasa's Redis lock store (default: in memory)"
    )
    lock_store_key_prefix: str | None = _variable(
        "LOCK_STORE_KEY_PREFIX", None, "Redis key prefix of the lock store (default: Rasa's)"
    )

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SettingsError(f"CLINIC_TIMEZONE={self.timezone!r} is not a time zone") from error
        # Defaults that depend on other settings.
        if self.date_order is None:
            object.__setattr__(self, "date_order", default_date_order(zone.key))
        if self.action_server_url is None:
            url = f"http://localhost:{self.action_server_port}/webhook"
            object.__setattr__(self, "action_server_url", url)
        if self.console_url is None:
            url = f"http://{self.console_host}:{self.console_port}"
            object.__setattr__(self, "console_url", url)
        if self.replica_id is None:
            object.__setattr__(self, "replica_id", f"{socket.gethostname()}:{self.rasa_port}")

    @property
    def sms_configured(self) -> bool:
        """Twilio can send texts: an account, its token and a sender."""
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from or self.twilio_messaging_service_sid)
        )

    @property
    def zone(self) -> ZoneInfo:
        """The one display zone: every time a patient or staff member reads is in it."""
        return ZoneInfo(self.timezone)


def production_problems(settings: Settings) -> list[str]:
    """What keeps these settings from serving patients: each names its variable."""
    problems = []
    if settings.id_hash_key == DEVELOPMENT_HASH_KEY:
        problems.append("ID_HASH_KEY is not set (the development key is public): set a random one")
    elif len(settings.id_hash_key) < MIN_HASH_KEY_LENGTH:
        problems.append(
            f"ID_HASH_KEY is too short ({len(settings.id_hash_key)} characters): it must be at "
            f"least {MIN_HASH_KEY_LENGTH} random characters (`openssl rand -hex 32`)"
        )
    if not settings.action_server_token:
        problems.append("ACTION_SERVER_TOKEN is not set: set a random one")
    if settings.log_level == "DEBUG" and not settings.allow_debug_logs:
        problems.append(
            "LOG_LEVEL=DEBUG logs more of each conversation: set ALLOW_DEBUG_LOGS=1 to allow it"
        )
    return problems


def production_warnings(settings: Settings) -> list[str]:
    """What production allows but the operator should see in the log at start."""
    if settings.log_level == "DEBUG":
        return ["debug logs are on (LOG_LEVEL=DEBUG, ALLOW_DEBUG_LOGS=1): turn them off when done"]
    return []


def default_date_order(zone_name: str) -> str:
    """The date order of the country a time zone belongs to (MDY in the US)."""
    import pytz  # its zone table maps zones to countries; imported only when needed

    countries = {c for c, zones in pytz.country_timezones.items() if zone_name in zones}
    if zone_name.startswith(("US/", "Canada/")):  # old alias names: in no country's list
        countries.add("US")
    if countries & _MONTH_FIRST_COUNTRIES:
        return "MDY"
    if countries and countries <= _YEAR_FIRST_COUNTRIES:
        return "YMD"
    return "DMY"


def variables() -> list[Field]:
    """The settings' fields, each naming its environment variable in its metadata."""
    return [f for f in fields(Settings) if "env" in f.metadata]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Builds the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    values = {}
    for variable in variables():
        name = variable.metadata["env"]
        raw = env.get(name)
        if not raw:
            continue
        try:
            values[variable.name] = variable.metadata["parse"](raw)
        except ValueError as error:
            raise SettingsError(f"{name}={raw!r} can't be used: {error}") from error
    return Settings(**values)


def value_of(settings: Settings, name: str) -> str:
    """A variable's value as the environment would spell it ('' for none)."""
    variable = next((v for v in variables() if v.metadata["env"] == name), None)
    if variable is None:
        raise SettingsError(f"{name} is not a clinic-dm setting")
    value = getattr(settings, variable.name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, timedelta):
        unit = timedelta(hours=1) if name.endswith("_HOURS") else timedelta(minutes=1)
        return f"{value / unit:g}"
    return str(value)


def shell_exports(settings: Settings, names: Iterable[str]) -> str:
    """`export NAME=value` lines for a shell script to `eval`."""
    return "\n".join(f"export {name}={shlex.quote(value_of(settings, name))}" for name in names)
