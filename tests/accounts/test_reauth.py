"""Re-authentication: SMTP credentials and system administrators need a recently typed password."""

import time

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from apps.accounts.reauth import SENSITIVE_ACTIONS, SESSION_KEY
from apps.audit.models import AuditEntry
from apps.connections.models import SmtpSettings
from tests.connections.smtp.factories import SmtpSettingsFactory, smtp_form_data
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CONFIRM = reverse("account:reauth")
CANARY = "canary-Reauth-K3-PLEASE-NEVER-SHOW"


def make_stale(client) -> None:
    """As if the password was last typed an hour ago."""
    session = client.session
    session[SESSION_KEY] = time.time() - 3600
    session.save()


def confirm_url(next_url: str) -> str:
    return f"{CONFIRM}?next={next_url.replace('/', '%2F')}"


@pytest.fixture
def stale_admin(admin_client):
    make_stale(admin_client)
    return admin_client


@pytest.fixture
def stale_tenant_admin(tenant_admin):
    client = Client()
    client.force_login(tenant_admin)
    make_stale(client)
    return client


def _view_names(resolver, namespace="") -> set[str]:
    found = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found |= _view_names(pattern, inner)
        elif pattern.name:
            found.add(f"{namespace}{pattern.name}")
    return found


def test_every_named_page_exists():
    """A renamed URL would silently drop its protection."""
    names = _view_names(get_resolver())
    assert "tenancy:mailsettings:edit" in names
    for action in SENSITIVE_ACTIONS:
        assert action.view in names, action.view


@pytest.mark.parametrize(
    "page",
    [
        "admin:connections_smtpsettings_add",
        "admin:tenancy_systemadministrator_grant",
    ],
)
def test_host_pages_send_to_confirm_first(stale_admin, page):
    url = reverse(page)
    response = stale_admin.get(url)
    assert response.status_code == 302
    assert response["Location"] == confirm_url(url)


def test_the_host_settings_change_page_too(stale_admin):
    row = SmtpSettingsFactory()
    url = reverse("admin:connections_smtpsettings_change", args=[row.pk])
    assert stale_admin.get(url)["Location"] == confirm_url(url)


@pytest.mark.parametrize("page", ["edit", "use_host"])
def test_tenant_email_settings_send_to_confirm_first(stale_tenant_admin, tenant, page):
    url = reverse(f"tenancy:mailsettings:{page}", args=[tenant.slug])
    assert stale_tenant_admin.get(url)["Location"] == confirm_url(url)


def test_signing_in_counts_as_confirming(client, tenant_admin, tenant):
    client.post(
        reverse("accounts:login"), {"username": tenant_admin.email, "password": TEST_PASSWORD}
    )
    assert client.get(reverse("tenancy:mailsettings:edit", args=[tenant.slug])).status_code == 200


def test_other_pages_are_unaffected(stale_admin, stale_tenant_admin, tenant):
    for client, url in [
        (stale_admin, reverse("admin:index")),
        (stale_admin, reverse("admin:tenancy_systemadministrator_changelist")),
        (stale_admin, reverse("admin:accounts_user_changelist")),
        (stale_tenant_admin, reverse("tenancy:dashboard", args=[tenant.slug])),
        (stale_tenant_admin, reverse("account:overview")),
    ]:
        assert client.get(url).status_code == 200, url


def test_a_wrong_password_is_refused_and_audited(stale_admin, system_admin):
    grant = reverse("admin:tenancy_systemadministrator_grant")
    response = stale_admin.post(CONFIRM, {"password": "not it", "next": grant})
    assert response.status_code == 200
    assert "That is not your password" in response.content.decode()
    assert stale_admin.get(grant)["Location"] == confirm_url(grant)
    entry = AuditEntry.objects.get(action="user.reauthentication_failed")
    assert entry.actor == system_admin
    assert "not it" not in str(entry.changes)


def test_after_confirming_a_system_administrator_can_be_granted(stale_admin, system_admin):
    member = UserFactory(email="new-admin@example.com")
    grant = reverse("admin:tenancy_systemadministrator_grant")
    assert stale_admin.get(CONFIRM, {"next": grant}).status_code == 200
    response = stale_admin.post(CONFIRM, {"password": TEST_PASSWORD, "next": grant})
    assert response["Location"] == grant
    assert stale_admin.get(grant).status_code == 200
    stale_admin.post(grant, {"email": member.email})
    member.refresh_from_db()
    assert member.is_system_admin
    assert AuditEntry.objects.filter(action="user.reauthenticated", actor=system_admin).exists()


def test_revoking_needs_a_fresh_password_and_keeps_nothing_half_done(stale_admin):
    other = UserFactory(email="other-admin@example.com", is_staff=True, is_superuser=True)
    changelist = reverse("admin:tenancy_systemadministrator_changelist")
    revoke = {"action": "revoke", "_selected_action": [other.pk]}
    response = stale_admin.post(changelist, revoke)
    assert response.status_code == 403
    assert "Your changes were not saved" in response.content.decode()
    other.refresh_from_db()
    assert other.is_system_admin
    stale_admin.post(CONFIRM, {"password": TEST_PASSWORD, "next": changelist})
    stale_admin.post(changelist, revoke)
    other.refresh_from_db()
    assert not other.is_system_admin


def test_a_late_post_is_not_carried_out_and_its_secret_is_not_echoed(stale_tenant_admin, tenant):
    url = reverse("tenancy:mailsettings:edit", args=[tenant.slug])
    data = smtp_form_data(
        name="Acme mail", host="smtp.acme.example", username="ann", new_password=CANARY
    )
    response = stale_tenant_admin.post(url, data)
    assert response.status_code == 403
    page = response.content.decode()
    assert "Your changes were not saved" in page
    assert "smtp.acme.example" not in page
    assert CANARY not in page
    assert f'name="next" value="{url}"' in page
    assert not SmtpSettings.objects.filter(tenant=tenant).exists()


def test_after_confirming_the_tenant_settings_page_opens(stale_tenant_admin, tenant):
    url = reverse("tenancy:mailsettings:edit", args=[tenant.slug])
    response = stale_tenant_admin.post(CONFIRM, {"password": TEST_PASSWORD, "next": url})
    assert response["Location"] == url
    assert stale_tenant_admin.get(url).status_code == 200


def test_next_never_leaves_the_site(stale_admin):
    response = stale_admin.post(
        CONFIRM, {"password": TEST_PASSWORD, "next": "https://evil.example/steal"}
    )
    assert response["Location"] == reverse("account:overview")


def test_people_who_are_not_system_admins_are_not_asked(client, tenant_admin):
    client.force_login(tenant_admin)
    make_stale(client)
    response = client.get(reverse("admin:tenancy_systemadministrator_grant"))
    assert response["Location"].startswith(reverse("admin:login"))


def test_wrong_passwords_here_count_towards_the_sign_in_lockout(stale_admin):
    for _ in range(5):
        response = stale_admin.post(CONFIRM, {"password": "guess", "next": "/"})
    assert response.status_code == 429
