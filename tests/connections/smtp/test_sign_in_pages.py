"""The Email settings pages (tenant and host): which connection is in use, the links to
OAuth2 sign-in and the email-service provider, and the notice for Microsoft 365 or Gmail
settings still on password sign-in (issue #7)."""

import pytest
from django.urls import reverse

from apps.connections.selectors import host_smtp_settings_forget
from tests.connections.oauth.factories import OAuthGrantFactory
from tests.connections.providers.factories import ProviderSettingsFactory
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = pytest.mark.django_db

DECEMBER = "end of December 2026"
BASIC_AUTH_REPLY = "550 5.7.30 Basic authentication is not supported"


@pytest.fixture
def admin(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def tenant_page(client, tenant) -> str:
    response = client.get(reverse("tenancy:mailsettings:edit", args=[tenant.slug]))
    assert response.status_code == 200
    return response.text


def host_page(client, row) -> str:
    response = client.get(reverse("admin:connections_smtpsettings_change", args=[row.pk]))
    assert response.status_code == 200
    return response.text


def own(tenant, **fields):
    return SmtpSettingsFactory(tenant=tenant, username="alerts@acme.example", secret="pw", **fields)


# The notice -------------------------------------------------------------------------------


def test_microsoft_365_on_a_password_shows_the_date_and_a_link_to_oauth2(admin, tenant):
    own(tenant, preset="microsoft365")

    page = tenant_page(admin, tenant)

    assert 'id="password-sign-in-notice"' in page
    assert "Microsoft 365 is ending password sign-in for SMTP." in page
    assert DECEMBER in page
    assert BASIC_AUTH_REPLY in page
    oauth = reverse("mailsettings_oauth:setup", args=[tenant.slug])
    assert f'href="{oauth}">Switch to OAuth2 sign-in</a>' in page
    assert "SMTP with password sign-in" in page


def test_gmail_by_host_on_a_password_shows_the_gmail_notice(admin, tenant):
    # "Other" preset, but the host is Gmail's.
    own(tenant, host="smtp.gmail.com", port=587, security="starttls", preset="other")

    page = tenant_page(admin, tenant)

    assert "Gmail signs in to SMTP with an app password or OAuth2 only." in page
    assert "app password" in page
    assert "Switch to OAuth2 sign-in" in page


def test_no_notice_with_oauth2_sign_in(admin, tenant):
    grant = OAuthGrantFactory(smtp_settings=own(tenant, preset="microsoft365"))

    page = tenant_page(admin, tenant)

    assert 'id="password-sign-in-notice"' not in page
    assert "Switch to OAuth2 sign-in" not in page
    assert f"SMTP with OAuth2 sign-in ({grant.get_provider_display()})" in page
    assert "OAuth2 (Microsoft 365 (Exchange Online))" in page


def test_no_notice_for_other_servers_or_the_host_settings(admin, tenant):
    SmtpSettingsFactory(preset="microsoft365")  # The host's: not the tenant's business.
    assert 'id="password-sign-in-notice"' not in tenant_page(admin, tenant)

    own(tenant)  # Another server, on a password.
    page = tenant_page(admin, tenant)
    assert 'id="password-sign-in-notice"' not in page
    assert "SMTP with password sign-in" in page


def test_no_notice_while_a_provider_carries_the_mail(admin, tenant):
    own(tenant, preset="microsoft365")
    ProviderSettingsFactory(tenant=tenant)

    page = tenant_page(admin, tenant)

    assert 'id="password-sign-in-notice"' not in page
    assert "Email-service provider: Postmark" in page


def test_the_host_page_warns_about_microsoft_365_on_a_password(admin_client):
    row = SmtpSettingsFactory(preset="microsoft365", username="alerts@host.example", secret="pw")
    host_smtp_settings_forget()

    page = host_page(admin_client, row)

    assert 'id="password-sign-in-notice"' in page
    assert DECEMBER in page
    assert BASIC_AUTH_REPLY in page
    oauth = reverse("admin:connections_oauthgrant_changelist")
    assert f'href="{oauth}">Switch to OAuth2 sign-in</a>' in page

    OAuthGrantFactory(smtp_settings=row)
    page = host_page(admin_client, row)
    assert 'id="password-sign-in-notice"' not in page
    assert "SMTP with OAuth2 sign-in" in page


def test_the_host_page_has_no_notice_for_another_server(admin_client):
    row = SmtpSettingsFactory(username="relay", secret="pw")

    page = host_page(admin_client, row)

    assert 'id="password-sign-in-notice"' not in page
    assert "SMTP with password sign-in" in page


# The links --------------------------------------------------------------------------------


def test_the_tenant_page_links_to_oauth2_and_the_provider(admin, tenant):
    page = tenant_page(admin, tenant)

    assert f'href="{reverse("mailsettings_oauth:setup", args=[tenant.slug])}"' in page
    assert f'href="{reverse("mailsettings_providers:edit", args=[tenant.slug])}"' in page
    assert "OAuth2 sign-in" in page
    assert "Email-service provider" in page
    assert "The host&#x27;s connection" in page or "The host's connection" in page
    assert "<script>" not in page
    assert 'style="' not in page


def test_the_host_page_links_to_oauth2_and_the_provider(admin_client):
    row = SmtpSettingsFactory()

    page = host_page(admin_client, row)

    assert f'href="{reverse("admin:connections_oauthgrant_changelist")}">OAuth2 sign-in</a>' in page
    providers = reverse("admin:connections_providersettings_changelist")
    assert f'href="{providers}">Email-service provider</a>' in page
