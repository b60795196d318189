"""The portal's own mail (apps/core/mail.py): never inside a transaction; plain words."""

import smtplib
import ssl

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from apps.core.mail import (
    MailInTransactionError,
    in_transaction,
    mail_failure_in_words,
    mail_on_commit,
)
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.smtp_servers import closed_port, smtp_server

pytestmark = pytest.mark.django_db


def send(to="someone@example.com"):
    mail.send_mail("Hello", "Body", None, [to], using="default")


def test_the_tests_own_transaction_does_not_count():
    assert not in_transaction()
    with transaction.atomic():
        assert in_transaction()


@pytest.mark.usefixtures("host_mailer")
def test_the_host_backend_refuses_to_send_inside_a_transaction():
    with smtp_server() as server:
        SmtpSettingsFactory(**server.connection)
        with pytest.raises(MailInTransactionError, match="on_commit"), transaction.atomic():
            send()
        assert server.messages == []

        send()  # outside: it goes

        assert len(server.messages) == 1


def test_mail_on_commit_waits_for_the_commit(mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outcome = mail_on_commit(send, what="A test message")
        assert (outcome.sent, mailoutbox) == (None, [])
    assert outcome.sent is True
    assert len(mailoutbox) == 1


def test_mail_on_commit_keeps_a_failure_in_plain_words(
    settings, django_capture_on_commit_callbacks
):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": closed_port(), "timeout": 5},
        }
    }
    with django_capture_on_commit_callbacks(execute=True):
        outcome = mail_on_commit(send, what="A test message")

    assert outcome.failed
    assert outcome.error == "the host's mail server could not be reached"


def test_a_rolled_back_transaction_sends_nothing(mailoutbox, django_capture_on_commit_callbacks):
    def roll_back():
        with transaction.atomic():
            mail_on_commit(send, what="A test message")
            raise ZeroDivisionError

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ZeroDivisionError),
    ):
        roll_back()
    assert callbacks == []
    assert mailoutbox == []


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (smtplib.SMTPDataError(451, b"4.3.0 database is locked"), "could not take it just now"),
        (smtplib.SMTPDataError(554, b"5.7.1 spam"), "refused the message"),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad"), "refused Postmaster's sign-in"),
        (smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"no")}), "refused the recipient"),
        (smtplib.SMTPSenderRefused(553, b"no", "x@y.z"), "refused the sender address"),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), "closed the connection"),
        (ssl.SSLError(1, "[SSL] wrong version number"), "encrypted connection"),
        (TimeoutError("timed out"), "did not answer in time"),
        (ConnectionRefusedError(111, "Connection refused"), "could not be reached"),
        (ImproperlyConfigured("No host SMTP settings"), "Host administration → Email settings"),
        (KeyError("secret"), "unexpected error"),
    ],
)
def test_failures_in_plain_words(error, words):
    said = mail_failure_in_words(error)

    assert words in said
    # Never the exception's own text: no tuple, bytes, reply code or server words.
    for raw in ("b'", "451", "554", "535", "550", "locked", "spam", "secret", "111", "SSL]"):
        assert raw not in said
