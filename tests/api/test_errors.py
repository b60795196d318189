"""Every error of the events API is JSON: 503 + Retry-After when the database is down,
500 for anything else, never a traceback or a server detail, whatever DEBUG is."""

import contextlib
import json
import socket
from pathlib import Path

import kombu
import pytest
import redis
from django.db import connections
from django.test import Client

from apps.api import errors
from tests.api.conftest import EVENTS_URL, bearer, event_body

# What must never reach a client: the pieces of a traceback and of the server's setup.
LEAKS = ("Traceback", 'File "', ".py", "OperationalError", "Error:", "127.0.0.1", "/work")

# Kept across the swap: what the test's own transaction (if any) left on the connection.
CONNECTION_STATE = (
    "in_atomic_block",
    "savepoint_ids",
    "atomic_blocks",
    "needs_rollback",
    "autocommit",
    "commit_on_exit",
    "savepoint_state",
    "run_on_commit",
    "run_commit_hooks_on_set_autocommit_on",
    "closed_in_transaction",
    "errors_occurred",
    "close_at",
    "health_check_done",
)


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


@contextlib.contextmanager
def database_unreachable(tmp_path: Path):
    """The default database really cannot be reached until the block ends.

    The open connection is set aside (not closed: SQLite's in-memory test database would
    go with it) and the settings point at a closed port on 127.0.0.1 (PostgreSQL) or a
    file in a folder that does not exist (SQLite), so the next query fails to connect
    as it would in production. Yields the details that must not leak.
    """
    connection = connections["default"]
    saved_settings = dict(connection.settings_dict)
    saved_connection = connection.connection
    saved_state = {name: getattr(connection, name) for name in CONNECTION_STATE}
    connection.connection = None
    if connection.vendor == "sqlite":
        missing = tmp_path / "no-such-folder" / "postmaster.sqlite3"
        connection.settings_dict["NAME"] = str(missing)
        secrets = (str(missing), "no-such-folder")
    else:
        port = _closed_port()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=port)
        secrets = ("127.0.0.1", str(port), saved_settings["NAME"])
    try:
        yield secrets
    finally:
        if connection.connection is not None:
            connection.connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved_settings)
        connection.connection = saved_connection
        for name, value in saved_state.items():
            setattr(connection, name, value)


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def client():
    # Answers as a client sees them: Django's test client would re-raise instead.
    return Client(raise_request_exception=False)


@pytest.fixture
def database_down(django_db_blocker, tmp_path):
    with django_db_blocker.unblock(), database_unreachable(tmp_path) as secrets:
        yield secrets


def assert_plain_json(response, status: int, secrets=()):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.content.decode()
    for leak in (*LEAKS, *secrets):
        assert leak not in body, f"{leak!r} in {body}"
    return response.json()


def test_database_down_while_checking_the_token(client, debug, database_down):
    """The token check is the first query of every call: the answer is 503, retry later."""
    response = client.post(
        EVENTS_URL,
        event_body(),
        content_type="application/json",
        headers=bearer("pm_" + "x" * 43),
    )

    answer = assert_plain_json(response, 503, database_down)
    assert answer == {"detail": errors.UNAVAILABLE_DETAIL}
    assert response["Retry-After"] == str(errors.RETRY_AFTER)


def test_database_down_before_the_view(client, debug, database_down):
    """A session cookie makes a middleware read the database before the API runs."""
    client.cookies["sessionid"] = "a" * 32

    response = client.get(f"{EVENTS_URL}/1", headers=bearer("pm_" + "x" * 43))

    answer = assert_plain_json(response, 503, database_down)
    assert answer == {"detail": errors.UNAVAILABLE_DETAIL}
    assert response["Retry-After"] == str(errors.RETRY_AFTER)


@pytest.mark.django_db
def test_an_unexpected_error_in_the_api_is_a_plain_500(api, pipeline, debug, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("secret detail in /srv/postmaster/apps/api/selectors.py")

    monkeypatch.setattr("apps.api.views.api_event_get", broken)
    api.raise_request_exception = False

    response = api.get(f"{EVENTS_URL}/1")

    answer = assert_plain_json(response, 500, ("secret detail", "RuntimeError", "/srv"))
    assert answer == {"detail": errors.FAILED_DETAIL}
    assert "Retry-After" not in response


@pytest.mark.django_db
def test_an_unexpected_error_before_the_view_is_a_plain_500(client, debug, monkeypatch):
    def broken(request, view_name):
        raise KeyError("secret detail")

    monkeypatch.setattr("apps.accounts.middleware.reauth_needed", broken)

    response = client.get(f"{EVENTS_URL}/1")

    answer = assert_plain_json(response, 500, ("secret detail", "KeyError"))
    assert answer == {"detail": errors.FAILED_DETAIL}


@pytest.mark.django_db
def test_an_unknown_api_url_is_a_json_404(client, debug):
    response = client.get("/api/v2/events")

    answer = assert_plain_json(response, 404)
    assert "/api/v1/events" in answer["detail"]


@pytest.mark.django_db
def test_a_method_the_url_does_not_take_is_a_json_405(api, debug):
    response = api.delete(EVENTS_URL)

    answer = assert_plain_json(response, 405)
    assert "method" in answer["detail"]
    assert "POST" in response["Allow"]


@pytest.mark.django_db
def test_other_pages_keep_django_error_pages(client, settings):
    settings.DEBUG = False

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def _real_error(connect):
    try:
        connect()
    except Exception as error:
        return error
    raise AssertionError("it connected to a closed port")


@pytest.mark.parametrize(
    "connect",
    [
        lambda port: redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=5).ping(),
        lambda port: kombu.Connection(f"redis://127.0.0.1:{port}//").ensure_connection(
            max_retries=1, interval_start=0, interval_step=0
        ),
    ],
    ids=["cache", "broker"],
)
def test_an_unreachable_cache_or_broker_is_a_503(connect):
    """What redis-py and kombu raise against a closed port, answered as the database's."""
    port = _closed_port()
    error = _real_error(lambda: connect(port))

    response = errors.error_answer(error, log=False)

    assert response.status_code == 503
    assert str(port) not in response.content.decode()
    assert json.loads(response.content) == {"detail": errors.UNAVAILABLE_DETAIL}
    assert response["Retry-After"] == str(errors.RETRY_AFTER)
