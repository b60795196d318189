"""Emailed links are built from SITE_URL, never from the request's Host header.

The tests allow any host (ALLOWED_HOSTS "*"), so a forged Host reaches the
views as it would behind a proxy that passes it on.
"""

import re

import pytest
from django.conf import settings
from django.urls import reverse

from apps.tenancy.models import Role
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

FORGED = {"host": "evil.example"}


def _links(message) -> list[str]:
    bodies = [message.body] + [content for content, _ in getattr(message, "alternatives", [])]
    return re.findall(r"https?://[^\s\"<>]+", " ".join(bodies))


def _all_from_site_url(message) -> bool:
    links = _links(message)
    return bool(links) and all(link.startswith(settings.SITE_URL + "/") for link in links)


def test_password_reset_link(client, mailoutbox):
    user = UserFactory(email="ann@example.com")
    client.post(reverse("accounts:password_reset"), {"email": user.email}, headers=FORGED)
    [message] = mailoutbox
    assert _all_from_site_url(message), _links(message)
    assert "evil.example" not in message.body


def test_email_change_link(client, mailoutbox):
    user = UserFactory(email="ann@example.com")
    client.force_login(user)
    data = {"email": "ann@new.example", "password": TEST_PASSWORD}
    client.post(reverse("account:email_change"), data, headers=FORGED)
    [message] = mailoutbox
    assert _all_from_site_url(message), _links(message)


def test_invitation_link_from_the_portal(
    client, tenant, tenant_admin, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(tenant_admin)
    data = {"email": "new@example.com", "role": Role.TENANT_ADMIN, "scope": ""}
    url = reverse("tenancy:membership_invite", args=[tenant.slug])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data, headers=FORGED)
    assert response.status_code == 302, response.content.decode()[:2000]
    [message] = mailoutbox
    assert _all_from_site_url(message), _links(message)


def test_invitation_link_from_the_host_administration(
    admin_client, tenant, mailoutbox, django_capture_on_commit_callbacks
):
    url = reverse("admin:tenancy_tenant_invite", args=[tenant.pk])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"email": "boss@acme.example"}, headers=FORGED)
    [message] = mailoutbox
    assert _all_from_site_url(message), _links(message)
