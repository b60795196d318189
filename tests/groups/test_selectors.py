import pytest
from django.http import Http404

from apps.groups.selectors import (
    user_group_get,
    user_group_list,
    user_groups_usable_at,
)
from apps.tenancy.models import Scope
from tests.factories import OrganizationFactory, ProjectFactory, UserGroupFactory


@pytest.fixture
def ladder(tenant, project):
    """A group at every level, plus groups beside them that must not leak in."""
    organization = project.organization
    sibling_org = OrganizationFactory(tenant=tenant)
    sibling_project = ProjectFactory(organization=organization)
    return {
        "tenant": UserGroupFactory(tenant=tenant, name="Everyone"),
        "org": UserGroupFactory(tenant=tenant, organization=organization, name="Sales team"),
        "project": UserGroupFactory(
            tenant=tenant, organization=organization, project=project, name="Web team"
        ),
        "sibling_org": UserGroupFactory(tenant=tenant, organization=sibling_org),
        "sibling_project": UserGroupFactory(
            tenant=tenant, organization=organization, project=sibling_project
        ),
    }


def test_a_group_is_usable_at_its_scope_and_below(tenant, project, ladder):
    organization = project.organization
    assert set(user_groups_usable_at(tenant=tenant, scope=Scope())) == {ladder["tenant"]}
    assert set(user_groups_usable_at(tenant=tenant, scope=Scope(organization=organization))) == {
        ladder["tenant"],
        ladder["org"],
    }
    assert set(user_groups_usable_at(tenant=tenant, scope=Scope.of_project(project))) == {
        ladder["tenant"],
        ladder["org"],
        ladder["project"],
    }


def test_usable_groups_never_come_from_another_tenant(tenant, other_tenant, project, ladder):
    theirs = UserGroupFactory(tenant=other_tenant)
    # Asking for our scope in their tenant gives their tenant-wide groups only.
    assert list(user_groups_usable_at(tenant=other_tenant, scope=Scope.of_project(project))) == [
        theirs
    ]
    assert theirs not in user_groups_usable_at(tenant=tenant, scope=Scope.of_project(project))


def test_group_list_and_get_are_per_tenant(tenant, other_tenant):
    ours = UserGroupFactory(tenant=tenant)
    theirs = UserGroupFactory(tenant=other_tenant)
    assert list(user_group_list(tenant=tenant)) == [ours]
    assert user_group_get(tenant=tenant, pk=ours.pk) == ours
    with pytest.raises(Http404):
        user_group_get(tenant=tenant, pk=theirs.pk)


def test_the_warning_says_why_nobody_would_be_reached(tenant):
    silent = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=False)
    empty = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=True)
    fine = UserGroupFactory(tenant=tenant, alias_addresses=["a@example.com"])
    warnings = {g.pk: g.notification_warning for g in user_group_list(tenant=tenant)}
    assert warnings[silent.pk].startswith("This group receives no email: add an email/alias")
    assert "sends to all members but has none" in warnings[empty.pk]
    assert warnings[fine.pk] == ""
