"""The database itself refuses rows that break the scope rules."""

import pytest
from django.db import IntegrityError, transaction

from apps.tenancy.models import Membership, Role, Scope
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
    UserGroupFactory,
)


def _refused(**fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        MembershipFactory(**fields)


def test_roles_must_match_their_scope(tenant, organization, project):
    _refused(tenant=tenant, role=Role.TENANT_ADMIN, organization=organization)
    _refused(tenant=tenant, role=Role.ORG_ADMIN)
    _refused(tenant=tenant, role=Role.ORG_ADMIN, organization=organization, project=project)
    _refused(tenant=tenant, role=Role.PROJECT_ADMIN, organization=organization)
    assert not Membership.objects.exists()


def test_a_project_scope_names_its_organisation(tenant, project):
    _refused(tenant=tenant, role=Role.PROJECT_ADMIN, project=project)


def test_one_row_per_user_and_scope(tenant, organization, project):
    user = UserFactory()
    MembershipFactory(tenant=tenant, user=user)
    _refused(tenant=tenant, user=user, role=Role.TENANT_ADMIN)
    MembershipFactory(tenant=tenant, user=user, role=Role.ORG_ADMIN, organization=organization)
    _refused(tenant=tenant, user=user, role=Role.ORG_ADMIN, organization=organization)
    scope = {"organization": organization, "project": project}
    MembershipFactory(tenant=tenant, user=user, role=Role.PROJECT_ADMIN, **scope)
    _refused(tenant=tenant, user=user, role=Role.PROJECT_ADMIN, **scope)
    assert user.memberships.count() == 3


def test_group_names_repeat_across_scopes_but_not_within_one(tenant, organization, project):
    UserGroupFactory(tenant=tenant, name="Ops")
    UserGroupFactory(tenant=tenant, organization=organization, name="Ops")
    UserGroupFactory(tenant=tenant, organization=organization, project=project, name="Ops")
    for scope in [{}, {"organization": organization}]:
        with pytest.raises(IntegrityError), transaction.atomic():
            UserGroupFactory(tenant=tenant, name="Ops", **scope)


def test_scope_belongs_to_its_tenant_only(tenant, other_tenant, project):
    theirs = ProjectFactory(organization=OrganizationFactory(tenant=other_tenant))
    assert Scope.of_project(project).belongs_to(tenant)
    assert not Scope.of_project(theirs).belongs_to(tenant)
    assert not Scope(organization=project.organization, project=theirs).belongs_to(tenant)
    assert Scope().belongs_to(other_tenant)
    assert Scope.of_project(project).label == "Project Sales / Website"
