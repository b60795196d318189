import time

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.tenancy import services
from apps.tenancy.invitations import (
    INVITATION_MAX_AGE,
    invitation_token_make,
    invitation_user_get,
)
from apps.tenancy.models import Role
from tests.factories import TenantFactory

NEW_PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def invited(tenant, tenant_admin):
    return services.membership_invite(
        tenant=tenant, email="new@example.com", role=Role.MEMBER, actor=tenant_admin
    ).user


def _accept_url(user):
    return reverse("invitations:accept", args=[invitation_token_make(user=user)])


def test_the_token_names_the_invited_user(invited):
    assert invitation_user_get(token=invitation_token_make(user=invited)) == invited


def test_a_forged_token_is_refused(invited):
    token = invitation_token_make(user=invited)
    assert invitation_user_get(token=token[:-2] + "xx") is None


def test_the_link_expires(invited, monkeypatch):
    token = invitation_token_make(user=invited)
    issued = time.time()
    monkeypatch.setattr("django.core.signing.time.time", lambda: issued + 6 * 24 * 3600)
    assert invitation_user_get(token=token) == invited
    late = issued + INVITATION_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr("django.core.signing.time.time", lambda: late)
    assert invitation_user_get(token=token) is None


def test_accepting_sets_the_password_signs_in_and_opens_the_tenant(client, invited, tenant):
    url = _accept_url(invited)
    page = client.get(url)
    assert page.status_code == 200
    assert "Acme" in page.content.decode()

    response = client.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("tenancy:dashboard", args=["acme"])
    invited.refresh_from_db()
    assert invited.is_active
    assert invited.check_password(NEW_PASSWORD)
    assert client.get(response["Location"]).status_code == 200
    entry = AuditEntry.objects.get(action="membership.invitation_accepted")
    assert (entry.actor, entry.tenant) == (invited, tenant)


def test_the_link_works_once(client, invited):
    url = _accept_url(invited)
    client.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    client.logout()
    again = client.get(url)
    assert again.status_code == 404
    assert "does not work any more" in again.content.decode()


def test_a_weak_password_is_refused_in_plain_words(client, invited):
    response = client.post(_accept_url(invited), {"new_password1": "abc", "new_password2": "abc"})
    assert response.status_code == 200
    assert response.context["form"].errors
    invited.refresh_from_db()
    assert not invited.is_active


def test_a_resent_link_replaces_nothing_but_still_works_once(invited, tenant_admin):
    old = invitation_token_make(user=invited)
    services.membership_invitation_resend(membership=invited.memberships.get(), actor=tenant_admin)
    services.invitation_accept(user=invited, password=NEW_PASSWORD)
    assert invitation_user_get(token=old) is None


def test_someone_invited_to_a_disabled_tenant_lands_on_home(client, tenant_admin, system_admin):
    closed = TenantFactory(name="Closed", slug="closed", is_active=False)
    user = services.membership_invite(
        tenant=closed, email="late@example.com", role=Role.MEMBER, actor=system_admin
    ).user
    response = client.post(
        _accept_url(user), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("home")
