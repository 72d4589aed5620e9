"""The console's Flask application: sessions, CSRF, who may open what, security headers,
error pages and the request log. The pages are in the modules `console.routes` lists.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure when the console is
reached over https) and end after CONSOLE_IDLE_MINUTES without a request: every response
signs the cookie anew, and a cookie signed longer ago than that is refused. Forms and CSRF
are Flask-WTF's; staff sessions are Flask-Login's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from clinic.connection import TokenCheck
from clinic.context import Clinic
from clinic.db import transaction
from clinic.dead_letters import failed_count
from clinic.errors import DatabaseUnavailableError
from clinic.handoffs import open_for_staff
from clinic.live_config import LiveConfig
from clinic.models import ROLE_ADMIN
from clinic.patients import display_phone
from clinic.profile import Profile
from clinic.staff import StaffView, get_staff
from clinic.templates import (
    Templates,
    format_clock,
    format_day,
    format_time,
    format_when,
)

logger = logging.getLogger("console")

PUBLIC, DESK, ADMIN = "public", "desk", "admin"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Desk:
    """What the pages work with: the clinic, its texts and profile as its database holds
    them now, Rasa's SQL tracker store (to erase a conversation) if the clinic keeps
    conversations in one, and the Instagram token's check."""

    clinic: Clinic
    live: LiveConfig
    tracker_engine: Engine | None = None
    check_token: Callable[[], TokenCheck] = lambda: TokenCheck(False, error="not checked")

    @property
    def templates(self) -> Templates:
        return self.live.current().templates

    @property
    def profile(self) -> Profile:
        return self.live.current().profile


class StaffUser(UserMixin):
    def __init__(self, view: StaffView):
        self.view = view

    def get_id(self) -> str:
        return str(self.view.id)

    @property
    def staff_id(self) -> int:
        return self.view.id

    @property
    def is_admin(self) -> bool:
        return self.view.role == ROLE_ADMIN


def create_app(
    clinic: Clinic,
    secret_key: str,
    tracker_engine: Engine | None = None,
    check_token: Callable[[], TokenCheck] | None = None,
) -> Flask:
    from console.routes import ROUTES  # the pages import this module's helpers

    settings = clinic.settings
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="clinic_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.console_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=settings.console_idle,
        SESSION_REFRESH_EACH_REQUEST=True,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    app.extensions["desk"] = Desk(
        clinic,
        LiveConfig(clinic.engine, settings),
        tracker_engine,
        check_token or (lambda: TokenCheck(False, error="no check configured")),
    )
    CSRFProtect(app)
    login = LoginManager(app)
    login.session_protection = "strong"

    @login.user_loader
    def load_staff(staff_id: str) -> StaffUser | None:
        view = get_staff(clinic, int(staff_id)) if staff_id.isdigit() else None
        return StaffUser(view) if view is not None else None

    for route in ROUTES:
        app.add_url_rule(
            route.rule,
            endpoint=route.endpoint,
            view_func=guarded(route.view, route.access),
            methods=list(route.methods),
        )
    _add_filters(app, clinic)
    _add_handlers(app)
    return app


def desk() -> Desk:
    return current_app.extensions["desk"]


def staff_id() -> int:
    return current_user.staff_id


def guarded(view: Any, access: str) -> Any:
    """The view, opened only to whom `access` names: anyone, signed-in staff, or admins.
    Without a session a page answers 303 to the sign-in page, anything else 401."""

    @wraps(view)
    def checked(**kwargs: Any) -> Any:
        if access != PUBLIC:
            if not current_user.is_authenticated:
                return _to_sign_in()
            if access == ADMIN and not current_user.is_admin:
                return error_page(403, "Only an admin can open this page.")
        return view(**kwargs)

    return checked


def _to_sign_in() -> Response:
    is_page = request.method == "GET" and not request.headers.get("HX-Request")
    if not is_page:
        return Response("sign in first", status=401, mimetype="text/plain")
    return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")), code=303)


