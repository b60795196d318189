"""Interoperability with real relays: the greeting name, one login, servers that want TLS.

Each against a real aiosmtpd server on 127.0.0.1 set up as such relays are.
"""

import pytest
from django.urls import reverse

from apps.connections.forms import SmtpSettingsForm
from apps.connections.models import Security, SmtpSettings
from apps.connections.smtp import Outcome, ehlo_name, send_test_email
from apps.connections.validators import EHLO_NAME_ERROR
from tests.connections.smtp.factories import SmtpSettingsFactory, smtp_form_data
from tests.smtp_servers import smtp_server

PASSWORD = "s3cret-pass"
TO = "ops@example.com"


def send(password="", **fields):
    row = SmtpSettingsFactory.build(**fields)
    return send_test_email(
        row, password=password, to=TO, subject="Postmaster test email", body="Hello."
    )


# The greeting name (HELO/EHLO) -------------------------------------------------------------


@pytest.mark.parametrize("where", ["ehlo", "rcpt"])
def test_a_relay_wanting_a_fully_qualified_name_accepts_the_host_of_site_url(settings, where):
    settings.SITE_URL = "https://postmaster.example.com"
    settings.SMTP_EHLO_NAME = ""
    with smtp_server(fqdn_helo=where) as server:
        result = send(**server.connection)

    assert result.ok, result.message
    assert server.greeting_names == ["postmaster.example.com"]
    assert len(server.messages) == 1


def test_smtp_ehlo_name_overrides_the_site_url_and_the_connections_own_name_wins(settings):
    settings.SITE_URL = "https://postmaster.example.com"
    settings.SMTP_EHLO_NAME = "relay-client.example.net"
    with smtp_server(fqdn_helo="ehlo") as server:
        assert send(**server.connection).ok
        assert send(**server.connection, ehlo_name="mail.acme.example").ok

    assert server.greeting_names == ["relay-client.example.net", "mail.acme.example"]


def test_an_address_in_site_url_greets_as_an_address_literal(settings):
    settings.SMTP_EHLO_NAME = ""
    settings.SITE_URL = "http://192.0.2.7:8000"
    assert ehlo_name() == "[192.0.2.7]"
    settings.SITE_URL = "http://[2001:db8::1]:8000"
    assert ehlo_name() == "[IPv6:2001:db8::1]"


@pytest.mark.parametrize("where", ["ehlo", "rcpt"])
def test_a_refused_greeting_name_is_explained_and_never_blames_the_recipient(settings, where):
    # An address is no fully qualified name for such relays.
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.SMTP_EHLO_NAME = ""
    with smtp_server(fqdn_helo=where) as server:
        result = send(**server.connection)

    assert result.outcome is Outcome.HELO_REFUSED
    assert result.message.startswith(
        "127.0.0.1 refused our greeting name ([127.0.0.1]): it wants the fully qualified"
    )
    assert "not the recipient" in result.message
    assert "Set the EHLO name (under Advanced)" in result.hint
    assert "SMTP_EHLO_NAME" in result.hint
    assert "recipient" not in result.hint
    assert "Helo command rejected" in str(result.reply)
    assert server.messages == []


