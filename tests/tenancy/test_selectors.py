import pytest
from django.http import Http404

from apps.tenancy.models import Role
from apps.tenancy.selectors import (
    membership_for_request,
    membership_get,
    organization_get,
    project_get,
    tenant_summary,
    tenant_users,
    tenants_for_user,
)
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserGroupFactory,
)


def test_membership_for_request_takes_the_highest_role_in_that_tenant(
    tenant, other_tenant, tenant_member, organization
):
    MembershipFactory(
        tenant=tenant, user=tenant_member, role=Role.ORG_ADMIN, organization=organization
    )
    MembershipFactory(tenant=other_tenant, user=tenant_member, role=Role.TENANT_ADMIN)
    found = membership_for_request(user=tenant_member, tenant_slug="acme")
    assert (found.tenant, found.role) == (tenant, Role.ORG_ADMIN)
    assert membership_for_request(user=tenant_member, tenant_slug="globex").is_tenant_admin


def test_membership_for_request_is_none_outside_the_tenant(tenant, other_tenant_admin):
    assert membership_for_request(user=other_tenant_admin, tenant_slug="acme") is None
    assert membership_for_request(user=other_tenant_admin, tenant_slug="missing") is None


def test_tenant_users_and_tenants_for_user_stay_in_their_tenant(
    tenant, tenant_admin, tenant_member, other_tenant_admin, organization
):
    MembershipFactory(
        tenant=tenant, user=tenant_member, role=Role.ORG_ADMIN, organization=organization
    )
    assert set(tenant_users(tenant=tenant)) == {tenant_admin, tenant_member}
    assert list(tenants_for_user(user=tenant_member)) == [tenant]
    assert list(tenants_for_user(user=other_tenant_admin)) == [
        other_tenant_admin.memberships.get().tenant
    ]


def test_gets_answer_404_for_another_tenants_rows(tenant, other_tenant, project, tenant_admin):
    theirs = ProjectFactory(organization=OrganizationFactory(tenant=other_tenant))
    their_membership = MembershipFactory(tenant=other_tenant)
    assert organization_get(tenant=tenant, slug="sales") == project.organization
    assert project_get(tenant=tenant, slug="website") == project
    assert membership_get(tenant=tenant, pk=tenant_admin.memberships.get().pk).user == tenant_admin
    with pytest.raises(Http404):
        organization_get(tenant=tenant, slug=theirs.organization.slug)
    with pytest.raises(Http404):
        project_get(tenant=tenant, slug=theirs.slug)
    with pytest.raises(Http404):
        membership_get(tenant=tenant, pk=their_membership.pk)


def test_tenant_summary_counts_only_the_tenants_rows_in_one_query(
    tenant, tenant_admin, tenant_member, project, other_tenant_admin, django_assert_num_queries
):
    MembershipFactory(
        tenant=tenant, user=tenant_member, role=Role.ORG_ADMIN, organization=project.organization
    )
    UserGroupFactory(tenant=tenant)
    theirs = OrganizationFactory(tenant=other_tenant_admin.memberships.get().tenant)
    ProjectFactory(organization=theirs)
    with django_assert_num_queries(1):
        summary = tenant_summary(tenant=tenant)
    # tenant_member holds two roles but counts once.
    assert summary == {"organizations": 1, "projects": 1, "groups": 1, "members": 2}
