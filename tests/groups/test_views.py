import pytest
from django.urls import reverse

from apps.groups.forms import UserGroupForm
from apps.groups.models import UserGroup
from tests.factories import UserGroupFactory


def url(name, *args, tenant="acme"):
    return reverse(f"tenancy:groups:{name}", args=[tenant, *args])


@pytest.fixture
def admin(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def test_create_a_group_with_an_alias_and_all_members(admin, tenant, tenant_member, project):
    response = admin.post(
        url("create"),
        {
            "name": "Web on call",
            "scope": f"project-{project.pk}",
            "alias_addresses": "Web-Oncall@Example.com, web-oncall@example.com",
            "notify_all_members": "on",
            "members": [tenant_member.pk],
        },
    )
    group = UserGroup.objects.for_tenant(tenant).get()
    assert response["Location"] == url("detail", group.pk)
    assert (group.organization, group.project) == (project.organization, project)
    assert group.alias_addresses == ["web-oncall@example.com"]
    assert group.notify_all_members
    page = admin.get(url("detail", group.pk)).content.decode()
    assert "web-oncall@example.com" in page
    assert tenant_member.email in page
    assert "Project Sales / Website" in page
    assert "No recipients" not in page


def test_bad_addresses_are_shown_one_by_one(admin, tenant):
    response = admin.post(
        url("create"),
        {"name": "Ops", "scope": "", "alias_addresses": "ops@, dev@example, x@example.com"},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["alias_addresses"]
    assert errors == [
        "“ops@” is not a valid email address. "
        "Write it like name@example.com and separate addresses with commas.",
        "“dev@example” is not a valid email address. "
        "Write it like name@example.com and separate addresses with commas.",
    ]
    assert "“ops@” is not a valid email address" in response.content.decode()
    assert not UserGroup.objects.exists()


def test_a_group_without_recipients_shows_a_warning_everywhere(admin, tenant):
    group = UserGroupFactory(
        tenant=tenant, name="Quiet", alias_addresses=[], notify_all_members=False
    )
    warning = "This group receives no email"
    assert warning in admin.get(url("detail", group.pk)).content.decode()
    assert "No recipients" in admin.get(url("list")).content.decode()
    assert warning in admin.get(url("update", group.pk)).content.decode()


def test_edit_keeps_the_scope_and_sets_preferences(admin, tenant, organization, tenant_member):
    group = UserGroupFactory(tenant=tenant, organization=organization, name="Ops")
    form = admin.get(url("update", group.pk)).context["form"]
    assert "scope" not in form.fields
    admin.post(
        url("update", group.pk),
        {
            "name": "Ops",
            "alias_addresses": "",
            "notify_all_members": "on",
            "members": [tenant_member.pk],
        },
    )
    group.refresh_from_db()
    assert group.alias_addresses == []
    assert group.notify_all_members
    assert group.organization == organization
    assert list(group.members.all()) == [tenant_member]


def test_add_and_remove_a_member_from_the_group_page(admin, tenant, tenant_member):
    group = UserGroupFactory(tenant=tenant)
    admin.post(url("member_add", group.pk), {"user": tenant_member.pk})
    assert list(group.members.all()) == [tenant_member]
    admin.post(url("member_remove", group.pk, tenant_member.pk))
    assert not group.members.exists()


def test_delete_confirmation_names_the_members(admin, tenant, tenant_member):
    group = UserGroupFactory(tenant=tenant, name="Ops")
    group.memberships.create(tenant=tenant, user=tenant_member)
    page = admin.get(url("delete", group.pk)).content.decode()
    assert "Delete the group “Ops”?" in page
    assert "Memberships in this group: <strong>1</strong>" in page
    admin.post(url("delete", group.pk))
    assert not UserGroup.objects.exists()


def test_members_can_read_groups_but_not_change_them(client, tenant, tenant_member):
    group = UserGroupFactory(tenant=tenant, name="Ops")
    client.force_login(tenant_member)
    page = client.get(url("detail", group.pk)).content.decode()
    assert "Ops" in page
    assert url("update", group.pk) not in page
    assert client.post(url("member_add", group.pk), {"user": tenant_member.pk}).status_code == 403


def test_the_member_picker_offers_only_this_tenants_people(
    tenant, other_tenant, tenant_admin, other_tenant_admin
):
    form = UserGroupForm(tenant=tenant)
    assert list(form.fields["members"].queryset) == [tenant_admin]
    forged = UserGroupForm(
        {"name": "Ops", "scope": "", "members": [other_tenant_admin.pk]}, tenant=tenant
    )
    assert not forged.is_valid()
    assert "members" in forged.errors


def test_group_lists_are_per_tenant(client, tenant, other_tenant, tenant_member):
    UserGroupFactory(tenant=tenant, name="Ours")
    UserGroupFactory(tenant=other_tenant, name="Theirs")
    client.force_login(tenant_member)
    page = client.get(url("list")).content.decode()
    assert "Ours" in page
    assert "Theirs" not in page
