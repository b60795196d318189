"""`make run` (scripts/run): it comes up, runs twice, and Ctrl-C stops all it started."""

import email
import email.policy
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from apps.demo.management.commands.seed_demo import DEMO_API_TOKEN

# `make run` migrates a new SQLite file, seeds it and starts four processes, each test more
# than once: minutes on a busy 2-core machine, never forever.
pytestmark = pytest.mark.timeout(900)
# How long `make run` may take to say it is ready.
READY_SECONDS = 300

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _read_until(stream, text: str, timeout: float) -> str:
    output, deadline = "", time.monotonic() + timeout
    while text not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{text!r} did not appear in time; output so far:\n{output}")
        if select.select([stream], [], [], remaining)[0]:
            chunk = os.read(stream.fileno(), 65536).decode(errors="replace")
            if not chunk:
                pytest.fail(f"the script ended before {text!r}; output:\n{output}")
            output += chunk
    return output


@contextmanager
def _running(env: dict) -> Iterator[list[str]]:
    """scripts/run, up and answering; stopped with Ctrl-C after the block.

    Yields its output so far (a list of one string, completed when it stopped).
    """
    # Its own session, like a terminal's foreground job: Ctrl-C there is SIGINT to the group.
    process = subprocess.Popen(
        ["bash", "scripts/run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output = [
            _read_until(process.stdout, "(signed in as the system administrator)", READY_SECONDS)
        ]
        assert _listening(int(env["PORT"]))
        assert _listening(int(env["MAILCATCHER_PORT"]))
        assert _listening(int(env["PROVIDER_STANDIN_PORT"]))
        yield output
        os.killpg(process.pid, signal.SIGINT)
        output[0] += _read_until(process.stdout, "Postmaster stopped.", 30)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.stdout.close()
    assert not _listening(int(env["PORT"]))
    assert not _listening(int(env["MAILCATCHER_PORT"]))
    assert not _listening(int(env["PROVIDER_STANDIN_PORT"]))


def _run_once(env: dict) -> str:
    with _running(env) as output:
        pass
    return output[0]


def _sqlite_env(tmp_path: Path) -> dict:
    """`make run`'s own setting: SQLite, no broker, in-process cache (whatever CI exports)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CELERY_BROKER_URL", "CACHE_URL", "SITE_URL"}
    }
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PORT": str(_free_port()),
        "MAILCATCHER_PORT": str(_free_port()),
        "PROVIDER_STANDIN_PORT": str(_free_port()),
    }


def test_make_run_starts_prints_logins_runs_twice_and_stops_on_ctrl_c(tmp_path):
    env = _sqlite_env(tmp_path)
    first = _run_once(env)
    assert f"http://127.0.0.1:{env['PORT']}/" in first
    assert "admin@postmaster.test" in first
    assert "alice@acme.test" in first
    second = _run_once(env)  # the same database: seeding again must work
    assert "Demo data is ready." in second


# The README's "Send an event" example.
README_EVENT = {
    "pipeline": "deploy-prod",
    "event_type": "pipeline_failed",
    "level": "error",
    "run_id": "4711",
    "run_url": "https://ci.example.com/checkout/deploy-prod/runs/4711",
    "message": "Migration 0042 failed.",
    "idempotency_key": "deploy-prod-4711-failed",
}


def _post_event(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/events",
        data=json.dumps(README_EVENT).encode(),
        headers={"Authorization": f"Bearer {DEMO_API_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202
        return json.loads(response.read())


def _caught(database: Path) -> list[bytes]:
    """The raw messages the catcher stored in the SQLite file (by the catcher's process)."""
    with closing(sqlite3.connect(database, timeout=30)) as db:
        return [bytes(raw) for (raw,) in db.execute("SELECT raw FROM mailcatcher_caughtmessage")]


def _wait_for(condition, *, timeout: float):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"not done after {timeout} seconds")
        time.sleep(0.2)
    return found


def test_an_event_posted_to_make_run_arrives_in_the_catcher_with_links_to_its_port(tmp_path):
    """The SQLite path end to end: the portal (tasks in-process), the catcher and the sweep,
    three processes writing one SQLite file; the mail's links name the port it serves on."""
    env = _sqlite_env(tmp_path)
    port = env["PORT"]
    with _running(env):
        assert _post_event(int(port))["repeat"] is False
        messages = _wait_for(lambda: _caught(tmp_path / "demo.sqlite3"), timeout=60)

    message = email.message_from_bytes(messages[0], policy=email.policy.default)
    assert "Migration 0042 failed." in message.get_body(("plain",)).get_content()
    site = f"http://127.0.0.1:{port}/"
    assert message["List-Unsubscribe"].startswith(f"<{site}")
    links = re.findall(r"https?://127\.0\.0\.1:\d+/", messages[0].decode(errors="replace"))
    assert links
    assert set(links) == {site}


def _database_from_before_the_rebuild(path: Path) -> None:
    """A development database as an older checkout left it: migrations that no longer exist."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE django_migrations (id integer PRIMARY KEY AUTOINCREMENT, "
            "app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied datetime NOT NULL)"
        )
        db.executemany(
            "INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, '2026-01-01')",
            [("mailsettings", "0001_initial"), ("providers", "0001_initial")],
        )
        db.execute("CREATE TABLE mailsettings_smtpsettings (id integer PRIMARY KEY)")


def test_make_run_recreates_a_database_from_before_the_migrations_were_rebuilt(tmp_path):
    env = _sqlite_env(tmp_path)
    _database_from_before_the_rebuild(tmp_path / "demo.sqlite3")
    output = _run_once(env)
    assert "The development database was made by an older Postmaster" in output
    assert "(apps: mailsettings, providers)" in output
    assert "Traceback" not in output
    assert "admin@postmaster.test" in output
    [kept] = tmp_path.glob("demo.sqlite3.before-*")
    assert "moved aside to" in output
    assert kept.name in output


def test_a_stale_database_that_is_not_the_demo_file_is_explained_not_removed(tmp_path):
    env = _sqlite_env(tmp_path)
    _database_from_before_the_rebuild(tmp_path / "demo.sqlite3")
    check = [".venv/bin/python", "manage.py", "demo_database_check"]
    result = subprocess.run(
        check, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "made by an older Postmaster" in result.stderr
    assert "Point DATABASE_URL at a new, empty database" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "demo.sqlite3").is_file()
