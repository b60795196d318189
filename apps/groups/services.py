"""Every write to user groups: one transaction each, with its audit entry."""

import copy
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record, field_changes
from apps.groups.models import UserGroup, UserGroupMember
from apps.groups.validators import alias_addresses_parse
from apps.tenancy.models import TENANT_SCOPE, Scope, Tenant
from apps.tenancy.selectors import tenant_users


def _preferences(group: UserGroup) -> dict:
    return {
        "name": group.name,
        "alias_addresses": ", ".join(group.alias_addresses),
        "notify_all_members": group.notify_all_members,
    }


def _check(group: UserGroup) -> None:
    """A name free within the group's scope, and a scope inside the group's tenant."""
    group.full_clean(
        exclude=["tenant", "organization", "project", "alias_addresses"],
        validate_unique=False,
        validate_constraints=False,
    )
    scope = group.scope
    if not scope.belongs_to(group.tenant):
        raise ValidationError(
            {"scope": f"That organisation or project is not part of {group.tenant}."}
        )
    taken = UserGroup.objects.for_tenant(group.tenant).filter(
        organization=scope.organization, project=scope.project, name__iexact=group.name
    )
    if taken.exclude(pk=group.pk).exists():
        raise ValidationError(
            {
                "name": (
                    f"There is already a group called “{group.name}” at this scope "
                    f"({scope.label}). Choose another name."
                )
            }
        )


def _aliases(value: str | Iterable[str]) -> list[str]:
    try:
        return alias_addresses_parse(value)
    except ValidationError as exc:
        raise ValidationError({"alias_addresses": exc.error_list}) from exc


def _check_members(tenant: Tenant, users: Iterable[User]) -> list[User]:
    users = list(users)
    allowed = set(
        tenant_users(tenant=tenant)
        .filter(pk__in=[u.pk for u in users])
        .values_list("pk", flat=True)
    )
    outsiders = [u.email for u in users if u.pk not in allowed]
    if outsiders:
        raise ValidationError(
            {
                "members": (
                    f"Only people in {tenant} can be in its groups, and these are not: "
                    f"{', '.join(outsiders)}."
                )
            }
        )
    return users


def _members_set(group: UserGroup, users: list[User]) -> dict:
    """Make the group's members exactly `users`; returns who was added and removed."""
    current = dict(
        UserGroupMember.objects.for_tenant(group.tenant)
        .filter(group=group)
        .values_list("user_id", "user__email")
    )
    wanted = {u.pk: u.email for u in users}
    added = [wanted[pk] for pk in wanted if pk not in current]
    removed = [current[pk] for pk in current if pk not in wanted]
    UserGroupMember.objects.bulk_create(
        UserGroupMember(tenant=group.tenant, group=group, user_id=pk)
        for pk in wanted
        if pk not in current
    )
    UserGroupMember.objects.for_tenant(group.tenant).filter(
        group=group, user_id__in=[pk for pk in current if pk not in wanted]
    ).delete()
    # Lists of people as text, so an audit [old, new] pair is never mistaken for one.
    changes = {}
    if added:
        changes["members_added"] = ", ".join(sorted(added))
    if removed:
        changes["members_removed"] = ", ".join(sorted(removed))
    return changes


@transaction.atomic
def user_group_create(
    *,
    tenant: Tenant,
    name: str,
    scope: Scope = TENANT_SCOPE,
    alias_addresses: str | Iterable[str] = (),
    notify_all_members: bool = False,
    members: Iterable[User] = (),
    actor: User,
    request=None,
) -> UserGroup:
    group = UserGroup(
        tenant=tenant,
        organization=scope.organization,
        project=scope.project,
        name=name.strip(),
        alias_addresses=_aliases(alias_addresses),
        notify_all_members=notify_all_members,
    )
    _check(group)
    users = _check_members(tenant, members)
    group.save()
    changes = {
        **field_changes({}, _preferences(group)),
        "scope": scope.label,
        **_members_set(group, users),
    }
    audit_record(
        actor=actor,
        action="user_group.created",
        target=group,
        changes=changes,
        tenant=tenant,
        request=request,
    )
    return group


@transaction.atomic
def user_group_update(
    *,
    group: UserGroup,
    name: str,
    alias_addresses: str | Iterable[str],
    notify_all_members: bool,
    members: Iterable[User] | None = None,
    actor: User,
    request=None,
) -> UserGroup:
    """Rename the group and set its notification preferences (and its members, if given).

    The scope stays: what uses the group below it would otherwise lose it.
    """
    updated = copy.copy(group)
    updated.name = name.strip()
    updated.alias_addresses = _aliases(alias_addresses)
    updated.notify_all_members = notify_all_members
    _check(updated)
    users = None if members is None else _check_members(group.tenant, members)
    changes = field_changes(_preferences(group), _preferences(updated))
    if changes:
        updated.save(update_fields=["name", "alias_addresses", "notify_all_members", "updated_at"])
    if users is not None:
        changes.update(_members_set(updated, users))
    if changes:
        audit_record(
            actor=actor,
            action="user_group.updated",
            target=updated,
            changes=changes,
            tenant=updated.tenant,
            request=request,
        )
    return updated


@transaction.atomic
def user_group_delete(*, group: UserGroup, actor: User, request=None) -> None:
    audit_record(
        actor=actor,
        action="user_group.deleted",
        target=group,
        changes={
            **field_changes(_preferences(group), {}),
            "scope": group.scope.label,
            "members": group.memberships.count(),
        },
        tenant=group.tenant,
        request=request,
    )
    group.delete()


@transaction.atomic
def user_group_member_add(*, group: UserGroup, user: User, actor: User, request=None) -> None:
    _check_members(group.tenant, [user])
    _, created = UserGroupMember.objects.get_or_create(tenant=group.tenant, group=group, user=user)
    if created:
        audit_record(
            actor=actor,
            action="user_group.member_added",
            target=group,
            changes={"members_added": user.email},
            tenant=group.tenant,
            request=request,
        )


@transaction.atomic
def user_group_member_remove(*, group: UserGroup, user: User, actor: User, request=None) -> None:
    removed, _ = (
        UserGroupMember.objects.for_tenant(group.tenant).filter(group=group, user=user).delete()
    )
    if removed:
        audit_record(
            actor=actor,
            action="user_group.member_removed",
            target=group,
            changes={"members_removed": user.email},
            tenant=group.tenant,
            request=request,
        )


def user_groups_leave(*, tenant: Tenant, user: User) -> dict:
    """Someone with no role left in the tenant leaves its groups (apps/tenancy/hooks.py)."""
    removed, _ = UserGroupMember.objects.for_tenant(tenant).filter(user=user).delete()
    return {"removed_from_groups": removed}