@pytest.mark.django_db
def test_a_tenants_test_email_explains_a_refused_greeting_name_too(tenant, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    with smtp_server(fqdn_helo="rcpt") as server:
        row = SmtpSettingsFactory(tenant=tenant, **server.connection)
        result = send_test_email(row, password="", to=TO, subject="Test", body="Hello.")

    assert result.outcome is Outcome.HELO_REFUSED
    assert "EHLO name" in result.hint


# One login per attempt ------------------------------------------------------------------


def test_a_wrong_password_is_one_failed_login_at_the_server(trusted_ca):
    with smtp_server(tls="starttls", users={"ann": PASSWORD}) as server:
        result = send(password="wrong", username="ann", **server.connection)

    assert result.outcome is Outcome.AUTH_FAILED
    assert server.failed_logins == 1
    assert server.auth_mechanisms == ["PLAIN"]


def test_login_is_used_when_the_server_offers_no_plain(trusted_ca):
    with smtp_server(tls="starttls", users={"ann": PASSWORD}, auth_exclude=("PLAIN",)) as server:
        wrong = send(password="wrong", username="ann", **server.connection)
        right = send(password=PASSWORD, username="ann", **server.connection)

    assert wrong.outcome is Outcome.AUTH_FAILED
    assert right.ok
    assert server.auth_mechanisms == ["LOGIN", "LOGIN"]
    assert server.failed_logins == 1
    assert server.logins == ["ann"]


def test_the_right_password_signs_in_with_plain(trusted_ca):
    with smtp_server(tls="starttls", users={"ann": PASSWORD}) as server:
        result = send(password=PASSWORD, username="ann", **server.connection)

    assert result.ok
    assert server.auth_mechanisms == ["PLAIN"]
    assert server.logins == ["ann"]


# A server that requires encryption ---------------------------------------------------------


def test_530_must_issue_starttls_says_the_server_requires_encryption():
    with smtp_server(tls="starttls", require_starttls=True) as server:
        result = send(host=server.host, port=server.port, security=Security.NONE)

    assert result.outcome is Outcome.ENCRYPTION_REQUIRED
    assert result.message == (
        "127.0.0.1 requires an encrypted connection before it accepts a login or mail."
    )
    assert "“STARTTLS” on port 587" in result.hint
    assert "“Implicit TLS/SSL” on port 465" in result.hint
    assert "login" not in result.hint
    assert str(result.reply).startswith("530 Must issue a STARTTLS command first")


def test_530_authentication_required_still_asks_for_a_login(trusted_ca):
    with smtp_server(users={"ann": PASSWORD}, auth_over_plain=False, tls="starttls") as server:
        # aiosmtpd's "530 5.7.0 Authentication required" once encrypted, without a login.
        result = send(**server.connection)

    assert result.outcome is not Outcome.ENCRYPTION_REQUIRED


# The EHLO name in the forms ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["localhost", "127.0.0.1", "mail", "-bad.example.com", "mail.exa mple.com"]
)
def test_the_ehlo_name_must_be_a_fully_qualified_domain_name(name):
    form = SmtpSettingsForm(data=smtp_form_data(ehlo_name=name), instance=SmtpSettings())

    assert not form.is_valid()
    assert form.errors["ehlo_name"] == [EHLO_NAME_ERROR]


@pytest.mark.django_db
def test_the_ehlo_name_is_optional_and_kept_in_lower_case():
    blank = SmtpSettingsForm(data=smtp_form_data(), instance=SmtpSettings())
    named = SmtpSettingsForm(
        data=smtp_form_data(ehlo_name="Mail.Example.COM."), instance=SmtpSettings()
    )

    assert blank.is_valid(), blank.errors
    assert blank.instance.ehlo_name == ""
    assert named.is_valid(), named.errors
    assert named.instance.ehlo_name == "mail.example.com"


@pytest.mark.django_db
def test_the_tenant_page_saves_the_ehlo_name_under_advanced(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    page_url = reverse("tenancy:mailsettings:edit", args=[tenant.slug])
    page = client.get(page_url).content.decode()
    assert "<summary" in page
    assert "Advanced" in page
    assert 'name="ehlo_name"' in page

    client.post(page_url, smtp_form_data(host="smtp.acme.example", ehlo_name="mail.acme.example"))

    assert SmtpSettings.objects.get(tenant=tenant).ehlo_name == "mail.acme.example"


@pytest.mark.django_db
def test_the_host_admin_form_has_the_ehlo_name(admin_client):
    page = admin_client.get(reverse("admin:connections_smtpsettings_add")).content.decode()

    assert 'name="ehlo_name"' in page
    assert "Advanced" in page
