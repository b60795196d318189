import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.audit.services import audit_record
from apps.tenancy import services
from apps.tenancy.decorators import tenant_view
from apps.tenancy.forms import InviteForm
from apps.tenancy.models import Membership, Organization, Project, Role
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserGroupFactory,
)
from tests.keyset import capture, follow, link, unbounded_counts


def url(name, *args, tenant="acme"):
    return reverse(f"tenancy:{name}", args=[tenant, *args])


@pytest.fixture
def admin(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


# Resolving the tenant -------------------------------------------------------------


def test_tenant_view_only_takes_tenant_wide_roles():
    with pytest.raises(ImproperlyConfigured):
        tenant_view(role=Role.ORG_ADMIN)


def test_a_member_sees_the_dashboard_with_their_highest_role(
    client, tenant, tenant_member, project
):
    MembershipFactory(
        tenant=tenant,
        user=tenant_member,
        role=Role.PROJECT_ADMIN,
        organization=project.organization,
        project=project,
    )
    client.force_login(tenant_member)
    response = client.get(url("dashboard"))
    assert response.status_code == 200
    assert response.wsgi_request.tenant == tenant
    assert response.wsgi_request.membership.role == Role.PROJECT_ADMIN
    assert "You: Project admin" in response.content.decode()


def test_an_unknown_tenant_and_someone_elses_tenant_look_the_same(
    client, other_tenant, tenant_member
):
    client.force_login(tenant_member)
    assert client.get(url("dashboard", tenant="globex")).status_code == 404
    assert client.get(url("dashboard", tenant="nope")).status_code == 404


def test_a_disabled_tenant_says_so_to_its_members_only(client, tenant, tenant_member, member):
    tenant.is_active = False
    tenant.save()
    client.force_login(tenant_member)
    response = client.get(url("organization_list"))
    assert response.status_code == 404
    assert "Acme is disabled" in response.content.decode()
    client.force_login(member)
    response = client.get(url("organization_list"))
    assert response.status_code == 404
    assert "disabled" not in response.content.decode()


def test_a_member_asking_for_an_admin_page_is_told_why(client, tenant_member):
    client.force_login(tenant_member)
    response = client.get(url("membership_list"))
    assert response.status_code == 403
    assert "Only tenant admins can do this" in response.content.decode()


def test_members_do_not_see_admin_buttons(client, tenant_member, organization):
    client.force_login(tenant_member)
    page = client.get(url("organization_list")).content.decode()
    assert "Sales" in page
    assert "New organisation" not in page
    assert url("membership_list") not in page


def test_home_lists_the_users_tenants(client, tenant, other_tenant, tenant_member):
    other_tenant.is_active = False
    other_tenant.save()
    MembershipFactory(tenant=other_tenant, user=tenant_member)
    client.force_login(tenant_member)
    page = client.get(reverse("home")).content.decode()
    assert f'href="{url("dashboard")}"' in page
    assert "Globex" in page
    assert url("dashboard", tenant="globex") not in page


# Dashboard --------------------------------------------------------------------


def test_dashboard_shows_the_hierarchy_groups_and_email_settings(admin, tenant, project):
    UserGroupFactory(tenant=tenant, name="Silent", alias_addresses=[])
    page = admin.get(url("dashboard")).content.decode()
    assert "Email settings" in page
    assert "Host settings" in page
    assert "Sales" in page
    assert "Website" in page
    assert "Silent" in page
    assert "No recipients" in page


# Organisations and projects ---------------------------------------------------


def test_create_edit_and_delete_an_organisation(admin, tenant, tenant_admin):
    response = admin.post(url("organization_create"), {"name": "Field Sales", "slug": ""})
    assert response["Location"] == url("organization_detail", "field-sales")
    organization = Organization.objects.for_tenant(tenant).get()

    response = admin.post(
        url("organization_update", "field-sales"), {"name": "Sales", "slug": "sales"}
    )
    assert response["Location"] == url("organization_detail", "sales")
    ProjectFactory(organization=organization)
    UserGroupFactory(tenant=tenant, organization=organization)

    confirm = admin.get(url("organization_delete", "sales")).content.decode()
    assert "Delete the organisation “Sales”?" in confirm
    assert "Projects: <strong>1</strong>" in confirm
    assert "User groups: <strong>1</strong>" in confirm
    assert "roles" not in confirm  # nothing of that kind goes with it

    response = admin.post(url("organization_delete", "sales"))
    assert response["Location"] == url("organization_list")
    assert not Organization.objects.exists()
    assert AuditEntry.objects.for_tenant(tenant).filter(actor=tenant_admin).count() == 3


def test_a_taken_name_is_explained_on_the_form(admin, organization):
    response = admin.post(url("organization_create"), {"name": "Sales", "slug": "sales-2"})
    assert response.status_code == 200
    assert "is already the name of another organisation in Acme" in response.content.decode()
    assert Organization.objects.count() == 1


def test_create_edit_and_delete_a_project_in_an_organisation(admin, tenant, organization):
    response = admin.post(url("project_create", "sales"), {"name": "Mobile App"})
    assert response["Location"] == url("organization_detail", "sales")
    project = Project.objects.for_tenant(tenant).get()
    assert project.organization == organization
    assert "Mobile App" in admin.get(url("organization_detail", "sales")).content.decode()

    admin.post(url("project_update", "mobile-app"), {"name": "App", "slug": "app"})
    project.refresh_from_db()
    assert (project.name, project.slug) == ("App", "app")

    assert "Delete the project “App”?" in admin.get(url("project_delete", "app")).content.decode()
    admin.post(url("project_delete", "app"))
    assert not Project.objects.exists()


def test_project_list_shows_only_this_tenants_projects(
    client, tenant_member, project, other_tenant
):
    ProjectFactory(organization=OrganizationFactory(tenant=other_tenant), name="Secret")
    client.force_login(tenant_member)
    page = client.get(url("project_list")).content.decode()
    assert "Website" in page
    assert "Secret" not in page


# Members ----------------------------------------------------------------------


def test_invite_change_role_and_remove_a_member(
    admin, tenant, organization, mailoutbox, django_capture_on_commit_callbacks
):
    # Emailed once the invitation is committed.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            url("membership_invite"),
            {
                "email": "new@example.com",
                "role": Role.ORG_ADMIN,
                "scope": f"organization-{organization.pk}",
            },
        )
    assert response["Location"] == url("membership_list")
    membership = Membership.objects.get(user__email="new@example.com")
    assert (membership.role, membership.organization) == (Role.ORG_ADMIN, organization)
    assert len(mailoutbox) == 1
    listing = admin.get(url("membership_list")).content.decode()
    assert "new@example.com" in listing
    assert "Invited" in listing

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(url("membership_resend", membership.pk))
    assert len(mailoutbox) == 2

    admin.post(url("membership_update", membership.pk), {"role": Role.MEMBER, "scope": ""})
    membership.refresh_from_db()
    assert (membership.role, membership.organization) == (Role.MEMBER, None)

    assert "Remove the role" in admin.get(url("membership_remove", membership.pk)).content.decode()
    admin.post(url("membership_remove", membership.pk))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_a_role_without_its_scope_is_explained(admin):
    response = admin.post(
        url("membership_invite"),
        {"email": "new@example.com", "role": Role.PROJECT_ADMIN, "scope": ""},
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "scope": ["A project admin needs a project: choose one."]
    }


