"""Reads about the signed-in user's own account."""

from dataclasses import dataclass

from apps.accounts.models import User
from apps.tenancy.models import ROLE_RANK, Membership, Tenant


@dataclass(frozen=True)
class TenantRoles:
    tenant: Tenant
    # Highest first: "Tenant admin", "Project admin · Project Sales / Website".
    roles: list[str]


def _in_words(membership: Membership) -> str:
    role = membership.get_role_display()
    if membership.organization_id is None:
        return role
    return f"{role} · {membership.scope.label}"


def user_tenant_roles(*, user: User) -> list[TenantRoles]:
    """The tenants the user belongs to, by name, with their roles in each (one query)."""
    memberships = Membership.objects.filter(user=user).select_related(
        "tenant", "organization", "project"
    )
    by_tenant: dict[int, list[Membership]] = {}
    for membership in memberships:
        by_tenant.setdefault(membership.tenant_id, []).append(membership)
    found = [
        TenantRoles(
            rows[0].tenant,
            [_in_words(m) for m in sorted(rows, key=lambda m: -ROLE_RANK[m.role])],
        )
        for rows in by_tenant.values()
    ]
    return sorted(found, key=lambda t: t.tenant.name.lower())
