"""The failover connection as an SMTP server: the tenant's page and the host's, audit, limits."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections.catalog import Provider
from apps.connections.models import ConnectionRole, ProviderSettings, SmtpSettings
from tests.connections.providers.factories import ProviderSettingsFactory, provider_form_data
from tests.connections.smtp.factories import (
    SmtpSettingsFactory,
    allow_private_network,
    smtp_form_data,
)
from tests.smtp_servers import smtp_server

pytestmark = pytest.mark.django_db

SECONDARY = ConnectionRole.SECONDARY
PASSWORD = "Failover-pw-7"


def _url(tenant, name="secondary_smtp"):
    return reverse(f"mailsettings_providers:{name}", args=[tenant.slug])


@pytest.fixture
def admin_client(client, tenant, tenant_admin):
    allow_private_network(tenant)
    client.force_login(tenant_admin)
    return client


def _data(server, **overrides):
    return smtp_form_data(
        **server.connection,
        username="backup",
        new_password=PASSWORD,
        confirm_unencrypted="on",
        **overrides,
    )


def test_a_tenant_admin_chooses_an_smtp_server_for_failover(admin_client, tenant):
    primary = SmtpSettingsFactory(tenant=tenant, host="smtp.acme.example")
    page = admin_client.get(reverse("mailsettings_providers:secondary", args=[tenant.slug]))
    assert 'id="failover-choice"' in page.content.decode()
    assert _url(tenant) in page.content.decode()
    with smtp_server(users={"backup": PASSWORD}, auth_over_plain=True) as server:
        response = admin_client.post(_url(tenant), _data(server))
    assert response.status_code == 302, response.context["form"].errors
    row = SmtpSettings.objects.get(tenant=tenant, role=SECONDARY)
    assert (row.host, row.port, row.username) == ("127.0.0.1", server.port, "backup")
    assert row.password.reveal() == PASSWORD
    # The primary is untouched, and the tenant's SMTP page still shows it.
    primary.refresh_from_db()
    assert primary.role == ConnectionRole.PRIMARY
    assert primary.host == "smtp.acme.example"
    smtp_page = admin_client.get(reverse("tenancy:mailsettings:edit", args=[tenant.slug]))
    assert "smtp.acme.example" in smtp_page.content.decode()
    [entry] = AuditEntry.objects.filter(action="smtp_settings.create")
    assert "secondary" in str(entry.changes["role"])
    assert PASSWORD not in str(entry.changes)
    html = admin_client.get(_url(tenant)).content.decode()
    assert PASSWORD not in html
    assert "A password is stored. Leave blank to keep the current password." in html
    assert f"127.0.0.1:{server.port}</strong> (SMTP server)" in html


def test_without_a_primary_of_its_own_the_tenant_still_uses_the_host_settings(admin_client, tenant):
    with smtp_server() as server:
        admin_client.post(_url(tenant), smtp_form_data(**server.connection))
    assert SmtpSettings.objects.get(tenant=tenant).role == SECONDARY
    page = admin_client.get(reverse("tenancy:mailsettings:edit", args=[tenant.slug]))
    assert "Set up your own SMTP server" in page.content.decode()


def test_a_test_email_goes_through_the_typed_server_and_saves_nothing(admin_client, tenant):
    with smtp_server(users={"backup": PASSWORD}, auth_over_plain=True) as server:
        data = _data(server, test_to="ops@acme.example", _send_test="1")
        page = admin_client.post(_url(tenant), data).content.decode()
    assert "The test email was accepted by 127.0.0.1." in page
    [message] = server.messages
    assert message.rcpt_tos == ["ops@acme.example"]
    assert not SmtpSettings.objects.exists()
    assert PASSWORD not in page
    assert AuditEntry.objects.get().action == "smtp_settings.test_sent"


def test_test_emails_count_against_the_hourly_limit(admin_client, tenant, settings):
    settings.TEST_EMAIL_LIMIT_PER_USER_HOUR = 1
    with smtp_server() as server:
        data = smtp_form_data(**server.connection, test_to="ops@acme.example", _send_test="1")
        admin_client.post(_url(tenant), data)
        page = admin_client.post(_url(tenant), data).content.decode()
    assert "You have sent 1 test email in the last hour." in page
    assert len(server.messages) == 1


def test_a_tenants_server_on_a_private_address_needs_permission(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    with smtp_server() as server:
        response = client.post(_url(tenant), smtp_form_data(**server.connection))
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not SmtpSettings.objects.exists()


def test_saving_an_smtp_failover_replaces_the_provider_one_and_back(admin_client, tenant, standin):
    ProviderSettingsFactory(tenant=tenant, role=SECONDARY, provider=Provider.BREVO)
    page = admin_client.get(_url(tenant)).content.decode()
    assert "Saving an SMTP server here replaces it" in page
    with smtp_server() as server:
        assert (
            admin_client.post(_url(tenant), smtp_form_data(**server.connection)).status_code == 302
        )
    assert not ProviderSettings.objects.filter(tenant=tenant).exists()
    assert AuditEntry.objects.filter(action="provider_settings.delete", tenant=tenant).exists()

    data = provider_form_data(Provider.MAILGUN, api_url=standin.url)
    response = admin_client.post(
        reverse("mailsettings_providers:secondary", args=[tenant.slug]), data
    )
    assert response.status_code == 302
    assert not SmtpSettings.objects.filter(tenant=tenant).exists()
    assert ProviderSettings.objects.get(tenant=tenant).role == SECONDARY
    assert AuditEntry.objects.filter(action="smtp_settings.delete", tenant=tenant).exists()


def test_removing_the_failover_server_keeps_the_primary(admin_client, tenant):
    primary = SmtpSettingsFactory(tenant=tenant)
    SmtpSettingsFactory(tenant=tenant, role=SECONDARY, host="backup.acme.example", secret="x")
    assert (
        "backup.acme.example"
        in admin_client.get(_url(tenant, "secondary_smtp_remove")).content.decode()
    )
    response = admin_client.post(_url(tenant, "secondary_smtp_remove"))
    assert response.status_code == 302
    assert list(SmtpSettings.objects.all()) == [primary]
    assert AuditEntry.objects.get().action == "smtp_settings.delete"


@pytest.mark.parametrize("name", ["secondary_smtp", "secondary_smtp_remove"])
def test_members_and_other_tenants_admins_are_refused(
    client, tenant, tenant_member, other_tenant_admin, name
):
    SmtpSettingsFactory(tenant=tenant, role=SECONDARY)
    for user, status in [(tenant_member, 403), (other_tenant_admin, 404)]:
        client.force_login(user)
        assert client.get(_url(tenant, name)).status_code in (status, 404)
        assert client.post(_url(tenant, name), smtp_form_data()).status_code in (status, 404)
    assert SmtpSettings.objects.get().role == SECONDARY
    assert not AuditEntry.objects.exists()


# The host's -----------------------------------------------------------------------------


def test_the_host_sets_up_and_removes_an_smtp_failover(client, system_admin):
    client.force_login(system_admin)
    primary = SmtpSettingsFactory(host="smtp.host.example")
    url = reverse("admin:connections_providersettings_secondary_smtp")
    assert 'id="failover-choice"' in client.get(url).content.decode()
    with smtp_server(users={"backup": PASSWORD}, auth_over_plain=True) as server:
        response = client.post(url, _data(server))
    assert response.status_code == 302, response.context["form"].errors
    row = SmtpSettings.objects.get(tenant=None, role=SECONDARY)
    assert row.password.reveal() == PASSWORD
    assert PASSWORD not in client.get(url).content.decode()
    # The host's SMTP settings page still opens the primary row.
    changelist = client.get(reverse("admin:connections_smtpsettings_changelist"))
    assert changelist["Location"] == reverse(
        "admin:connections_smtpsettings_change", args=[primary.pk]
    )
    response = client.post(reverse("admin:connections_providersettings_secondary_smtp_remove"))
    assert response.status_code == 302
    assert list(SmtpSettings.objects.all()) == [primary]


def test_tenant_admins_cannot_open_the_hosts_failover_pages(client, tenant_admin):
    client.force_login(tenant_admin)
    for name in ("secondary_smtp", "secondary_smtp_remove"):
        response = client.get(reverse(f"admin:connections_providersettings_{name}"))
        assert response.status_code == 302  # to the admin's sign-in
        assert "login" in response["Location"]
