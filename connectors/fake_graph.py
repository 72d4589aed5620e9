"""A fake Instagram Graph API on 127.0.0.1 for tests and demos: it records and answers as told.

In a test: `with FakeGraphApi() as fake:` then point a client at `fake.base_url`, program answers
with `fake.queue(...)` and read `fake.sent` (every attempt) and `fake.delivered` (answered 200).
From another process: `python -m connectors.fake_graph --port 8765` and the `/_fake/...` routes.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from clinic.audit import hash_id
from clinic.settings import DEVELOPMENT_HASH_KEY, load_settings

logger = logging.getLogger(__name__)

GRAPH_VERSION = "v21.0"
_MESSAGES_PATH = re.compile(r"/v\d+\.\d+/me/messages")
_TAKE_CONTROL_PATH = re.compile(r"/v\d+\.\d+/me/take_thread_control")
_ME_PATH = re.compile(r"/v\d+\.\d+/me")
USERNAME = "democlinic"  # the account the fake's token belongs to
ACCOUNT_ID = "17841400000000001"
# What the real Graph API refuses too, so a client that breaks these rules fails here first.
_TEXT_LIMIT_BYTES = 1000
_MAX_QUICK_REPLIES = 13


@dataclass(frozen=True)
class FakeResponse:
    """One programmed answer. With `body=None` a 200 gets the usual success body and other
    statuses an empty body; a `str` body is sent as it is (an HTML error page, say)."""

    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def graph_error(
        cls,
        code: int,
        subcode: int | None = None,
        *,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> FakeResponse:
        """An answer shaped like the Graph API's errors."""
        return cls(status, _graph_error(code, subcode), dict(headers or {}), delay)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FakeResponse:
        return cls(
            status=int(data.get("status", 200)),
            body=data.get("body"),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            delay=float(data.get("delay", 0.0)),
        )


@dataclass(frozen=True)
class RecordedRequest:
    """One request to the Graph routes, as received, and the status the fake answered."""

    path: str  # with the query string, so tests can check that no token travels in the URL
    headers: dict[str, str]
    body: Any  # the parsed JSON; None when the body was not JSON
    time: float  # time.monotonic() on arrival
    status: int
    message_id: str | None = None  # the id the fake gave a message it accepted


