"""Django's own mail goes through the host settings stored in the database."""

import email
import email.policy

import pytest
from django.core import mail
from django.core.mail import EmailMessage, InvalidMailer, send_mail
from django.utils.deprecation import RemovedInDjango2028Warning

from apps.connections.backends import HostSmtpSettingsMissing
from apps.connections.services import smtp_settings_update
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.smtp_servers import smtp_server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("host_mailer")]


def from_header(received):
    return email.message_from_bytes(received.content, policy=email.policy.default)["From"]


def test_send_mail_reaches_the_host_server_from_the_configured_name():
    with smtp_server() as server:
        SmtpSettingsFactory(**server.connection, from_name="Postmaster Alerts")

        sent = send_mail("Hello", "Body", None, ["ops@example.com"], using="default")

    assert sent == 1
    [received] = server.messages
    assert received.mail_from == "postmaster@example.com"
    assert received.rcpt_tos == ["ops@example.com"]
    sender = from_header(received).addresses[0]
    assert (sender.display_name, sender.addr_spec) == (
        "Postmaster Alerts",
        "postmaster@example.com",
    )


def test_server_email_is_replaced_too_but_an_explicit_sender_is_kept(settings):
    with smtp_server() as server:
        SmtpSettingsFactory(**server.connection)
        EmailMessage("a", "b", settings.SERVER_EMAIL, ["ops@example.com"]).send(using="default")
        EmailMessage("a", "b", "team@example.com", ["ops@example.com"]).send(using="default")

    assert [m.mail_from for m in server.messages] == ["postmaster@example.com", "team@example.com"]


def test_logs_in_with_the_stored_password_over_starttls(trusted_ca):
    with smtp_server(tls="starttls", users={"ann": "Pw-123"}) as server:
        SmtpSettingsFactory(**server.connection, username="ann", secret="Pw-123")

        send_mail("Hello", "Body", None, ["ops@example.com"], using="default")

    assert server.logins == ["ann"]
    assert len(server.messages) == 1


def test_without_host_settings_the_error_says_who_must_set_them():
    with pytest.raises(HostSmtpSettingsMissing) as caught:
        send_mail("Hello", "Body", None, ["ops@example.com"], using="default")

    assert str(caught.value) == (
        "No host SMTP settings: a system administrator must set them in "
        "Host administration → Email settings."
    )


def test_after_a_save_the_next_mail_goes_to_the_new_server(
    system_admin, django_capture_on_commit_callbacks
):
    with smtp_server() as old, smtp_server() as new:
        row = SmtpSettingsFactory(**old.connection)
        send_mail("first", "Body", None, ["ops@example.com"], using="default")
        row.port = new.port
        with django_capture_on_commit_callbacks(execute=True):
            smtp_settings_update(actor=system_admin, smtp_settings=row)

        send_mail("second", "Body", None, ["ops@example.com"], using="default")

    assert len(old.messages) == 1
    assert len(new.messages) == 1


def test_a_batch_goes_over_one_connection():
    with smtp_server() as server:
        SmtpSettingsFactory(**server.connection)
        messages = [EmailMessage(f"n{i}", "b", None, ["ops@example.com"]) for i in range(3)]
        with mail.mailers["default"] as mailer:
            assert mailer.send_messages(messages) == 3

    assert server.greetings == 1
    assert len(server.messages) == 3


def test_unknown_options_are_refused_like_any_mailer(settings):
    settings.MAILERS = {"default": settings.MAILERS["default"] | {"OPTIONS": {"host": "x"}}}

    with pytest.raises(InvalidMailer, match="Unknown options 'host'"):
        mail.mailers["default"]


def test_the_deprecated_fail_silently_is_still_honoured():
    with pytest.warns(RemovedInDjango2028Warning):
        connection = mail.get_connection(fail_silently=True)

    assert connection.send_messages([EmailMessage("a", "b", None, ["ops@example.com"])]) == 0
