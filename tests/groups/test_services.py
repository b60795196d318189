import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEntry
from apps.groups import services
from apps.groups.models import UserGroup
from apps.tenancy.models import Scope
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, UserGroupFactory


def _last(action):
    return AuditEntry.objects.filter(action=action).latest("id")


def test_create_a_group_with_preferences_and_members(
    tenant, tenant_admin, tenant_member, organization, rf
):
    group = services.user_group_create(
        tenant=tenant,
        scope=Scope(organization=organization),
        name=" On call ",
        alias_addresses="Oncall@Example.com, pager@example.com, ONCALL@example.com",
        notify_all_members=True,
        members=[tenant_member],
        actor=tenant_admin,
        request=rf.post("/", REMOTE_ADDR="198.51.100.4"),
    )
    assert group.name == "On call"
    assert group.alias_addresses == ["oncall@example.com", "pager@example.com"]
    assert list(group.members.all()) == [tenant_member]
    assert group.memberships.get().tenant == tenant
    entry = _last("user_group.created")
    assert (entry.actor, entry.tenant, entry.ip_address) == (tenant_admin, tenant, "198.51.100.4")
    assert entry.changes == {
        "name": [None, "On call"],
        "alias_addresses": [None, "oncall@example.com, pager@example.com"],
        "notify_all_members": [None, True],
        "scope": "Organisation Sales",
        "members_added": tenant_member.email,
    }


def test_bad_addresses_are_reported_each_and_nothing_is_saved(tenant, tenant_admin):
    with pytest.raises(ValidationError) as exc:
        services.user_group_create(
            tenant=tenant,
            name="Ops",
            alias_addresses="ops@, ok@example.com, @x",
            actor=tenant_admin,
        )
    assert len(exc.value.message_dict["alias_addresses"]) == 2
    assert "“ops@” is not a valid email address" in exc.value.message_dict["alias_addresses"][0]
    assert not UserGroup.objects.exists()
    assert not AuditEntry.objects.exists()


def test_names_are_unique_per_scope_only(tenant, tenant_admin, organization, project):
    services.user_group_create(tenant=tenant, name="Ops", actor=tenant_admin)
    services.user_group_create(
        tenant=tenant, name="Ops", scope=Scope(organization=organization), actor=tenant_admin
    )
    services.user_group_create(
        tenant=tenant, name="Ops", scope=Scope.of_project(project), actor=tenant_admin
    )
    with pytest.raises(ValidationError) as exc:
        services.user_group_create(
            tenant=tenant, name="ops", scope=Scope.of_project(project), actor=tenant_admin
        )
    assert exc.value.message_dict == {
        "name": [
            "There is already a group called “ops” at this scope (Project Sales / Website). "
            "Choose another name."
        ]
    }


def test_a_group_cannot_be_scoped_to_another_tenants_organisation(
    tenant, other_tenant, tenant_admin
):
    theirs = OrganizationFactory(tenant=other_tenant)
    with pytest.raises(ValidationError) as exc:
        services.user_group_create(
            tenant=tenant, name="Ops", scope=Scope(organization=theirs), actor=tenant_admin
        )
    assert list(exc.value.message_dict) == ["scope"]


def test_only_people_in_the_tenant_can_be_members(
    tenant, other_tenant, tenant_admin, other_tenant_admin
):
    with pytest.raises(ValidationError) as exc:
        services.user_group_create(
            tenant=tenant,
            name="Ops",
            members=[tenant_admin, other_tenant_admin],
            actor=tenant_admin,
        )
    assert exc.value.message_dict == {
        "members": [
            "Only people in Acme can be in its groups, and these are not: admin@globex.example."
        ]
    }
    group = UserGroupFactory(tenant=tenant)
    with pytest.raises(ValidationError):
        services.user_group_member_add(group=group, user=other_tenant_admin, actor=tenant_admin)
    assert not group.members.exists()


def test_update_sets_preferences_and_members_and_audits_the_difference(
    tenant, tenant_admin, tenant_member
):
    group = UserGroupFactory(tenant=tenant, name="Ops", alias_addresses=["ops@example.com"])
    services.user_group_member_add(group=group, user=tenant_admin, actor=tenant_admin)
    updated = services.user_group_update(
        group=group,
        name="Ops",
        alias_addresses="",
        notify_all_members=True,
        members=[tenant_member],
        actor=tenant_admin,
    )
    assert updated.alias_addresses == []
    assert list(updated.members.all()) == [tenant_member]
    assert _last("user_group.updated").changes == {
        "alias_addresses": ["ops@example.com", ""],
        "notify_all_members": [False, True],
        "members_added": tenant_member.email,
        "members_removed": tenant_admin.email,
    }


def test_an_update_without_members_keeps_them(tenant, tenant_admin):
    group = UserGroupFactory(tenant=tenant)
    services.user_group_member_add(group=group, user=tenant_admin, actor=tenant_admin)
    services.user_group_update(
        group=group, name="Renamed", alias_addresses=[], notify_all_members=True, actor=tenant_admin
    )
    assert list(group.members.all()) == [tenant_admin]


def test_an_update_that_changes_nothing_writes_nothing(tenant, tenant_admin):
    group = UserGroupFactory(tenant=tenant, alias_addresses=["a@example.com"])
    services.user_group_update(
        group=group,
        name=group.name,
        alias_addresses="A@example.com",
        notify_all_members=False,
        members=[],
        actor=tenant_admin,
    )
    assert not AuditEntry.objects.exists()


def test_adding_or_removing_twice_changes_and_audits_once(tenant, tenant_admin, tenant_member):
    group = UserGroupFactory(tenant=tenant)
    for _ in range(2):
        services.user_group_member_add(group=group, user=tenant_member, actor=tenant_admin)
    assert list(group.members.all()) == [tenant_member]
    for _ in range(2):
        services.user_group_member_remove(group=group, user=tenant_member, actor=tenant_admin)
    assert not group.members.exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "user_group.member_added",
        "user_group.member_removed",
    ]


def test_delete_is_audited_with_what_it_had(tenant, tenant_admin):
    group = UserGroupFactory(tenant=tenant, name="Ops", alias_addresses=["ops@example.com"])
    member = UserFactory()
    MembershipFactory(tenant=tenant, user=member)
    services.user_group_member_add(group=group, user=member, actor=tenant_admin)
    services.user_group_delete(group=group, actor=tenant_admin)
    assert not UserGroup.objects.exists()
    assert _last("user_group.deleted").changes == {
        "name": ["Ops", None],
        "alias_addresses": ["ops@example.com", None],
        "notify_all_members": [False, None],
        "scope": "Whole tenant",
        "members": 1,
    }
