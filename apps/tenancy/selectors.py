"""Reads of tenancy data. Every tenant-owned read takes the tenant explicitly."""

from django.db.models import Count, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.groups.models import UserGroup
from apps.tenancy.models import ROLE_RANK, Membership, Organization, Project, Tenant


def membership_for_request(*, user, tenant_slug: str) -> Membership | None:
    """The user's highest membership in the tenant named by the URL (tenant loaded), or None.

    One query resolves the tenant and the membership together, so a tenant
    the user is not in looks exactly like one that does not exist.
    """
    if not user.is_authenticated:
        return None
    rows = Membership.objects.filter(user=user, tenant__slug=tenant_slug).select_related(
        "tenant", "organization", "project"
    )
    return max(rows, key=lambda m: ROLE_RANK[m.role], default=None)


def tenants_for_user(*, user) -> QuerySet[Tenant]:
    return Tenant.objects.filter(pk__in=Membership.objects.filter(user=user).values("tenant"))


def tenant_users(*, tenant: Tenant) -> QuerySet[User]:
    """Everyone with a membership in the tenant, once each."""
    return User.objects.filter(pk__in=Membership.objects.for_tenant(tenant).values("user"))


def tenant_summary(*, tenant: Tenant) -> dict[str, int]:
    """The dashboard's counts, read in one query."""

    def count(rows: QuerySet, what: str = "pk"):
        counted = rows.order_by().values("tenant").annotate(n=Count(what, distinct=True))
        return Coalesce(Subquery(counted.values("n")), 0)

    counts = {
        "organizations": count(Organization.objects.for_tenant(tenant)),
        "projects": count(Project.objects.for_tenant(tenant)),
        "groups": count(UserGroup.objects.for_tenant(tenant)),
        "members": count(Membership.objects.for_tenant(tenant), "user"),
    }
    # Prefixed: annotations may not reuse the names of Tenant's relations.
    values = {f"n_{name}": expression for name, expression in counts.items()}
    row = Tenant.objects.filter(pk=tenant.pk).values(**values).get()
    return {name: row[f"n_{name}"] for name in counts}


def organization_list(*, tenant: Tenant) -> QuerySet[Organization]:
    return (
        Organization.objects.for_tenant(tenant)
        .annotate(project_count=Count("projects"))
        .order_by("name", "id")
    )


def organization_get(*, tenant: Tenant, slug: str) -> Organization:
    return get_object_or_404(Organization.objects.for_tenant(tenant), slug=slug)


def project_list(*, tenant: Tenant, organization: Organization | None = None) -> QuerySet[Project]:
    projects = Project.objects.for_tenant(tenant).select_related("organization")
    if organization is not None:
        projects = projects.filter(organization=organization)
    return projects.order_by("organization__name", "name")


def project_get(*, tenant: Tenant, slug: str) -> Project:
    return get_object_or_404(
        Project.objects.for_tenant(tenant).select_related("organization"), slug=slug
    )


def tenant_delete_summary(*, tenant: Tenant) -> dict[str, int]:
    return {
        "organisations": tenant.organizations.count(),
        "projects": tenant.projects.count(),
        "user groups": tenant.usergroups.count(),
        "memberships": tenant.memberships.count(),
    }


def organization_delete_summary(*, organization: Organization) -> dict[str, int]:
    """What goes with an organisation: its projects, and what is scoped to it or them."""
    return {
        "projects": organization.projects.count(),
        "user groups": organization.usergroups.count(),
        "organisation and project roles": organization.memberships.count(),
    }


def project_delete_summary(*, project: Project) -> dict[str, int]:
    return {
        "user groups": project.usergroups.count(),
        "project roles": project.memberships.count(),
    }


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.for_tenant(tenant).select_related("user", "organization", "project")


def membership_get(*, tenant: Tenant, pk: int) -> Membership:
    return get_object_or_404(
        Membership.objects.for_tenant(tenant).select_related(
            "tenant", "user", "organization", "project"
        ),
        pk=pk,
    )


def audit_entry_list(*, tenant: Tenant, action: str = "") -> QuerySet[AuditEntry]:
    """The tenant's own audit entries, newest first, optionally one action only."""
    entries = AuditEntry.objects.for_tenant(tenant)
    return entries.filter(action=action) if action else entries


def audit_action_list(*, tenant: Tenant) -> list[str]:
    return list(
        AuditEntry.objects.for_tenant(tenant)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )
