"""The host's delivery webhooks in the host administration (system administrators only)."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.webhooks.models import WebhookEndpoint
from apps.webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db

ADD = reverse("admin:webhooks_webhookendpoint_add")
LIST = reverse("admin:webhooks_webhookendpoint_changelist")


def test_a_system_administrator_creates_a_host_webhook_and_sees_its_url_once(admin_client):
    assert admin_client.get(ADD).status_code == 200

    response = admin_client.post(ADD, {"provider": "postmark"})

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.tenant is None
    password = endpoint.password.reveal()
    assert endpoint.url_with_credentials(password) in response.content.decode()
    assert AuditEntry.objects.get(action="webhook_endpoint.created").tenant is None
    listing = admin_client.get(LIST).content.decode()
    assert endpoint.username in listing
    assert password not in listing


def test_the_host_list_leaves_tenants_webhooks_out_and_revokes_with_an_audit(admin_client, tenant):
    host, _ = webhook_endpoint_create(tenant=None, provider="brevo", actor=None)
    theirs, _ = webhook_endpoint_create(tenant=tenant, provider="brevo", actor=None)
    assert theirs.username not in admin_client.get(LIST).content.decode()

    admin_client.post(LIST, {"action": "revoke", "_selected_action": [host.pk, theirs.pk]})

    host.refresh_from_db()
    theirs.refresh_from_db()
    assert host.revoked_at is not None
    assert theirs.revoked_at is None
    assert AuditEntry.objects.filter(action="webhook_endpoint.revoked").count() == 1


def test_mailgun_needs_its_key_here_too(admin_client):
    response = admin_client.post(ADD, {"provider": "mailgun"})
    assert "signing key" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_tenant_admins_cannot_open_it(client, tenant_admin):
    client.force_login(tenant_admin)
    assert client.get(ADD).status_code == 302
    assert client.post(ADD, {"provider": "postmark"}).status_code == 302
    assert not WebhookEndpoint.objects.exists()
