"""Reads of user groups. Every read takes the tenant explicitly."""

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.groups.models import UserGroup
from apps.tenancy.models import Scope, Tenant


def user_group_list(*, tenant: Tenant) -> QuerySet[UserGroup]:
    """The tenant's groups with their scope and `member_count`."""
    return (
        UserGroup.objects.for_tenant(tenant)
        .select_related("organization", "project")
        .annotate(member_count=Count("memberships"))
        .order_by("name", "id")
    )


def user_group_get(*, tenant: Tenant, pk: int) -> UserGroup:
    return get_object_or_404(user_group_list(tenant=tenant).select_related("tenant"), pk=pk)


def user_groups_usable_at(*, tenant: Tenant, scope: Scope) -> QuerySet[UserGroup]:
    """Groups something at `scope` may use: those of the scope and of every scope above it."""
    usable = Q(organization__isnull=True)
    if scope.organization is not None:
        usable |= Q(organization=scope.organization, project__isnull=True)
    if scope.project is not None:
        usable |= Q(project=scope.project)
    return user_group_list(tenant=tenant).filter(usable)


def user_group_members(*, group: UserGroup) -> QuerySet[User]:
    return User.objects.filter(
        user_group_memberships__tenant=group.tenant_id, user_group_memberships__group=group
    )
