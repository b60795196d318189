import os
import signal
import socket
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.mailcatcher.models import CaughtMessage
from tests.mailcatcher.fixtures import free_port, multipart_message, smtp_send
from tests.waiting import wait_until


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _wait_until_listening(port: int, timeout: float = 30) -> bool:
    try:
        wait_until(lambda: _listening(port), timeout=timeout, what=f"a server on port {port}")
    except AssertionError:
        return False
    return True


def test_command_stores_what_it_receives_and_stops_on_sigterm(transactional_db, settings):
    # In-process, so the server sees the test database (a subprocess could
    # not see SQLite's in-memory one). The port comes from the settings.
    settings.MAILCATCHER_PORT = free_port()
    sent = []

    def client():
        # SIGTERM only once the server is up: by then the command has
        # installed its own handler, so the signal cannot kill pytest.
        if _wait_until_listening(settings.MAILCATCHER_PORT):
            try:
                smtp_send(multipart_message(), port=settings.MAILCATCHER_PORT)
                sent.append(True)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=client)
    thread.start()
    out = StringIO()
    previous_handler = signal.getsignal(signal.SIGTERM)

    call_command("mailcatcher", stdout=out)
    thread.join(timeout=10)

    assert sent == [True]
    assert CaughtMessage.objects.get().subject == "Build 42 failed"
    assert f"listening on smtp://127.0.0.1:{settings.MAILCATCHER_PORT}" in out.getvalue()
    assert "/mail/" in out.getvalue()
    assert out.getvalue().endswith("Mail catcher stopped.\n")
    assert signal.getsignal(signal.SIGTERM) is previous_handler


# It gives up at once rather than waiting for the port to free: bounded by a deadline
# (a hang ends the run, naming this test), not timed with a stopwatch.
@pytest.mark.timeout(30)
def test_command_says_plainly_when_the_port_is_taken(db):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]

        with pytest.raises(CommandError, match=rf"Cannot listen on 127.0.0.1:{port} .*--port"):
            call_command("mailcatcher", "--host", "127.0.0.1", "--port", str(port))
