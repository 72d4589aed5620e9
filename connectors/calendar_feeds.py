"""`GET /calendar/<doctor id>.ics?token=…`: each doctor's appointments as a feed that
Google Calendar, Outlook or Apple Calendar subscribe to (make serve; credentials.yml).

Rasa serves input channels under /webhooks/<prefix>; this "channel" takes no messages, it
only lends the rasa server's port to the feeds, at /calendar. A wrong token or an unknown
doctor both get 404, so the address tells nothing to someone without the link; a link
replaced by a new one (`python -m clinic doctors --rotate-feed ID`, or the console) gets 404
from then on. Answers carry `Cache-Control: no-store`, ETag and Last-Modified, and a
calendar app that asks again with them gets 304 while nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from rasa.core.channels.channel import InputChannel
from sanic import Blueprint, response
from sanic.request import Request

from clinic.calendar_feed import Feed, subscribed_feed, warm_feeds
from clinic.context import Clinic
from clinic.db import create_database_engine
from clinic.settings import load_settings
from connectors.heap import freeze_startup_objects
from connectors.log_levels import follow_rasa_log_level

logger = logging.getLogger(__name__)

FEED_NAME = re.compile(r"(\d{1,9})\.ics")
# The link is a secret and the feed names patients' initials: no cache keeps either, so a
# revoked link is not served from one (the ETag still spares unchanged bodies).
NO_STORE = {"Cache-Control": "no-store"}


class CalendarFeeds(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "calendar"

    @classmethod
    def from_credentials(cls, credentials: Any) -> CalendarFeeds:
        follow_rasa_log_level()
        return cls()

    def __init__(self) -> None:
        self._clinic: Clinic | None = None  # built when the first feed is asked for

    def url_prefix(self) -> str:
        return "/calendar"  # absolute: not under /webhooks

    def clinic(self) -> Clinic:
        if self._clinic is None:
            settings = load_settings()
            self._clinic = Clinic(create_database_engine(settings.database_url), settings)
        return self._clinic

    def warm(self) -> None:
        """Builds every doctor's feed once, so the first calendar app to ask after a restart
        is served from the cache of serialized events rather than waiting for it."""
        started = time.perf_counter()
        try:
            doctors = warm_feeds(self.clinic())
        except Exception as error:  # noqa: BLE001 - a cold feed is only slower
            logger.warning("calendar feeds not warmed: %s", type(error).__name__)
            return
        elapsed = 1000 * (time.perf_counter() - started)
        logger.info("calendar feeds warmed: %d doctors in %.0f ms", doctors, elapsed)

    def blueprint(self, on_new_message: Any) -> Blueprint:
        feeds = Blueprint("calendar_feeds", __name__)

        @feeds.listener("after_server_start")
        async def warm(_app: Any, loop: Any) -> None:
            freeze_startup_objects()
            loop.run_in_executor(None, self.warm)  # beside serving, not before it

        @feeds.route("/<name>", methods=["GET", "HEAD"])
        async def feed(request: Request, name: str) -> response.HTTPResponse:
            match = FEED_NAME.fullmatch(name)
            token = request.args.get("token") or ""
            if match is None:
                return response.text("not found", status=404, headers=NO_STORE)
            found = await asyncio.to_thread(subscribed_feed, self.clinic(), int(match[1]), token)
            if found is None:
                return response.text("not found", status=404, headers=NO_STORE)
            return answer(request, found)

        return feeds


def answer(request: Request, feed: Feed) -> response.HTTPResponse:
    headers = {"ETag": feed.etag, **NO_STORE}
    if feed.last_modified is not None:
        headers["Last-Modified"] = format_datetime(feed.last_modified, usegmt=True)
    if not_modified(request, feed):
        return response.empty(status=304, headers=headers)
    body = b"" if request.method == "HEAD" else feed.body
    return response.raw(body, content_type="text/calendar; charset=utf-8", headers=headers)


def not_modified(request: Request, feed: Feed) -> bool:
    """RFC 9110: If-None-Match decides when sent; If-Modified-Since only without it."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return feed.etag in [tag.strip() for tag in if_none_match.split(",")] or (
            if_none_match.strip() == "*"
        )
    since = request.headers.get("If-Modified-Since")
    if since is None or feed.last_modified is None:
        return False
    try:
        return feed.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
