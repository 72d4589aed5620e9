"""The Instagram connection's health, against the fake Graph API: the account's username for
a good token, Meta's own error for a bad one; in the console and `python -m clinic status`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clinic.connection import TokenCheck, connection_health
from clinic.delivery import Inbox, NewMessage
from clinic.settings import Settings
from connectors.fake_graph import FakeGraphApi
from connectors.graph_account import check_token
from tests.console_support import console_app, post_form, signed_in
from tests.servers import clinic_command


@pytest.fixture
def graph():
    with FakeGraphApi(access_token="good-token") as fake:
        yield fake


def test_a_good_token_names_the_account(graph):
    settings = Settings(instagram_access_token="good-token", graph_url=graph.base_url)
    assert check_token(settings) == TokenCheck(True, username="democlinic")
    (request,) = [r for r in graph.sent] or [None]  # GET /me is not a message: not recorded
    assert request is None


def test_a_bad_token_gets_metas_error_with_its_code(graph):
    settings = Settings(instagram_access_token="expired-token", graph_url=graph.base_url)
    check = check_token(settings)
    assert not check.ok
    assert check.error == "Invalid OAuth access token - Cannot parse access token (code 190)"


def test_no_token_and_no_graph_say_so():
    assert check_token(Settings()).error == "INSTAGRAM_ACCESS_TOKEN is not set"
    unreachable = Settings(instagram_access_token="t", graph_url="http://127.0.0.1:9/v21.0")
    assert check_token(unreachable).error.startswith("the Graph API can't be reached")


def test_health_counts_the_inbox_and_the_last_message(clinic, clock):
    health = connection_health(clinic, TokenCheck(True, "democlinic"))
    assert (health.last_message_at, health.inbox_waiting, health.outbox_failed) == (None, 0, 0)
    inbox = Inbox(clinic.engine, "test", timedelta(seconds=15), "key", clock=clock)
    inbox.accept([NewMessage("mid.1", "IG_TEST_HEALTH", 1, "text", "hi")])
    health = connection_health(clinic, TokenCheck(True, "democlinic"))
    assert (health.last_message_at, health.inbox_waiting) == (clock(), 1)


def test_status_prints_the_same_in_a_terminal(sqlite_url, graph, monkeypatch, capsys):
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "good-token")
    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", graph.base_url)
    assert clinic_command(sqlite_url, ["status"]) == 0
    out = capsys.readouterr().out
    assert "Instagram token: connected as @democlinic" in out
    assert "Last message received: never" in out and "Messages waiting in the inbox: 0" in out
    monkeypatch.setenv("INSTAGRAM_ACCESS_TOKEN", "expired-token")
    assert clinic_command(sqlite_url, ["status"]) == 1
    assert "NOT working: Invalid OAuth access token" in capsys.readouterr().out


def test_the_console_checks_the_connection(clinic, graph):
    settings = Settings(instagram_access_token="good-token", graph_url=graph.base_url)
    app = console_app(clinic)
    app.extensions["desk"] = app.extensions["desk"].__class__(
        clinic, app.extensions["desk"].live, None, lambda: check_token(settings)
    )
    client, _ = signed_in(app, clinic, "admin")
    page = post_form(client, "/setup/instagram")
    assert "Connected as <strong>@democlinic</strong>" in page.text
