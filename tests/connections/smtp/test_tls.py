"""TLS as configured, never quietly less: each promise against a real server on 127.0.0.1.

(tests/connections/smtp/test_transport.py has the test email's wording for each
outcome; these check what reached the server, on every path that connects.)
"""

import pytest
from django.urls import reverse

from apps.connections.models import Security
from apps.connections.smtp import Outcome, StartTLSNotOffered, send_test_email
from apps.delivery.sending import ConnectError, Connection
from tests.connections.smtp.factories import (
    SmtpSettingsFactory,
    allow_private_network,
    smtp_form_data,
)
from tests.smtp_servers import UNTRUSTED_CA, smtp_server, write_ca_bundle

PASSWORD = "tls-Secret-7"


def send(row, password=PASSWORD):
    return send_test_email(row, password=password, to="ops@example.com", subject="s", body="b")


def test_starttls_never_falls_back_to_clear_text_nor_sends_the_password():
    # The server takes logins in clear text: it would accept if we fell back.
    with smtp_server(users={"ann": PASSWORD}, auth_over_plain=True) as server:
        row = SmtpSettingsFactory.build(
            host=server.host, port=server.port, security=Security.STARTTLS, username="ann"
        )
        result = send(row)

    assert result.outcome is Outcome.STARTTLS_NOT_OFFERED
    assert server.auth_mechanisms == []
    assert server.logins == []
    assert server.messages == []


@pytest.mark.django_db
def test_the_delivery_engine_never_falls_back_either(tenant):
    with smtp_server(users={"ann": PASSWORD}, auth_over_plain=True) as server:
        row = SmtpSettingsFactory.build(
            tenant=tenant,
            host=server.host,
            port=server.port,
            security=Security.STARTTLS,
            username="ann",
            secret=PASSWORD,
        )
        with Connection(row) as connection, pytest.raises(ConnectError) as failed:
            connection.send("ops@example.com", b"Subject: x\r\n\r\nbody\r\n")

    assert isinstance(failed.value.error, StartTLSNotOffered)
    assert server.auth_mechanisms == []
    assert server.messages == []


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_an_untrusted_certificate_is_refused_before_the_password(trusted_ca, tls):
    with smtp_server(tls=tls, certificate=UNTRUSTED_CA, users={"ann": PASSWORD}) as server:
        result = send(SmtpSettingsFactory.build(**server.connection, username="ann"))

    assert result.outcome is Outcome.CERTIFICATE_NOT_TRUSTED
    assert server.auth_mechanisms == []
    assert server.messages == []


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_a_custom_ca_bundle_makes_its_certificates_trusted(settings, tmp_path, tls):
    with smtp_server(tls=tls, users={"ann": PASSWORD}) as server:
        row = SmtpSettingsFactory.build(**server.connection, username="ann")
        settings.SMTP_CA_BUNDLE = ""
        without = send(row)
        settings.SMTP_CA_BUNDLE = write_ca_bundle(tmp_path)
        # A new backend per send: the bundle is read when a connection is made.
        with_bundle = send(row)

    assert without.outcome is Outcome.CERTIFICATE_NOT_TRUSTED
    assert with_bundle.ok, with_bundle.message
    assert server.logins == ["ann"]
    assert len(server.messages) == 1


def test_no_password_over_clear_text_when_the_server_offers_no_auth_there():
    # Security None and a login: the server offers AUTH only after STARTTLS.
    with smtp_server(tls="starttls", users={"ann": PASSWORD}) as server:
        row = SmtpSettingsFactory.build(
            host=server.host, port=server.port, security=Security.NONE, username="ann"
        )
        result = send(row)

    # Said as what it is: the server wants encryption (it offers STARTTLS).
    assert result.outcome is Outcome.ENCRYPTION_REQUIRED
    assert "STARTTLS" in result.hint
    assert server.auth_mechanisms == []


@pytest.mark.django_db
def test_the_tenant_page_warns_about_no_encryption_with_a_login(client, tenant, tenant_admin):
    allow_private_network(tenant)
    client.force_login(tenant_admin)
    page_url = reverse("tenancy:mailsettings:edit", args=[tenant.slug])
    data = smtp_form_data(
        host="smtp.acme.example", username="ann", new_password=PASSWORD, _save="1"
    )

    page = client.post(page_url, data).content.decode()

    assert "the password will be sent unencrypted" in page
    assert "Send the password unencrypted" in page
    assert "Tick “Send the password unencrypted” to confirm" in page
    assert PASSWORD not in page

    saved = client.post(page_url, data | {"confirm_unencrypted": "on"})
    assert saved.status_code == 302
    shown = client.get(page_url).content.decode()
    assert "the password will be sent unencrypted" in shown  # the warning, after saving too


@pytest.mark.django_db
def test_the_warning_is_hidden_while_the_connection_is_encrypted(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    page = client.get(reverse("tenancy:mailsettings:edit", args=[tenant.slug])).content.decode()

    # A new form starts with STARTTLS: the block is there for the script, hidden.
    assert '<div class="col-12 smtp-unencrypted" hidden>' in page
