"""Every outcome of a test email, each against a real SMTP server on 127.0.0.1."""

import email
import email.policy
import smtplib

import pytest
from django.core.mail import EmailMessage

from apps.connections.models import Preset, Security
from apps.connections.presets import GMAIL_APP_PASSWORD, MICROSOFT365_BASIC_AUTH
from apps.connections.smtp import (
    Outcome,
    StartTLSNotOffered,
    classify,
    send_test_email,
    smtp_backend,
)
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.smtp_servers import (
    QUEUED_REPLY,
    REJECTIONS,
    UNTRUSTED_CA,
    closed_port,
    hang_up_server,
    silent_server,
    smtp_server,
)

PASSWORD = "s3cret-pass"
TO = "ops@example.com"


def send(password="", **fields):
    row = SmtpSettingsFactory.build(**fields)
    return send_test_email(
        row, password=password, to=TO, subject="Postmaster test email", body="Hello."
    )


def parsed(received):
    return email.message_from_bytes(received.content, policy=email.policy.default)


def test_sent_shows_the_server_reply_and_the_message_arrives_as_configured():
    with smtp_server() as server:
        result = send(**server.connection, from_name="Postmaster Alerts")

    assert result.ok
    assert result.outcome is Outcome.SENT
    assert str(result.reply) == QUEUED_REPLY
    assert result.message == "The test email was accepted by 127.0.0.1."
    assert TO in result.hint
    [received] = server.messages
    assert received.mail_from == "postmaster@example.com"
    assert received.rcpt_tos == [TO]
    message = parsed(received)
    assert message["From"].addresses[0].display_name == "Postmaster Alerts"
    assert message["Subject"] == "Postmaster test email"
    assert message.get_content().strip() == "Hello."


def test_starttls_with_a_trusted_certificate_logs_in_after_encrypting(trusted_ca):
    with smtp_server(tls="starttls", users={"ann": PASSWORD}) as server:
        result = send(PASSWORD, **server.connection, username="ann")

    assert result.ok, result.message
    assert server.logins == ["ann"]
    assert len(server.messages) == 1


def test_implicit_tls_with_a_trusted_certificate(trusted_ca):
    with smtp_server(tls="implicit", users={"ann": PASSWORD}) as server:
        result = send(PASSWORD, **server.connection, username="ann")

    assert result.ok, result.message
    assert server.logins == ["ann"]


def test_smtp_domain_logs_in_as_domain_backslash_user(trusted_ca):
    with smtp_server(tls="starttls", users={"CORP\\ann": PASSWORD}) as server:
        result = send(PASSWORD, **server.connection, username="ann", smtp_domain="CORP")

    assert result.ok, result.message
    assert server.logins == ["CORP\\ann"]


def test_connection_refused():
    result = send(host="127.0.0.1", port=closed_port())

    assert result.outcome is Outcome.CONNECTION_REFUSED
    assert not result.ok
    assert "refused the connection" in result.message
    assert "Check the SMTP host and port" in result.hint


def test_name_not_resolved():
    # RFC 2606 reserves .invalid: it never resolves, and fails without a network.
    result = send(host="smtp.example.invalid")

    assert result.outcome is Outcome.NAME_NOT_RESOLVED
    assert result.message == "The host name smtp.example.invalid could not be found."
    assert "spelling" in result.hint


def test_timed_out_when_the_server_never_answers():
    with silent_server() as listener:
        result = send(host=listener.host, port=listener.port, timeout=1)

    assert result.outcome is Outcome.TIMED_OUT
    assert "did not answer" in result.message
    assert "within 1 seconds" in result.message
    assert "firewall" in result.hint


@pytest.mark.django_db
def test_the_connection_timeout_setting_applies_to_an_existing_row(settings):
    from apps.connections.models import SmtpSettings
    from apps.delivery.sending import Connection

    row = SmtpSettingsFactory(tenant=None, timeout=15)  # saved under the default of 15

    settings.CONNECTION_TIMEOUT = 0.5  # changed after the row was saved
    row = SmtpSettings.objects.get(pk=row.pk)
    assert smtp_backend(row, password="", alias="test").timeout == 0.5  # test emails
    assert Connection(row).backend.timeout == 0.5  # deliveries
    with silent_server() as listener:
        row.host, row.port = listener.host, listener.port
        result = send_test_email(row, password="", to=TO, subject="s", body="b")
    assert result.outcome is Outcome.TIMED_OUT
    assert "within 0.5 seconds" in result.message

    # A row's own shorter timeout still counts.
    row.timeout = 2
    settings.CONNECTION_TIMEOUT = 30
    assert smtp_backend(row, password="", alias="test").timeout == 2


def test_tls_handshake_failed_when_implicit_tls_meets_a_plain_server():
    with smtp_server() as server:
        result = send(host=server.host, port=server.port, security=Security.TLS)

    assert result.outcome is Outcome.TLS_HANDSHAKE_FAILED
    assert "encrypted (TLS) connection" in result.message
    assert "security mode" in result.hint


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_certificate_not_trusted(trusted_ca, tls):
    with smtp_server(tls=tls, certificate=UNTRUSTED_CA, users={"ann": PASSWORD}) as server:
        result = send(PASSWORD, **server.connection, username="ann")

    assert result.outcome is Outcome.CERTIFICATE_NOT_TRUSTED
    assert "certificate" in result.message
    assert "not trusted" in result.message
    assert "SMTP_CA_BUNDLE" in result.hint
    assert server.auth_mechanisms == []


