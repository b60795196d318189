"""`make run` (scripts/run): it comes up, runs twice, and Ctrl-C stops all it started."""

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

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


def _run_once(env: dict) -> str:
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
        output = _read_until(process.stdout, "(signed in as the system administrator)", 120)
        assert _listening(int(env["PORT"]))
        assert _listening(int(env["MAILCATCHER_PORT"]))
        assert _listening(int(env["PROVIDER_STANDIN_PORT"]))
        os.killpg(process.pid, signal.SIGINT)
        output += _read_until(process.stdout, "Postmaster stopped.", 30)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.stdout.close()
    assert not _listening(int(env["PORT"]))
    assert not _listening(int(env["MAILCATCHER_PORT"]))
    assert not _listening(int(env["PROVIDER_STANDIN_PORT"]))
    return output


def test_make_run_starts_prints_logins_runs_twice_and_stops_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CACHE_URL"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PORT": str(_free_port()),
        "MAILCATCHER_PORT": str(_free_port()),
        "PROVIDER_STANDIN_PORT": str(_free_port()),
    }
    first = _run_once(env)
    assert f"http://127.0.0.1:{env['PORT']}/" in first
    assert "admin@postmaster.test" in first
    assert "alice@acme.test" in first
    second = _run_once(env)  # the same database: seeding again must work
    assert "Demo data is ready." in second
