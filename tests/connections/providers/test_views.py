"""The Provider pages: tenant portal and host administration, forms, audit, permissions."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections.catalog import Provider
from apps.connections.models import ConnectionRole, ProviderSettings
from tests.connections.providers.factories import (
    KEYS,
    SECRETS,
    ProviderSettingsFactory,
    provider_form_data,
)
from tests.connections.smtp.factories import allow_private_network

ALL = list(Provider.values)


def _url(tenant, name="edit"):
    return reverse(f"mailsettings_providers:{name}", args=[tenant.slug])


@pytest.fixture
def admin_client(client, tenant, tenant_admin):
    allow_private_network(tenant)
    client.force_login(tenant_admin)
    return client


def _page(response) -> str:
    return response.content.decode()


def _no_secrets(html: str):
    assert not any(secret in html for secret in SECRETS)


@pytest.mark.parametrize("provider", ALL)
def test_a_tenant_admin_sets_up_each_provider_and_the_key_is_never_shown(
    admin_client, tenant, provider, standin
):
    data = provider_form_data(provider, api_url=standin.url)
    response = admin_client.post(_url(tenant), data)
    assert response.status_code == 302, response.context["form"].errors
    row = ProviderSettings.objects.get(tenant=tenant, role=ConnectionRole.PRIMARY)
    assert row.provider == provider
    assert row.secret.reveal() == KEYS[provider][1]
    page = admin_client.get(_url(tenant))
    html = _page(page)
    _no_secrets(html)
    assert "leave empty to keep it" in html
    assert "(email-service provider)" in html  # "In use now" names the provider
    # The test email with the stored key reaches the stand-in.
    response = admin_client.post(
        _url(tenant),
        provider_form_data(
            provider,
            api_url=standin.url,
            test_to="ops@example.org",
            _send_test="1",
            **{f"{provider}_secret": ""},
        ),
    )
    result = response.context["test_result"]
    assert result.ok, result
    assert standin.received[-1].provider == provider
    _no_secrets(_page(response))


@pytest.mark.parametrize("provider", ALL)
def test_each_providers_required_fields_have_plain_words(admin_client, tenant, provider):
    data = {"provider": provider, "from_email": "", f"{provider}_secret": ""}
    response = admin_client.post(_url(tenant), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["from_email"] == [
        "Enter the Default From address, like notifications@example.com."
    ]
    assert errors[f"{provider}_secret"][0].startswith("Enter the ")
    if provider in (Provider.AMAZON_SES, Provider.MAILJET):
        assert errors[f"{provider}_key_id"][0].startswith("Enter the ")
    if provider == Provider.AMAZON_SES:
        assert errors["amazon_ses_region"] == ["Enter the AWS region, like eu-west-1."]
    if provider == Provider.MAILGUN:
        assert errors["mailgun_sender_domain"] == ["Enter the sender domain, like mg.example.com."]
    assert not ProviderSettings.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="provider_settings").exists()


def test_bad_values_are_refused_in_plain_words(admin_client, tenant):
    data = provider_form_data(
        Provider.MAILGUN, mailgun_sender_domain="https://mg.example.com/", mailgun_api_url="nope"
    )
    errors = admin_client.post(_url(tenant), data).context["form"].errors
    assert errors["mailgun_sender_domain"] == [
        "Enter only the domain, like mg.example.com: no https://, no @, no /."
    ]
    assert "mailgun_api_url" in errors
    data = provider_form_data(Provider.AMAZON_SES, amazon_ses_region="Ireland")
    errors = admin_client.post(_url(tenant), data).context["form"].errors
    assert errors["amazon_ses_region"] == ["Enter an AWS region like eu-west-1 or us-east-1."]
    assert not ProviderSettings.objects.exists()


def test_a_tenant_api_url_must_be_the_providers_own_unless_allowed(client, tenant, tenant_admin):
    client.force_login(tenant_admin)  # the tenant is not allowed private addresses
    data = provider_form_data(Provider.POSTMARK, api_url="http://169.254.169.254/latest/")
    errors = client.post(_url(tenant), data).context["form"].errors
    assert (
        "Enter an https:// address at Postmark (api.postmarkapp.com)"
        in errors["postmark_api_url"][0]
    )
    data = provider_form_data(Provider.POSTMARK, api_url="https://api.postmarkapp.com/")
    assert client.post(_url(tenant), data).status_code == 302


def test_changing_the_provider_or_its_address_needs_the_key_again(admin_client, tenant):
    ProviderSettingsFactory(tenant=tenant, provider=Provider.POSTMARK)
    moved = provider_form_data(Provider.SENDGRID, sendgrid_secret="")
    errors = admin_client.post(_url(tenant), moved).context["form"].errors
    assert errors["sendgrid_secret"][0].startswith("You changed the provider")
    moved = provider_form_data(Provider.POSTMARK, api_url="http://127.0.0.1:9/", postmark_secret="")
    errors = admin_client.post(_url(tenant), moved).context["form"].errors
    assert errors["postmark_secret"][0].startswith("You changed the API URL")
    assert ProviderSettings.objects.get(tenant=tenant).provider == Provider.POSTMARK


def test_a_key_typed_for_a_test_is_not_kept_without_typing_it_again(admin_client, tenant, standin):
    data = provider_form_data(
        Provider.BREVO, api_url=standin.url, test_to="ops@example.org", _send_test="1"
    )
    response = admin_client.post(_url(tenant), data)
    assert response.context["test_result"].ok
    html = _page(response)
    _no_secrets(html)
    assert not ProviderSettings.objects.exists()  # a test saves nothing
    # The page sent back marks the key as tested; saving without it again is refused.
    save = {**provider_form_data(Provider.BREVO, api_url=standin.url, brevo_secret="")}
    save["secret_tested"] = "True"
    errors = admin_client.post(_url(tenant), save).context["form"].errors
    assert errors["brevo_secret"][0].startswith("Type it again")


def test_a_failed_test_reads_plainly_and_never_echoes_the_key(admin_client, tenant, standin):
    data = provider_form_data(
        Provider.SENDGRID,
        api_url=standin.url,
        sendgrid_secret="SG.wrong-typed-key",
        test_to="ops@example.org",
        _send_test="1",
    )
    response = admin_client.post(_url(tenant), data)
    html = _page(response)
    assert "SendGrid refused the API key" in html
    assert "SG.wrong-typed-key" not in html


def test_changes_are_audited_without_secrets(admin_client, tenant, standin):
    admin_client.post(_url(tenant), provider_form_data(Provider.MAILJET, api_url=standin.url))
    data = provider_form_data(
        Provider.MAILJET, api_url=standin.url, mailjet_secret="new-mailjet-secret", from_name="Ops"
    )
    assert admin_client.post(_url(tenant), data).status_code == 302
    created, updated = AuditEntry.objects.filter(
        tenant=tenant, action__startswith="provider_settings"
    ).order_by("pk")
    assert created.action == "provider_settings.create"
    assert created.changes["secret"] == "changed"
    assert created.changes["provider"] == [None, "mailjet"]
    assert updated.changes == {
        "from_name": ["Example Notifications", "Ops"],
        "secret": "changed",
    }
    for entry in (created, updated):
        assert "mailjet-secret" not in str(entry.changes)
        assert entry.actor_email == "admin@acme.example"


def test_switching_back_to_smtp_asks_first_and_removes_the_key(admin_client, tenant):
    ProviderSettingsFactory(tenant=tenant, provider=Provider.POSTMARK)
    page = admin_client.get(_url(tenant, "remove"))
    assert "Switch back to SMTP?" in _page(page)
    assert ProviderSettings.objects.exists()
    response = admin_client.post(_url(tenant, "remove"))
    assert response.status_code == 302
    assert not ProviderSettings.objects.exists()
    entry = AuditEntry.objects.get(action="provider_settings.delete")
    assert entry.changes["secret"] == "changed"
    assert "SMTP: host settings" in _page(admin_client.get(_url(tenant)))


def test_a_secondary_connection_is_set_up_and_removed_separately(admin_client, tenant, standin):
    ProviderSettingsFactory(tenant=tenant, provider=Provider.POSTMARK)
    data = provider_form_data(Provider.MAILGUN, api_url=standin.url)
    assert admin_client.post(_url(tenant, "secondary"), data).status_code == 302
    rows = {row.role: row.provider for row in ProviderSettings.objects.filter(tenant=tenant)}
    assert rows == {"primary": "postmark", "secondary": "mailgun"}
    html = _page(admin_client.get(_url(tenant)))
    assert 'id="secondary-in-use"><strong>Mailgun</strong>' in html
    admin_client.post(_url(tenant, "secondary_remove"))
    assert list(ProviderSettings.objects.values_list("role", flat=True)) == ["primary"]


def test_another_tenants_connection_is_neither_shown_nor_changed(
    admin_client, tenant, other_tenant
):
    theirs = ProviderSettingsFactory(tenant=other_tenant, provider=Provider.BREVO)
    html = _page(admin_client.get(_url(tenant)))
    assert "Brevo</strong>" not in html
    admin_client.post(_url(tenant, "remove"))
    assert ProviderSettings.objects.filter(pk=theirs.pk).exists()


def test_members_without_the_admin_role_are_refused(client, tenant, tenant_member):
    client.force_login(tenant_member)
    assert client.get(_url(tenant)).status_code == 403
    assert client.post(_url(tenant), provider_form_data()).status_code == 403
    assert not ProviderSettings.objects.exists()


# The host administration ---------------------------------------------------------------


def test_the_host_sets_up_its_provider_in_the_admin(client, system_admin, standin):
    client.force_login(system_admin)
    url = reverse("admin:connections_providersettings_changelist")
    assert client.get(url).status_code == 200
    data = provider_form_data(Provider.AMAZON_SES, api_url=standin.url)
    assert client.post(url, data).status_code == 302
    row = ProviderSettings.objects.get(tenant=None)
    assert (row.provider, row.region) == ("amazon_ses", "eu-west-1")
    html = _page(client.get(url))
    _no_secrets(html)
    assert "Amazon SES</strong>" in html
    test = provider_form_data(
        Provider.AMAZON_SES,
        api_url=standin.url,
        amazon_ses_secret="",
        test_to="ops@example.org",
        _send_test="1",
    )
    response = client.post(url, test)
    assert response.context["test_result"].ok
    assert AuditEntry.objects.get(action="provider_settings.create").tenant is None
    client.post(reverse("admin:connections_providersettings_remove"))
    assert not ProviderSettings.objects.exists()


def test_the_host_pages_are_for_system_administrators_only(client, tenant_admin):
    client.force_login(tenant_admin)
    url = reverse("admin:connections_providersettings_changelist")
    response = client.post(url, provider_form_data())
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert not ProviderSettings.objects.exists()


def test_provider_test_emails_are_audited_and_limited_with_the_smtp_ones(
    admin_client, tenant, tenant_admin, standin, settings
):
    settings.TEST_EMAIL_LIMIT_PER_USER_HOUR = 2
    ProviderSettingsFactory(tenant=tenant, api_url=standin.url)
    data = provider_form_data(
        Provider.POSTMARK,
        api_url=standin.url,
        test_to="ops@example.org",
        _send_test="1",
        postmark_secret="",
    )

    results = [admin_client.post(_url(tenant), data) for _ in range(3)]

    assert [r.context["test_result"] is not None for r in results] == [True, True, False]
    assert len(standin.received) == 2
    errors = results[2].context["form"].non_field_errors()
    assert errors[0].startswith("You have sent 2 test emails in the last hour. Try again in ")
    entries = AuditEntry.objects.filter(action="smtp_settings.test_sent", actor=tenant_admin)
    assert entries.count() == 2
    assert entries.first().changes == {
        "to": "ops@example.org",
        "server": "Postmark",
        "outcome": "sent",
    }
    _no_secrets(str(list(entries.values_list("changes", flat=True))))