def test_removing_the_last_admin_is_refused_with_a_message(admin, tenant_admin):
    membership = tenant_admin.memberships.get()
    response = admin.post(url("membership_remove", membership.pk), follow=True)
    assert "is the last tenant admin of Acme" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_invite_form_offers_only_this_tenants_scopes(tenant, other_tenant, project):
    theirs = ProjectFactory(organization=OrganizationFactory(tenant=other_tenant))
    form = InviteForm(tenant=tenant)
    offered = set(form.fields["scope"].scopes)
    assert offered == {"", f"organization-{project.organization.pk}", f"project-{project.pk}"}
    forged = InviteForm(
        {"email": "x@example.com", "role": Role.PROJECT_ADMIN, "scope": f"project-{theirs.pk}"},
        tenant=tenant,
    )
    assert not forged.is_valid()
    assert "scope" in forged.errors


# Audit log --------------------------------------------------------------------


def test_the_audit_log_shows_only_this_tenants_entries(admin, tenant, other_tenant, tenant_admin):
    audit_record(actor=tenant_admin, action="organization.created", tenant=tenant)
    audit_record(actor=tenant_admin, action="project.created", tenant=tenant)
    audit_record(actor=tenant_admin, action="globex.secret", tenant=other_tenant)
    audit_record(actor=tenant_admin, action="host.secret")
    page = admin.get(url("audit_log")).content.decode()
    assert "organization.created" in page
    assert "project.created" in page
    assert "secret" not in page

    filtered = admin.get(url("audit_log"), {"action": "project.created"})
    assert [e.action for e in filtered.context["page"]] == ["project.created"]


def test_the_audit_log_is_paginated(admin, tenant, other_tenant):
    # Adapted: by cursor ("Older" / "Newer"), the action filter kept in the links.
    entries = AuditEntry.objects.bulk_create(
        AuditEntry(tenant=tenant, action="tenant.poked") for _ in range(120)
    )
    AuditEntry.objects.bulk_create(AuditEntry(tenant=tenant, action="other") for _ in range(5))
    AuditEntry.objects.bulk_create(
        AuditEntry(tenant=other_tenant, action="tenant.poked") for _ in range(5)
    )
    path = url("audit_log")
    newest_first = sorted((e.pk for e in entries), reverse=True)

    first, queries = capture(admin, path + "?action=tenant.poked")
    second = follow(admin, path, first, "next")
    third = follow(admin, path, second, "next")

    assert [e.pk for e in first.context["page"]] == newest_first[:50]
    assert [e.pk for e in second.context["page"]] == newest_first[50:100]
    assert [e.pk for e in third.context["page"]] == newest_first[100:]
    assert link(third, "next") is None
    assert link(second, "next").startswith("?action=tenant.poked&cursor=")
    assert [e.pk for e in follow(admin, path, third, "prev").context["page"]] == newest_first[
        50:100
    ]
    assert unbounded_counts(queries) == []


@pytest.mark.parametrize("rows", [10, 200])
def test_an_audit_log_page_costs_the_same_queries_whatever_the_rows(
    admin, tenant, rows, django_assert_max_num_queries
):
    AuditEntry.objects.bulk_create(
        AuditEntry(tenant=tenant, action="tenant.poked") for _ in range(rows)
    )
    with django_assert_max_num_queries(7):
        first = admin.get(url("audit_log"))
    if rows > 50:
        with django_assert_max_num_queries(7):
            follow(admin, url("audit_log"), first, "next")


def test_the_audit_log_shows_changes_in_words(admin, tenant_admin, organization):
    renamed = services.organization_update(
        organization=organization, name="Sales EMEA", slug="sales", actor=tenant_admin
    )
    services.organization_delete(organization=renamed, actor=tenant_admin)
    page = admin.get(url("audit_log")).content.decode()
    assert "Sales → Sales EMEA" in page
    assert "Sales EMEA → —" in page
    assert "projects: 0" in page
