"""Delivery webhooks in the tenant portal: list, create (URL shown once), revoke."""

import base64
import re

import pytest
from django.conf import settings
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.webhooks.models import Provider, WebhookEndpoint
from apps.webhooks.services import webhook_endpoint_create
from tests.webhooks import payloads as p

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def url(name, tenant, *args) -> str:
    return reverse(f"webhooks:{name}", args=[tenant.slug, *args])


def text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_creating_a_webhook_shows_its_url_with_the_password_once(portal, tenant, tenant_admin):
    response = portal.post(url("create", tenant), {"provider": Provider.POSTMARK})

    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(tenant=tenant)
    password = endpoint.password.reveal()
    scheme, host = settings.SITE_URL.rstrip("/").split("://")
    shown = f"{scheme}://{endpoint.username}:{password}@{host}{endpoint.path}"
    assert response.context["new_url"] == shown
    assert shown in response.content.decode()
    assert endpoint.path == f"/webhooks/{endpoint.public_id}/postmark/tracking/"
    assert "In Postmark" in text(response)
    assert endpoint.created_by == tenant_admin
    entry = AuditEntry.objects.get(action="webhook_endpoint.created")
    assert entry.tenant == tenant
    assert password not in str(entry.changes)

    again = portal.get(url("list", tenant))
    assert password not in again.content.decode()
    assert str(endpoint.public_id) in again.content.decode()


def test_the_shown_url_is_one_the_provider_can_post_to(portal, client, tenant):
    response = portal.post(url("create", tenant), {"provider": Provider.BREVO})
    endpoint = WebhookEndpoint.objects.get(tenant=tenant)
    username, password = endpoint.username, response.context["new_password"]

    client.logout()
    post = client.post(
        endpoint.path,
        data=p.brevo_delivered("<x@relay.example>", "a@example.com"),
        content_type="application/json",
        headers={"Authorization": "Basic " + _b64(f"{username}:{password}")},
    )
    assert post.status_code == 200


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def test_mailgun_needs_its_signing_key(portal, tenant):
    response = portal.post(url("create", tenant), {"provider": Provider.MAILGUN})

    assert response.status_code == 200
    assert "paste the Mailgun HTTP webhook signing key" in text(response)
    assert not WebhookEndpoint.objects.exists()


def test_a_provider_that_does_not_sign_takes_no_key(portal, tenant):
    response = portal.post(url("create", tenant), {"provider": "postmark", "signing_key": "abc"})

    assert "Postmark does not sign its posts" in text(response)
    assert not WebhookEndpoint.objects.exists()


def test_a_sendgrid_verification_key_is_checked_and_kept_without_pem_lines(portal, tenant):
    bad = portal.post(url("create", tenant), {"provider": "sendgrid", "signing_key": "nope"})
    assert "This is not a SendGrid verification key" in text(bad)
    assert not WebhookEndpoint.objects.exists()

    _, key = p.sendgrid_key_pair()
    pem = f"-----BEGIN PUBLIC KEY-----\n{key}\n-----END PUBLIC KEY-----\n"
    portal.post(url("create", tenant), {"provider": "sendgrid", "signing_key": pem})
    assert WebhookEndpoint.objects.get().signing_key.reveal() == key


def test_an_unknown_provider_is_refused_in_words(portal, tenant):
    response = portal.post(url("create", tenant), {"provider": "sparkpost"})
    assert "Select a valid choice" in text(response)
    assert not WebhookEndpoint.objects.exists()


def test_revoking_asks_first_then_stops_the_url_and_is_audited(portal, client, tenant):
    portal.post(url("create", tenant), {"provider": Provider.POSTMARK})
    endpoint = WebhookEndpoint.objects.get()

    confirm = portal.get(url("revoke", tenant, endpoint.pk))
    assert confirm.status_code == 200
    assert "Revoke" in text(confirm)
    done = portal.post(url("revoke", tenant, endpoint.pk))

    assert done.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.revoked_at is not None
    assert AuditEntry.objects.filter(action="webhook_endpoint.revoked", tenant=tenant).exists()
    assert client.post(endpoint.path, data="{}", content_type="application/json").status_code == 404
    assert "Revoked" in text(portal.get(url("list", tenant)))


def test_the_list_shows_only_this_tenants_webhooks(portal, tenant, other_tenant):
    ours, _ = webhook_endpoint_create(tenant=tenant, provider="brevo", actor=None)
    theirs, _ = webhook_endpoint_create(tenant=other_tenant, provider="brevo", actor=None)

    page = portal.get(url("list", tenant)).content.decode()

    assert ours.username in page
    assert theirs.username not in page
    assert str(theirs.public_id) not in page
