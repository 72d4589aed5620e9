"""Debian's nginx serving deploy/nginx.conf.template as the official nginx image renders it
(the compose file's values; test certificate, paths and ports), in front of a tiny upstream."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.compose import interpolate, services
from tests.helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
SERVER_NAME = "clinic.example"
NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")


@dataclass
class Upstream:
    """Answers 200 to anything, naming the path it saw; `seen` lists those paths."""

    port: int = 0
    seen: list[str] = field(default_factory=list)


@dataclass
class Nginx:
    directory: Path
    https_port: int
    http_port: int
    context: ssl.SSLContext

    def request(self, method: str, path: str, secure: bool = True) -> http.client.HTTPResponse:
        if secure:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.https_port, context=self.context, timeout=10
            )
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        connection.request(method, path, body=b"{}" if method == "POST" else None)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def access_log(self) -> str:
        return (self.directory / "stdout.log").read_text()

    def error_log(self) -> str:
        return (self.directory / "stderr.log").read_text() + (
            self.directory / "error.log"
        ).read_text()


def certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1."""
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def render(directory: Path, upstream_port: int) -> tuple[Path, dict[str, str]]:
    """The template with the compose file's values, test paths and ports in their place."""
    cert, key = certificate(directory)
    values = dict(services()["webhook"]["environment"], SERVER_NAME=SERVER_NAME)
    values.update(
        TLS_CERT_PATH=str(cert),
        TLS_KEY_PATH=str(key),
        RASA_UPSTREAM=f"127.0.0.1:{upstream_port}",
        HTTP_PORT=str(free_port()),
        HTTPS_PORT=str(free_port()),
    )
    config = directory / "nginx.conf"
    config.write_text(interpolate(TEMPLATE.read_text(), values))
    return config, values


def nginx_command(directory: Path, config: Path, *extra: str) -> list[str]:
    pid = f"pid {directory / 'nginx.pid'}; daemon off;"
    return [NGINX, "-p", f"{directory}/", "-c", str(config), "-e", str(directory / "error.log"),
            "-g", pid, *extra]  # fmt: skip


@contextmanager
def running_nginx(directory: Path, upstream_port: int) -> Iterator[Nginx]:
    config, values = render(directory, upstream_port)
    with (directory / "stdout.log").open("w") as out, (directory / "stderr.log").open("w") as err:
        process = subprocess.Popen(nginx_command(directory, config), stdout=out, stderr=err)
    server = Nginx(
        directory,
        int(values["HTTPS_PORT"]),
        int(values["HTTP_PORT"]),
        ssl.create_default_context(cafile=values["TLS_CERT_PATH"]),
    )
    try:
        assert wait_until(lambda: _accepts(server.https_port), 20), server.error_log()
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def running_upstream() -> Iterator[Upstream]:
    upstream = Upstream()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            upstream.seen.append(self.path)
            body = f"upstream saw {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    upstream.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        httpd.shutdown()
        httpd.server_close()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
