"""User groups: named sets of tenant members that notifications are sent to.

A group lives at a scope (tenant, organisation or project, see
`apps.tenancy.models.Scope`) and is usable by everything below it. Its
notification preferences say where its mail goes: the email/alias
addresses, and optionally every member.
"""

from django.conf import settings
from django.db import models

from apps.core.models import TenantQuerySet
from apps.tenancy.models import ScopedModel, Tenant, scope_constraints


class UserGroup(ScopedModel):
    name = models.CharField(max_length=100)
    # Normalised (lower case, no duplicates) by `apps.groups.validators`.
    alias_addresses = models.JSONField("email/alias addresses", default=list, blank=True)
    notify_all_members = models.BooleanField(
        "Send email to all members of this group", default=False
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="UserGroupMember", related_name="user_groups"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = scope_constraints("groups_usergroup", "name")
        indexes = [
            models.Index(
                fields=["tenant", "organization", "project"], name="groups_usergroup_scope"
            )
        ]

    def __str__(self):
        return self.name

    @property
    def notification_warning(self) -> str:
        """Why mail for this group would reach nobody, in plain words ("" when it reaches someone).

        Uses `member_count` when the selector annotated it, else counts.
        """
        if self.alias_addresses:
            return ""
        if not self.notify_all_members:
            return (
                "This group receives no email: add an email/alias address or turn on "
                "“Send email to all members of this group”."
            )
        member_count = getattr(self, "member_count", None)
        if member_count is None:
            member_count = self.memberships.count()
        if member_count == 0:
            return (
                "This group receives no email yet: it sends to all members but has none. "
                "Add members or an email/alias address."
            )
        return ""


class UserGroupMember(models.Model):
    # The group's tenant, on the row so bulk operations filter on it.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(UserGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="user_group_memberships"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "group", "user"], name="groups_member_unique")
        ]
        indexes = [models.Index(fields=["tenant", "user"], name="groups_member_user")]

    def __str__(self):
        return f"{self.user} in {self.group}"
