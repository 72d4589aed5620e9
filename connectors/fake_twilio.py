"""A fake Twilio on 127.0.0.1 for tests, benchmarks and `make simulate`: the Messages API
the `twilio` library calls (`TWILIO_API_URL` points it here), signed delivery status
callbacks, and patients' replies sent, signed, to the clinic's inbound webhook.

In a test: `with FakeTwilio(auth_token=…) as fake:`, then `fake.texts_to(phone)`,
`fake.opt_out(phone)`, `fake.queue(FakeError(…))`, `fake.reply(phone, "C", url)`.
From another process: `python -m connectors.fake_twilio --port 8766` and `GET /_fake/texts`.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)

ACCOUNT_SID = "AC" + "0" * 32  # a placeholder account: every test and demo uses it
_MESSAGES = re.compile(r"/2010-04-01/Accounts/(AC\w+)/Messages\.json")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


@dataclass(frozen=True)
class FakeError:
    """One programmed refusal: an HTTP status and Twilio's error code."""

    status: int
    code: int
    message: str = "(fake) Twilio error"


@dataclass
class Text:
    """A text message the fake accepted."""

    sid: str
    to: str
    sender: str  # the From number, or the messaging service's sid
    body: str
    status_callback: str | None
    created: float  # time.monotonic()
    date_created: str  # RFC 2822, as Twilio shows it
    status: str = "queued"


