"""Every list page runs the same bounded number of queries at 5 rows and at 500."""

import pytest
from django.urls import reverse

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.groups.models import UserGroup, UserGroupMember
from apps.tenancy.models import Membership, Organization, Project

# Session, user, membership+tenant, then the page's own reads (count, rows, extras).
MAX_QUERIES = 10


def _users(n, key):
    return User.objects.bulk_create(
        User(email=f"{key}{i}@example.com", password="!", is_active=True) for i in range(n)
    )


def _organizations(tenant, n):
    organizations = Organization.objects.bulk_create(
        Organization(tenant=tenant, name=f"Org {i}", slug=f"org-{i}") for i in range(n)
    )
    Project.objects.bulk_create(
        Project(tenant=tenant, organization=o, name="Web", slug=f"web-{o.slug}")
        for o in organizations
    )


def _projects(tenant, organization, n):
    Project.objects.bulk_create(
        Project(tenant=tenant, organization=organization, name=f"P {i}", slug=f"p-{i}")
        for i in range(n)
    )


def _members(tenant, n):
    users = _users(n, "m")
    Membership.objects.bulk_create(Membership(tenant=tenant, user=u) for u in users)
    return users


def _groups(tenant, organization, n):
    users = _members(tenant, 3)
    groups = UserGroup.objects.bulk_create(
        UserGroup(tenant=tenant, organization=organization if i % 2 else None, name=f"G {i}")
        for i in range(n)
    )
    UserGroupMember.objects.bulk_create(
        UserGroupMember(tenant=tenant, group=g, user=u) for g in groups for u in users
    )


def _group_members(tenant, organization, n):
    group = UserGroup.objects.create(tenant=tenant, name="Big")
    UserGroupMember.objects.bulk_create(
        UserGroupMember(tenant=tenant, group=group, user=u) for u in _members(tenant, n)
    )
    return group


def _audit(tenant, n):
    AuditEntry.objects.bulk_create(
        AuditEntry(tenant=tenant, action=f"thing.{i % 7}", actor_email="a@example.com")
        for i in range(n)
    )


def _everything(tenant, organization, n):
    _organizations(tenant, n)
    _groups(tenant, organization, n)


# page name -> (fill the tenant with n rows, returns extra URL args)
PAGES = {
    "tenancy:dashboard": lambda t, o, n: _everything(t, o, n),
    "tenancy:organization_list": lambda t, o, n: _organizations(t, n),
    "tenancy:organization_detail": lambda t, o, n: _projects(t, o, n) or [o.slug],
    "tenancy:project_list": lambda t, o, n: _projects(t, o, n),
    "tenancy:membership_list": lambda t, o, n: _members(t, n) and [],
    "tenancy:audit_log": lambda t, o, n: _audit(t, n),
    "tenancy:groups:list": lambda t, o, n: _groups(t, o, n),
    "tenancy:groups:detail": lambda t, o, n: [_group_members(t, o, n).pk],
}


@pytest.mark.parametrize("rows", [5, 500])
@pytest.mark.parametrize("name", sorted(PAGES))
def test_list_pages_run_a_bounded_number_of_queries(
    client, tenant, tenant_admin, organization, name, rows, django_assert_max_num_queries
):
    args = PAGES[name](tenant, organization, rows) or []
    client.force_login(tenant_admin)
    url = reverse(name, args=[tenant.slug, *args])
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url)
    assert response.status_code == 200
    # The rows are really on the page (the page holds up to 50).
    if "page" in response.context:
        assert len(response.context["page"].object_list) >= min(rows, 50)