class FakeGraphApi:
    """`POST /vNN.N/me/messages` on loopback, answered from a queue, then with 200 by default.

    A request counts as delivered when the fake answers it 200, even if the answer is slow and
    the client stopped waiting: like Graph, which can deliver a message whose answer gets lost.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        access_token: str | None = None,
        id_hash_key: str = DEVELOPMENT_HASH_KEY,
    ) -> None:
        self.port = port
        self.access_token = access_token
        self.base_url = ""
        self._id_hash_key = id_hash_key
        self._changed = threading.Condition(threading.RLock())
        self._queue: deque[FakeResponse] = deque()
        self._sent: list[RecordedRequest] = []
        self._delivered: list[RecordedRequest] = []
        self._by_recipient: dict[Any, list[RecordedRequest]] = {}
        self._message_count = 0
        self._down_until = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Starts serving in a daemon thread; the base URL, like `http://127.0.0.1:PORT/v21.0`."""
        if self._server is not None:
            raise RuntimeError("the fake Graph API is already running")
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/{GRAPH_VERSION}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-graph-api",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeGraphApi:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def sent(self) -> list[RecordedRequest]:
        """Every request to the Graph routes, whatever the answer."""
        with self._changed:
            return list(self._sent)

    @property
    def delivered(self) -> list[RecordedRequest]:
        """The requests answered 200."""
        with self._changed:
            return list(self._delivered)

    def messages_to(self, recipient_id: str) -> list[dict[str, Any]]:
        """The bodies delivered to one recipient, in order (messages and sender actions)."""
        with self._changed:
            return [r.body for r in self._by_recipient.get(recipient_id, [])]

    def deliveries_to(self, recipient_id: str) -> list[RecordedRequest]:
        """The delivered requests of one recipient, with their arrival times."""
        with self._changed:
            return list(self._by_recipient.get(recipient_id, []))

    def queue(self, *responses: FakeResponse) -> None:
        """The answers to the next requests, in order; then the default 200 again."""
        with self._changed:
            self._queue.extend(responses)

    def down_for(self, seconds: float) -> None:
        """Answers 503 to every Graph request for `seconds`, leaving the queue alone."""
        with self._changed:
            self._down_until = time.monotonic() + seconds

    def reset(self) -> None:
        with self._changed:
            self._queue.clear()
            self._sent.clear()
            self._delivered.clear()
            self._by_recipient.clear()
            self._message_count = 0
            self._down_until = 0.0

    def wait_for(self, condition: int | Callable[[], bool], timeout: float = 5.0) -> None:
        """Waits until `condition` delivered requests arrived, or the predicate holds (checked
        after each request); TimeoutError when it does not within `timeout` seconds."""
        if isinstance(condition, int):
            count = condition

            def predicate() -> bool:
                return len(self._delivered) >= count

        else:
            predicate = condition
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(f"fake Graph API: condition not met within {timeout} s")

    def _answer(
        self, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[FakeResponse, Any]:
        """Records one Graph request and chooses its answer; the answer and the recipient."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._changed:
            response = self._choose(path, headers, body)
            if response.status == 200 and response.body is None:
                success = self._success_body(body)
                response = FakeResponse(200, success, response.headers, response.delay)
            message_id = (
                response.body.get("message_id") if isinstance(response.body, dict) else None
            )
            record = RecordedRequest(
                path, dict(headers.items()), body, time.monotonic(), response.status, message_id
            )
            self._sent.append(record)
            if response.status == 200:
                self._delivered.append(record)
                self._by_recipient.setdefault(_recipient_of(body), []).append(record)
            self._changed.notify_all()
        return response, _recipient_of(body)

    def _choose(self, path: str, headers: Mapping[str, str], body: Any) -> FakeResponse:
        route = urlsplit(path).path
        taking_control = bool(_TAKE_CONTROL_PATH.fullmatch(route))
        if not (taking_control or _MESSAGES_PATH.fullmatch(route)):
            return FakeResponse.graph_error(100, status=404)
        if time.monotonic() < self._down_until:
            return FakeResponse(503, "Service Unavailable")
        expected_authorization = f"Bearer {self.access_token}"
        if self.access_token is not None and headers.get("Authorization") != expected_authorization:
            return FakeResponse.graph_error(190, status=401)
        if _recipient_of(body) is None or not (taking_control or _within_limits(body)):
            return FakeResponse.graph_error(100)
        if self._queue:
            return self._queue.popleft()
        return FakeResponse()

    def account(self, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """`GET /me`: the account of a good token, or Meta's error 190 for any other."""
        if self.access_token is not None and headers.get("Authorization") != (
            f"Bearer {self.access_token}"
        ):
            body = _graph_error(190, None)
            body["error"]["message"] = "Invalid OAuth access token - Cannot parse access token"
            return 400, body
        return 200, {"user_id": ACCOUNT_ID, "username": USERNAME, "id": ACCOUNT_ID}

    def _success_body(self, body: Any) -> dict[str, Any]:
        recipient = _recipient_of(body)
        if "message" not in body:  # a sender action, or taking the conversation back
            return {"recipient_id": recipient}
        self._message_count += 1
        return {"recipient_id": recipient, "message_id": f"m_{self._message_count}"}

    def _hashed(self, recipient_id: Any) -> str:
        return "-" if recipient_id is None else hash_id(str(recipient_id), self._id_hash_key)


def _graph_error(code: int, subcode: int | None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": f"(fake) Graph API error {code}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "FAKE_TRACE",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def _recipient_of(body: Any) -> Any:
    recipient = body.get("recipient") if isinstance(body, dict) else None
    return recipient.get("id") if isinstance(recipient, dict) else None


def _within_limits(body: dict[str, Any]) -> bool:
    message = body.get("message")
    if not isinstance(message, dict):
        return "sender_action" in body
    text = message.get("text")
    if isinstance(text, str) and len(text.encode("utf-8", "surrogatepass")) > _TEXT_LIMIT_BYTES:
        return False
    return len(message.get("quick_replies") or []) <= _MAX_QUICK_REPLIES


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGraphApi) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", fake.port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Graph API
    # The headers and the body go out in two writes; with Nagle's algorithm the body would
    # wait for the client's delayed ACK (40 ms on Linux) and every send would take that long.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        fake = self.server.fake
        if self.path == "/_fake/sent":
            self._reply(200, [asdict(record) for record in fake.sent])
        elif self.path == "/_fake/delivered":
            self._reply(200, [asdict(record) for record in fake.delivered])
        elif _ME_PATH.fullmatch(urlsplit(self.path).path):
            self._reply(*fake.account(self.headers))
        else:
            self._reply(404, _graph_error(100, None))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/_fake/"):
            self._control(raw)
            return
        response, recipient = self.server.fake._answer(self.path, self.headers, raw)
        time.sleep(response.delay)
        self._reply(response.status, response.body, response.headers, recipient)

    def _control(self, raw: bytes) -> None:
        fake = self.server.fake
        try:
            data = json.loads(raw) if raw else None
            if self.path == "/_fake/queue":
                fake.queue(*(FakeResponse.from_json(item) for item in _as_list(data)))
            elif self.path == "/_fake/down":
                fake.down_for(float(data["seconds"]))
            elif self.path == "/_fake/reset":
                fake.reset()
            else:
                self._reply(404, {"error": "unknown control route"})
                return
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            self._reply(400, {"error": f"bad control request: {type(error).__name__}"})
            return
        self._reply(200, {"ok": True})

    def _reply(
        self,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        recipient: Any = None,
    ) -> None:
        if body is None:
            content, content_type = b"", "text/plain"
        elif isinstance(body, str):
            content, content_type = body.encode(), "text/plain"
        else:
            content, content_type = json.dumps(body).encode(), "application/json"
        logger.info(
            "%s %s -> %d recipient=%s",
            self.command,
            urlsplit(self.path).path,
            status,
            self.server.fake._hashed(recipient),
        )
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting (a timeout test); it is recorded all the same

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default line would carry the query string; `_reply` logs instead."""


def _as_list(data: Any) -> Sequence[Mapping[str, Any]]:
    if not isinstance(data, list):
        raise TypeError("expected a list of responses")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.fake_graph", description="Runs a fake Instagram Graph API."
    )
    parser.add_argument(
        "--port", type=int, help="port on 127.0.0.1 (0: any; default: FAKE_GRAPH_PORT)"
    )
    parser.add_argument(
        "--access-token", help="answer 401 (code 190) unless requests carry this bearer token"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    port = settings.fake_graph_port if args.port is None else args.port
    fake = FakeGraphApi(port, access_token=args.access_token, id_hash_key=settings.id_hash_key)
    print(fake.start(), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
