"""docker-compose.yml's shape (no Docker engine here): only nginx faces the world, the console
only the host's loopback, PostgreSQL and Redis sit on an internal network of the clinic's
own services, every image keeps its production check, and Redis asks for the password
that the rasa servers' lock store sends (a real redis-server started as compose starts it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from connectors.stores import LockStoreFromEnvironment
from tests.compose import interpolate, networks, services
from tests.helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "0123456789abcdef0123456789abcdef"


def built() -> dict[str, dict]:
    """The services built from deploy/Dockerfile.* (the clinic's own code)."""
    return {name: service for name, service in services().items() if "build" in service}


def test_only_nginx_publishes_ports_and_the_console_only_on_the_hosts_loopback():
    published = {name: s["ports"] for name, s in services().items() if "ports" in s}
    assert published.pop("webhook") == ["80:80", "443:443"]
    assert list(published) == ["console"]
    assert all(port.startswith("127.0.0.1:") for port in published["console"])


def test_the_database_and_redis_are_reached_by_the_clinics_services_only():
    internal = {name for name, network in networks().items() if (network or {}).get("internal")}
    assert internal
    for store in ("postgres", "redis"):
        assert set(services()[store]["networks"]) <= internal, store
    joined = {name for name, s in services().items() if set(s.get("networks", [])) & internal}
    assert joined == {"postgres", "redis", *built()}
    assert not set(services()["webhook"]["networks"]) & internal


def test_every_built_service_starts_through_its_images_production_check():
    assert set(built()) == {"migrate", "actions", "rasa", "console"}
    for name, service in built().items():
        assert "entrypoint" not in service, name


def test_redis_refuses_clients_without_the_password_the_lock_store_sends(tmp_path, monkeypatch):
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is missing: .ci/run installs it")
    env = {"REDIS_PASSWORD": PASSWORD}
    command = [interpolate(word, env) for word in services()["redis"]["command"]]
    assert command[0] == "redis-server" and PASSWORD in command
    port = free_port()
    process = subprocess.Popen(
        [server, *command[1:], "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        stranger = redis.Redis(host="127.0.0.1", port=port)
        assert wait_until(lambda: _refuses(stranger), 20)
        url = interpolate(services()["rasa"]["environment"]["LOCK_STORE_URL"], env)
        assert url.startswith("redis://:") and "@redis:6379/" in url
        monkeypatch.setenv("LOCK_STORE_URL", url.replace("@redis:6379/", f"@127.0.0.1:{port}/"))
        store = LockStoreFromEnvironment()
        store.save_lock(store.get_or_create_lock("a-conversation"))
        assert store.get_lock("a-conversation") is not None
    finally:
        process.terminate()
        process.wait(timeout=20)


def _refuses(client: redis.Redis) -> bool:
    """True once the server answers, refusing a client that sends no password."""
    try:
        client.ping()
    except redis.AuthenticationError:
        return True
    except redis.ConnectionError:
        return False
    raise AssertionError("redis answered a client without the password")


def test_the_rasa_servers_are_told_their_public_https_address():
    env = {"SERVER_NAME": "clinic.example"}  # Twilio's signatures and the feed links use it
    url = interpolate(services()["rasa"]["environment"]["PUBLIC_URL"], env)
    assert url == "https://clinic.example"
