"""deploy/nginx.conf.template, rendered as the official nginx image renders it (the compose
file's ${…} names, test paths and ports), checked with `nginx -t` and served by Debian's nginx
in front of a tiny upstream: TLS with HSTS, HTTP redirected, only the webhooks and the
calendar feeds proxied, no query string in any log. .ci/run installs nginx."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.compose import services, template_names
from tests.helpers import free_port, wait_until
from tests.nginx_support import (
    NGINX,
    SERVER_NAME,
    TEMPLATE,
    Nginx,
    Upstream,
    nginx_command,
    render,
    running_nginx,
    running_upstream,
)

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture(scope="module", autouse=True)
def nginx_installed() -> None:
    if NGINX is None and os.environ.get("CI"):
        pytest.fail("nginx is missing: .ci/run installs it")
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Nginx, Upstream]]:
    directory = tmp_path_factory.mktemp("nginx")
    with running_upstream() as upstream, running_nginx(directory, upstream.port) as nginx:
        yield nginx, upstream


def test_the_template_takes_exactly_what_the_compose_file_sets():
    webhook = services()["webhook"]["environment"]
    assert template_names(TEMPLATE.read_text()) == set(webhook) - {"NGINX_ENVSUBST_OUTPUT_DIR"}


def test_nginx_accepts_the_rendered_config(tmp_path):
    config, _ = render(tmp_path, free_port())
    result = subprocess.run(
        nginx_command(tmp_path, config, "-t"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/webhooks/instagram/webhook?hub.mode=subscribe&hub.challenge=1"),
        ("POST", "/webhooks/instagram/webhook"),
        ("GET", "/webhooks/instagram/"),
        ("POST", "/webhooks/twilio/sms"),
        ("POST", "/webhooks/twilio/status"),
        ("GET", "/calendar/1.ics?token=feed-token"),
    ],
)
def test_the_webhooks_and_calendar_feeds_reach_the_rasa_server(served, method, path):
    nginx, upstream = served
    response = nginx.request(method, path)
    assert response.status == 200
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert path in upstream.seen


@pytest.mark.parametrize(
    "path",
    [
        "/conversations/x/tracker",
        "/conversations/x/messages",
        "/model/parse",
        "/status",
        "/",
        "/webhooks/rest/webhook",
        "/webhooks/twilio/sms/x",
        "/webhooks/twilio/",
        "/calendar/../conversations/x/tracker",
        "/calendar/%2e%2e/conversations/x/tracker",
    ],
)
def test_everything_else_is_404_and_never_reaches_rasa(served, path):
    nginx, upstream = served
    response = nginx.request("POST" if "messages" in path else "GET", path)
    assert response.status == 404
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert not [seen for seen in upstream.seen if "conversations" in seen or seen == path]


def test_http_is_redirected_to_https_on_the_server_name(served):
    nginx, upstream = served
    response = nginx.request("GET", "/webhooks/twilio/sms?x=1", secure=False)
    assert response.status == 301
    assert response.headers["Location"] == f"https://{SERVER_NAME}/webhooks/twilio/sms?x=1"


def test_the_access_log_records_paths_without_their_query(served):
    nginx, _ = served
    assert nginx.request("GET", "/calendar/7.ics?token=SECRET-FEED-TOKEN").status == 200
    assert nginx.request("GET", "/calendar/7.ics?token=SECRET-404", secure=False).status == 301
    assert wait_until(lambda: nginx.access_log().count('"GET /calendar/7.ics HTTP/1.1" ') == 2, 10)
    assert "SECRET" not in nginx.access_log() + nginx.error_log()


def test_an_upstream_failure_logs_no_query_string(tmp_path):
    with running_nginx(tmp_path, free_port()) as nginx:  # nothing listens upstream
        assert nginx.request("GET", "/calendar/1.ics?token=SECRET-DOWN").status == 502
        assert wait_until(lambda: " 502 " in nginx.access_log(), 10)
        assert "SECRET" not in nginx.access_log() + nginx.error_log()
