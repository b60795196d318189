"""The in-process mail catcher and a way to send it a real message.

Imported by tests/mailcatcher/conftest.py and tests/e2e/conftest.py.
"""

import smtplib
import socket
from email.message import EmailMessage

import pytest

from apps.mailcatcher.server import catcher_start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def multipart_message(
    *,
    subject: str = "Build 42 failed",
    sender: str = "Postmaster <postmaster@example.com>",
    to: str = "dev@example.com",
    text: str = "Build 42 failed at the test stage.",
    html: str = "<p>Build <strong>42</strong> failed at the test stage.</p>",
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def smtp_send(message: EmailMessage, *, port: int, login: tuple[str, str] | None = None) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        if login:
            client.login(*login)
        client.send_message(message)


@pytest.fixture
def mail_catcher(transactional_db):
    """A real catcher on a free port of 127.0.0.1 (`.hostname`, `.port`).

    The server stores messages from its own thread, so the test needs
    transactional_db to see them.
    """
    controller = catcher_start(host="127.0.0.1", port=free_port())
    yield controller
    controller.stop()