def safe_next(target: str | None) -> str:
    """A local path to go on to after signing in; "/" for anything else."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, message=message), status


def _add_filters(app: Flask, clinic: Clinic) -> None:
    zone = clinic.settings.zone
    app.jinja_env.filters["clock"] = lambda moment: format_time(moment, zone)
    app.jinja_env.filters["day"] = lambda day: format_day(
        day.astimezone(zone).date() if isinstance(day, datetime) else day
    )
    app.jinja_env.filters["when"] = lambda moment: format_when(moment, zone)
    app.jinja_env.filters["ago"] = lambda moment: _ago(clinic.now() - moment)
    app.jinja_env.filters["wall"] = format_clock
    region = clinic.settings.phone_default_region
    app.jinja_env.filters["phone"] = lambda e164: display_phone(e164, region) if e164 else ""
    app.jinja_env.filters["why"] = why_it_failed
    app.jinja_env.globals["today"] = lambda: clinic.today()
    app.jinja_env.globals["iso"] = lambda day: day.isoformat() if isinstance(day, date) else ""


# What the outbox's reasons (kind and Graph codes) mean, for the front desk.
_REASONS = (
    ("opted out", "The patient's phone refuses our texts (they replied STOP)"),
    ("text undelivered", "The text message could not be delivered (phone off or unreachable)"),
    ("text failed", "The text message could not be delivered"),
    ("code=10 ", "Instagram's 24-hour window had closed: only the patient can reopen it"),
    ("code=551", "The account can't receive messages (blocked us, or was deactivated)"),
    ("code=190", "The clinic's Instagram access token is wrong or has expired"),
    ("gave up", "Instagram could not be reached for several minutes"),
)


def why_it_failed(reason: str) -> str:
    for code, meaning in _REASONS:
        if code in (reason or ""):
            return meaning
    return f"Refused ({reason})" if reason else "Refused"


def _ago(delta: Any) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def _add_handlers(app: Flask) -> None:
    @app.before_request
    def started() -> None:
        g.started = time.perf_counter()

    @app.context_processor
    def badges() -> dict[str, Any]:
        """The counts the menu shows, for signed-in staff."""
        if not current_user.is_authenticated:
            return {}
        clinic = desk().clinic
        settings = clinic.settings
        with transaction(clinic.engine) as session:
            handoffs = open_for_staff(
                session, clinic.now(), settings.handoff_timeout, settings.staff_pause
            )
        return {
            "open_handoffs": len(handoffs),
            "failed_replies": failed_count(clinic),
            "clinic_name": desk().profile.name,
        }

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        rule = request.url_rule.rule if request.url_rule else "(no route)"
        who = current_user.get_id() if current_user.is_authenticated else "-"
        elapsed = 1000 * (time.perf_counter() - g.get("started", time.perf_counter()))
        # The route's pattern, never the path or query: a sign-in link's token, a search.
        logger.info(
            "%s %s %s staff=%s %.0fms", request.method, rule, response.status_code, who, elapsed
        )
        return response

    @app.errorhandler(CSRFError)
    def csrf_failed(_error: CSRFError) -> tuple[str, int]:
        return error_page(
            403,
            "This form was out of date or did not come from the console, so nothing was "
            "changed. Go back, reload the page and try again.",
        )

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return error_page(404, "There is no such page, or what it showed is gone.")

    @app.errorhandler(405)
    def not_allowed(_error: Exception) -> tuple[str, int]:
        return error_page(405, "That is not something this page does.")

    @app.errorhandler(413)
    def too_large(_error: Exception) -> tuple[str, int]:
        return error_page(413, "That form was far too large, so nothing was changed.")

    @app.errorhandler(DatabaseUnavailableError)
    def database_down(_error: Exception) -> tuple[str, int]:
        return error_page(
            503,
            "The clinic's database can't be reached right now, so nothing was changed. "
            "Please try again in a minute.",
        )

    @app.errorhandler(Exception)
    def failed(error: Exception) -> tuple[str, int]:
        if isinstance(error, HTTPException):
            return error_page(error.code or 500, "That request could not be handled.")
        # The class only: a message may quote what was typed (a name, a phone number).
        logger.error("console request failed: %s", type(error).__name__)
        return error_page(500, "Something went wrong on our side, so nothing was changed.")