def test_certificates_are_verified_by_default(settings):
    settings.SMTP_CA_BUNDLE = ""
    with smtp_server(tls="starttls") as server:
        result = send(**server.connection)

    assert result.outcome is Outcome.CERTIFICATE_NOT_TRUSTED
    assert server.messages == []


def test_starttls_not_offered_sends_no_password():
    # The server would take a login in clear, but the settings ask for STARTTLS.
    with smtp_server(users={"ann": PASSWORD}, auth_over_plain=True) as server:
        result = send(
            PASSWORD, host=server.host, port=server.port, security=Security.STARTTLS, username="ann"
        )

    assert result.outcome is Outcome.STARTTLS_NOT_OFFERED
    assert "does not offer STARTTLS" in result.message
    assert "No password was sent." in result.message
    assert server.auth_mechanisms == []
    assert server.logins == []


def test_authentication_failed(trusted_ca):
    with smtp_server(tls="starttls", users={"ann": PASSWORD}) as server:
        result = send("wrong-password", **server.connection, username="ann")

    assert result.outcome is Outcome.AUTH_FAILED
    assert result.message == "127.0.0.1 rejected the username or password."
    assert "enter the password again" in result.hint
    assert result.reply.code == 535
    assert server.auth_mechanisms  # it tried
    assert server.logins == []


@pytest.mark.parametrize(
    ("preset", "hint"),
    [(Preset.GMAIL, GMAIL_APP_PASSWORD), (Preset.MICROSOFT365, MICROSOFT365_BASIC_AUTH)],
)
def test_authentication_failed_at_a_known_provider_names_its_fix(trusted_ca, preset, hint):
    with smtp_server(tls="starttls", users={"ann": PASSWORD}) as server:
        result = send("account-password", **server.connection, username="ann", preset=preset)

    assert result.outcome is Outcome.AUTH_FAILED
    assert result.hint == hint


def test_auth_not_offered_sends_no_password():
    with smtp_server() as server:
        result = send(PASSWORD, **server.connection, username="ann")

    assert result.outcome is Outcome.AUTH_NOT_OFFERED
    assert "No password was sent." in result.message
    assert server.auth_mechanisms == []


def test_login_required_but_none_configured(trusted_ca):
    with smtp_server(tls="starttls", users={"ann": PASSWORD}) as server:
        result = send(**server.connection)

    assert result.outcome is Outcome.AUTH_REQUIRED
    assert "requires a login" in result.message
    assert result.reply.code == 530


def test_sender_rejected():
    with smtp_server(reject="mail") as server:
        result = send(**server.connection)

    assert result.outcome is Outcome.SENDER_REJECTED
    assert result.message == "The server refused the sender address postmaster@example.com."
    assert str(result.reply) == REJECTIONS["mail"]


def test_recipient_rejected():
    with smtp_server(reject="rcpt") as server:
        result = send(**server.connection)

    assert result.outcome is Outcome.RECIPIENT_REJECTED
    assert result.message == f"The server refused the recipient {TO}."
    assert str(result.reply) == REJECTIONS["rcpt"]


def test_message_rejected():
    with smtp_server(reject="data") as server:
        result = send(**server.connection)

    assert result.outcome is Outcome.MESSAGE_REJECTED
    assert str(result.reply) == REJECTIONS["data"]


def test_server_disconnected():
    with hang_up_server() as listener:
        result = send(host=listener.host, port=listener.port)

    assert result.outcome is Outcome.DISCONNECTED
    assert "closed the connection unexpectedly" in result.message


def test_a_batch_shares_one_connection_and_keeps_each_reply():
    row = SmtpSettingsFactory.build()
    with smtp_server() as server:
        row.port = server.port
        backend = smtp_backend(row, password="", alias="batch")
        messages = [EmailMessage(f"n{i}", "body", row.from_email, [TO]) for i in range(3)]
        with backend:
            assert backend.send_messages(messages) == 3

    assert [str(reply) for reply in backend.replies] == [QUEUED_REPLY] * 3
    assert server.greetings == 1
    assert len(server.messages) == 3


def test_starttls_not_offered_is_raised_before_any_password():
    row = SmtpSettingsFactory.build(security=Security.STARTTLS, username="ann")
    with smtp_server(users={"ann": PASSWORD}, auth_over_plain=True) as server:
        row.port = server.port
        backend = smtp_backend(row, password=PASSWORD, alias="strict")
        with pytest.raises(StartTLSNotOffered):
            backend.open()

    assert server.auth_mechanisms == []


@pytest.mark.parametrize(
    ("error", "outcome", "transient"),
    [
        (smtplib.SMTPSenderRefused(451, b"4.3.0 Try later", "a@example.com"), "sender", True),
        (smtplib.SMTPSenderRefused(550, b"5.7.1 No", "a@example.com"), "sender", False),
        (smtplib.SMTPRecipientsRefused({"a@example.com": (452, b"Mailbox full")}), "rcpt", True),
        (smtplib.SMTPDataError(554, b"Spam"), "data", False),
        (ConnectionRefusedError(), "refused", True),
        (smtplib.SMTPAuthenticationError(535, b"Bad"), "auth", False),
    ],
)
def test_classify_tells_transient_from_permanent(error, outcome, transient):
    expected = {
        "sender": Outcome.SENDER_REJECTED,
        "rcpt": Outcome.RECIPIENT_REJECTED,
        "data": Outcome.MESSAGE_REJECTED,
        "refused": Outcome.CONNECTION_REFUSED,
        "auth": Outcome.AUTH_FAILED,
    }[outcome]

    classification = classify(error)

    assert classification.outcome is expected
    assert classification.transient is transient
