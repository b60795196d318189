"""The host portal: tenants and system administrators in the Django admin, through the services."""

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.tenancy.models import Membership, Role, Tenant
from tests.factories import SystemAdminFactory, UserFactory


def actions():
    return list(AuditEntry.objects.order_by("id").values_list("action", flat=True))


def test_create_a_tenant_in_the_admin_is_audited(admin_client, system_admin):
    response = admin_client.post(
        reverse("admin:tenancy_tenant_add"), {"name": "Initech", "slug": "initech"}
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.is_active
    entry = AuditEntry.objects.get(action="tenant.created")
    assert (entry.actor, entry.target_id) == (system_admin, str(tenant.pk))


def test_rename_and_disable_in_one_save(admin_client, tenant):
    admin_client.post(
        reverse("admin:tenancy_tenant_change", args=[tenant.pk]), {"name": "Acme Corp"}
    )
    tenant.refresh_from_db()
    assert (tenant.name, tenant.slug, tenant.is_active) == ("Acme Corp", "acme", False)
    assert actions() == ["tenant.updated", "tenant.disabled"]


def test_disable_and_enable_actions(admin_client, tenant, other_tenant):
    changelist = reverse("admin:tenancy_tenant_changelist")
    admin_client.post(
        changelist,
        {"action": "disable_tenants", ACTION_CHECKBOX_NAME: [tenant.pk, other_tenant.pk]},
    )
    assert not Tenant.objects.filter(is_active=True).exists()
    admin_client.post(changelist, {"action": "enable_tenants", ACTION_CHECKBOX_NAME: [tenant.pk]})
    assert list(Tenant.objects.filter(is_active=True)) == [tenant]
    assert actions() == ["tenant.disabled", "tenant.disabled", "tenant.enabled"]


def test_delete_shows_what_goes_with_it_then_deletes_through_the_service(
    admin_client, tenant, project
):
    url = reverse("admin:tenancy_tenant_delete", args=[tenant.pk])
    confirm = admin_client.get(url).content.decode()
    assert "Organizations: 1" in confirm
    assert "Projects: 1" in confirm
    admin_client.post(url, {"post": "yes"})
    assert not Tenant.objects.exists()
    assert actions() == ["tenant.deleted"]


def test_invite_the_first_tenant_admin(
    admin_client, tenant, mailoutbox, django_capture_on_commit_callbacks
):
    url = reverse("admin:tenancy_tenant_invite", args=[tenant.pk])
    assert "Invite a tenant admin to Acme" in admin_client.get(url).content.decode()
    # Emailed once the invitation is committed.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"email": "boss@acme.example"})
    assert response["Location"] == reverse("admin:tenancy_tenant_change", args=[tenant.pk])
    membership = Membership.objects.get(tenant=tenant)
    assert (membership.user.email, membership.role) == ("boss@acme.example", Role.TENANT_ADMIN)
    (message,) = mailoutbox
    assert message.to == ["boss@acme.example"]
    assert f"{settings.SITE_URL}/invitations/" in message.body


def test_inviting_twice_explains_instead_of_failing(admin_client, tenant, tenant_admin):
    url = reverse("admin:tenancy_tenant_invite", args=[tenant.pk])
    response = admin_client.post(url, {"email": tenant_admin.email}, follow=True)
    assert "already has a role at this scope" in response.content.decode()


def test_grant_and_revoke_system_administrators(admin_client, system_admin):
    user = UserFactory(email="second@example.com")
    response = admin_client.post(
        reverse("admin:tenancy_systemadministrator_grant"), {"email": "SECOND@example.com"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_system_admin
    listing = admin_client.get(reverse("admin:tenancy_systemadministrator_changelist"))
    assert "second@example.com" in listing.content.decode()

    admin_client.post(
        reverse("admin:tenancy_systemadministrator_changelist"),
        {"action": "revoke", ACTION_CHECKBOX_NAME: [user.pk]},
    )
    user.refresh_from_db()
    assert not user.is_system_admin
    assert actions() == ["system_admin.granted", "system_admin.revoked"]


def test_granting_an_unknown_address_is_explained(admin_client):
    response = admin_client.post(
        reverse("admin:tenancy_systemadministrator_grant"), {"email": "nobody@example.com"}
    )
    assert "No account has this address" in response.content.decode()


def test_the_last_system_administrator_is_refused_in_plain_words(admin_client, system_admin):
    response = admin_client.post(
        reverse("admin:tenancy_systemadministrator_changelist"),
        {"action": "revoke", ACTION_CHECKBOX_NAME: [system_admin.pk]},
        follow=True,
    )
    assert "is the last system administrator" in response.content.decode()
    system_admin.refresh_from_db()
    assert system_admin.is_system_admin


def test_revoking_everyone_at_once_keeps_the_last(admin_client, system_admin):
    other = SystemAdminFactory()
    admin_client.post(
        reverse("admin:tenancy_systemadministrator_changelist"),
        {"action": "revoke", ACTION_CHECKBOX_NAME: [system_admin.pk, other.pk]},
    )
    system_admin.refresh_from_db()
    other.refresh_from_db()
    assert [system_admin.is_system_admin, other.is_system_admin] == [False, True]


@pytest.mark.parametrize(
    "name",
    [
        "admin:tenancy_tenant_changelist",
        "admin:tenancy_tenant_add",
        "admin:tenancy_systemadministrator_changelist",
        "admin:tenancy_systemadministrator_grant",
    ],
)
def test_staff_who_are_not_system_administrators_are_kept_out(client, name, tenant):
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse(name))
    assert response.status_code in (302, 403)
    response = client.post(reverse(name), {"name": "X", "slug": "x", "email": "a@example.com"})
    assert response.status_code in (302, 403)
    assert Tenant.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_the_admin_sign_in_page_works_for_anonymous_visitors(client, tenant):
    assert client.get(reverse("admin:login")).status_code == 200
    assert client.get(reverse("admin:tenancy_tenant_changelist")).status_code == 302
