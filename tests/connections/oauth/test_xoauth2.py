"""XOAUTH2 against a real SMTP server on 127.0.0.1 that accepts only the stand-in's tokens."""

import smtplib
import ssl
from email.message import EmailMessage

import pytest

from apps.connections.xoauth2 import xoauth2_authenticate, xoauth2_login, xoauth2_string
from tests.connections.oauth.conftest import DIRECTORY, MAILBOX, MICROSOFT_CLIENT_ID
from tests.connections.oauth.factories import OAuthGrantFactory
from tests.connections.oauth.xoauth2_server import REFUSED_REPLY, xoauth2_server
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.smtp_servers import smtp_server

pytestmark = pytest.mark.django_db

SECRET = "m365-secret-Value~abc"


@pytest.fixture
def microsoft(idp, tenant):
    idp.register(
        client_id=MICROSOFT_CLIENT_ID,
        client_secret=SECRET,
        directory=DIRECTORY,
        mailboxes={MAILBOX},
    )
    smtp = SmtpSettingsFactory(tenant=tenant, username=MAILBOX, security="starttls")
    return OAuthGrantFactory(smtp_settings=smtp, secret=SECRET).smtp_settings


def _connect(server, settings) -> smtplib.SMTP:
    connection = smtplib.SMTP(server.host, server.port, timeout=5)
    context = ssl.create_default_context(cafile=settings.SMTP_CA_BUNDLE)
    connection.starttls(context=context)
    return connection


def _message(number: int = 1) -> EmailMessage:
    message = EmailMessage()
    message["From"] = MAILBOX
    message["To"] = "oncall@example.com"
    message["Subject"] = f"Pipeline failed #{number}"
    message.set_content("Stage deploy failed.")
    return message


def test_the_initial_client_response_is_the_sasl_xoauth2_string():
    assert xoauth2_string("ann@example.com", "ya29.t") == (
        "user=ann@example.com\x01auth=Bearer ya29.t\x01\x01"
    )
    with pytest.raises(ValueError, match="control character"):
        xoauth2_string("ann@example.com\r\nRCPT TO:<x>", "t")


def test_microsoft_token_signs_in_and_the_message_is_accepted(idp, microsoft, settings):
    with xoauth2_server(idp) as server, _connect(server, settings) as connection:
        code, _ = xoauth2_login(connection, microsoft, MAILBOX)
        connection.send_message(_message())
    assert code == 235
    assert server.auth_mechanisms == ["XOAUTH2"]
    assert server.logins == [MAILBOX]
    assert len(server.messages) == 1
    assert server.messages[0].rcpt_tos == ["oncall@example.com"]


def test_a_second_connection_reuses_the_cached_token(idp, microsoft, settings):
    with xoauth2_server(idp) as server:
        for number in (1, 2):
            with _connect(server, settings) as connection:
                xoauth2_login(connection, microsoft, MAILBOX)
                connection.send_message(_message(number))
    assert len(server.messages) == 2
    assert idp.token_requests == ["client_credentials"]


def test_a_token_the_server_refuses_is_replaced_once(idp, microsoft, settings):
    with xoauth2_server(idp) as server:
        with _connect(server, settings) as connection:
            xoauth2_login(connection, microsoft, MAILBOX)
        # The provider invalidates the token early; the cache cannot know.
        idp.expire_tokens()
        with _connect(server, settings) as connection:
            code, _ = xoauth2_login(connection, microsoft, MAILBOX)
            connection.send_message(_message())
    assert code == 235
    assert idp.token_requests == ["client_credentials", "client_credentials"]
    assert len(server.messages) == 1


def test_a_refused_token_gets_the_empty_line_and_an_authentication_error(idp, settings):
    with xoauth2_server(idp) as server, _connect(server, settings) as connection:
        with pytest.raises(smtplib.SMTPAuthenticationError) as raised:
            xoauth2_authenticate(connection, MAILBOX, "forged-token")
        # The client answered the JSON error with an empty line, so the
        # conversation is still in step: the server takes the next command.
        assert connection.noop()[0] == 250
    assert raised.value.smtp_code == 535
    assert raised.value.smtp_error.decode() == REFUSED_REPLY.removeprefix("535 ")
    assert server.recorder.error_answers == [b""]
    assert server.logins == []


def test_a_token_for_another_mailbox_is_refused(idp, microsoft, settings):
    with xoauth2_server(idp) as server, _connect(server, settings) as connection:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            xoauth2_login(connection, microsoft, "someone-else@contoso.example")
        with pytest.raises(smtplib.SMTPSenderRefused):
            connection.send_message(_message())
    assert server.messages == []


def test_a_server_without_xoauth2_gets_no_token(idp, microsoft, settings):
    with (
        smtp_server(tls="starttls", users={"ann": "pw"}) as server,
        _connect(server, settings) as connection,
        pytest.raises(smtplib.SMTPNotSupportedError, match="does not offer XOAUTH2"),
    ):
        xoauth2_login(connection, microsoft, MAILBOX)
    assert server.auth_mechanisms == []
