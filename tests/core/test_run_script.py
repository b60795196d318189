"""`make run` (scripts/run) in a terminal: it comes up, runs twice, and Ctrl-C stops it all."""

import os
import pty
import select
import socket
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


def _read_until(fd: int, text: str, timeout: float) -> str:
    output, deadline = "", time.monotonic() + timeout
    while text not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{text!r} did not appear in time; output so far:\n{output}")
        if select.select([fd], [], [], remaining)[0]:
            try:
                output += os.read(fd, 65536).decode(errors="replace")
            except OSError:  # the terminal closed: the script ended
                pytest.fail(f"the script ended before {text!r}; output:\n{output}")
    return output


def _run_once(env: dict) -> str:
    pid, fd = pty.fork()
    if pid == 0:  # the child, in a new session with the terminal as its own
        os.chdir(ROOT)
        os.execvpe("bash", ["bash", "scripts/run"], env)
    try:
        output = _read_until(fd, "(signed in as the system administrator)", timeout=120)
        assert _listening(int(env["PORT"]))
        assert _listening(int(env["MAILCATCHER_PORT"]))
        os.write(fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the whole foreground group
        output += _read_until(fd, "Postmaster stopped.", timeout=30)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not _listening(int(env["PORT"]))
    assert not _listening(int(env["MAILCATCHER_PORT"]))
    return output


def test_make_run_starts_prints_logins_runs_twice_and_stops_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "CACHE_URL"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "PORT": str(_free_port()),
        "MAILCATCHER_PORT": str(_free_port()),
    }
    first = _run_once(env)
    assert f"http://127.0.0.1:{env['PORT']}/" in first
    assert "admin@postmaster.test" in first
    assert "alice@acme.test" in first
    second = _run_once(env)  # the same database: seeding again must work
    assert "Demo data is ready." in second