@dataclass
class FakeTwilio:
    auth_token: str = "fake-twilio-token"  # noqa: S105 - the fake's, not a secret
    account_sid: str = ACCOUNT_SID
    port: int = 0
    deliver: bool = True  # send a "delivered" status callback for each text
    undeliverable: set[str] = field(default_factory=set)  # numbers whose texts fail (30003)
    base_url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._texts: list[Text] = []
        self._refused: list[dict[str, Any]] = []
        self._opted_out: set[str] = set()
        self._queue: deque[FakeError] = deque()
        self._server: _Server | None = None
        self._callbacks: deque[tuple[str, dict[str, str]]] = deque()
        self._stopping = threading.Event()

    # --- serving -----------------------------------------------------------------

    def start(self) -> str:
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._send_callbacks, daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeTwilio:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- what tests read and program -----------------------------------------------

    @property
    def texts(self) -> list[Text]:
        with self._lock:
            return list(self._texts)

    def texts_to(self, phone: str) -> list[str]:
        return [t.body for t in self.texts if t.to == phone]

    @property
    def refused(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._refused)

    def opt_out(self, phone: str) -> None:
        """The number replied STOP at the carrier: texts to it are refused (21610)."""
        with self._lock:
            self._opted_out.add(phone)

    def opt_in(self, phone: str) -> None:
        with self._lock:
            self._opted_out.discard(phone)

    def queue(self, *errors: FakeError) -> None:
        """The next sends are refused with these, in order."""
        with self._lock:
            self._queue.extend(errors)

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self._texts) >= count, timeout)

    def reply(self, phone: str, body: str, webhook_url: str, to: str = "+12025550100") -> int:
        """A patient's text to the clinic, posted signed to its inbound webhook; the status."""
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.account_sid,
            "From": phone,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }
        signature = RequestValidator(self.auth_token).compute_signature(webhook_url, params)
        answer = requests.post(
            webhook_url, data=params, headers={"X-Twilio-Signature": signature}, timeout=30
        )
        return answer.status_code

    # --- the Messages API ----------------------------------------------------------

    def create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to, body = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid") or ""
        with self._lock:
            if not _E164.fullmatch(to):
                return self._refuse(form, 400, 21211, f"The 'To' number {to} is not valid.")
            if not sender:
                return self._refuse(form, 400, 21603, "A 'From' phone number is required.")
            if not body:
                return self._refuse(form, 400, 21602, "Message body is required.")
            if self._queue:
                error = self._queue.popleft()
                return self._refuse(form, error.status, error.code, error.message)
            if to in self._opted_out:
                return self._refuse(form, 400, 21610, "Attempt to send to unsubscribed recipient")
            text = Text(
                sid="SM" + uuid.uuid4().hex,
                to=to,
                sender=sender,
                body=body,
                status_callback=form.get("StatusCallback"),
                created=time.monotonic(),
                date_created=_rfc2822(datetime.now(timezone.utc)),
            )
            self._texts.append(text)
            self._lock.notify_all()
            if text.status_callback and self.deliver:
                self._callbacks.append((text.sid, {}))
        return 201, self._resource(text)

    def listing(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """`GET Messages.json?To=…&DateSent>=…`: newest first, as Twilio lists them."""
        to = (query.get("To") or [None])[0]
        texts = [t for t in self.texts if to is None or t.to == to]
        return {"messages": [self._resource(t) for t in reversed(texts)], "next_page_uri": None}

    def _refuse(
        self, form: dict[str, str], status: int, code: int, message: str
    ) -> tuple[int, dict[str, Any]]:
        self._refused.append({"to": form.get("To"), "code": code, "status": status})
        more = f"https://www.twilio.com/docs/errors/{code}"
        return status, {"code": code, "message": message, "more_info": more, "status": status}

    def _resource(self, text: Text) -> dict[str, Any]:
        return {
            "sid": text.sid,
            "account_sid": self.account_sid,
            "to": text.to,
            "from": text.sender,
            "body": text.body,
            "status": text.status,
            "date_created": text.date_created,
            "date_sent": text.date_created,
            "error_code": None,
            "num_segments": "1",
        }

    def _send_callbacks(self) -> None:
        """Each accepted text's status callback: "sent" then "delivered" (or "undelivered"
        with 30003 for a number set up to fail), signed as Twilio signs them."""
        while not self._stopping.is_set():
            try:
                sid, _ = self._callbacks.popleft()
            except IndexError:
                time.sleep(0.02)
                continue
            text = next((t for t in self.texts if t.sid == sid), None)
            if text is None or not text.status_callback:
                continue
            failed = text.to in self.undeliverable
            text.status = "undelivered" if failed else "delivered"
            params = {
                "MessageSid": text.sid,
                "AccountSid": self.account_sid,
                "To": text.to,
                "MessageStatus": text.status,
                **({"ErrorCode": "30003"} if failed else {}),
            }
            signature = RequestValidator(self.auth_token).compute_signature(
                text.status_callback, params
            )
            try:
                requests.post(
                    text.status_callback,
                    data=params,
                    headers={"X-Twilio-Signature": signature},
                    timeout=10,
                )
            except requests.RequestException:
                logger.warning("status callback not delivered")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", fake.port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body in two writes: no 40 ms delayed ACK

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self.path == "/_fake/reply":
            self._control(raw)
            return
        route = _MESSAGES.fullmatch(urlsplit(self.path).path)
        if route is None:
            self._reply(404, {"code": 20404, "message": "not found", "status": 404})
        elif not self._authorized(route[1]):
            self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        else:
            form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            self._reply(*fake.create(form))

    def _control(self, raw: str) -> None:
        """`POST /_fake/reply` {phone, body, url}: a patient's text to the clinic."""
        try:
            data = json.loads(raw)
            status = self.server.fake.reply(data["phone"], data["body"], data["url"])
        except (ValueError, KeyError, TypeError, requests.RequestException) as error:
            self._reply(400, {"error": type(error).__name__})
            return
        self._reply(200, {"status": status})

    def do_GET(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        if parts.path == "/_fake/texts":
            self._reply(200, [asdict(t) for t in fake.texts])
            return
        route = _MESSAGES.fullmatch(parts.path)
        if route is None:
            self._reply(404, {"code": 20404, "message": "not found", "status": 404})
        elif not self._authorized(route[1]):
            self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        else:
            self._reply(200, fake.listing(parse_qs(parts.query)))

    def _authorized(self, account: str) -> bool:
        fake = self.server.fake
        expected = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
        return account == fake.account_sid and self.headers.get("Authorization") == (
            f"Basic {expected}"
        )

    def _reply(self, status: int, body: Any) -> None:
        content = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default line would carry phone numbers in the query string."""


def _rfc2822(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--auth-token", default="fake-twilio-token")
    args = parser.parse_args()
    fake = FakeTwilio(auth_token=args.auth_token, port=args.port)
    fake.start()
    logger.info("fake Twilio on %s", fake.base_url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
