"""What recipients decided: their opt-outs, and addresses that must not be mailed.

The engine checks both when it resolves an event's recipients. The pages
where people set them come with the end-users work.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TenantQuerySet
from apps.tenancy.models import Project, Tenant


class PreferenceLevel(models.TextChoices):
    INHERIT = "inherit", "Inherit"
    ALL = "all", "All events"
    WARNINGS = "warnings", "Failures and warnings"
    FAILURES = "failures", "Failures only"
    NONE = "none", "None"


class NotificationPreference(models.Model):
    """A user's choice for a tenant, a project or one pipeline: the most specific wins.

    `level` INHERIT means "as the scope above"; `muted_event_types` are event
    types the user turned off at this scope. No row means inherit everything.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    pipeline = models.ForeignKey(
        "pipelines.Pipeline", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    level = models.CharField(
        max_length=10, choices=PreferenceLevel.choices, default=PreferenceLevel.INHERIT
    )
    muted_event_types = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user"],
                condition=Q(project__isnull=True, pipeline__isnull=True),
                name="preferences_one_tenant_level",
            ),
            models.UniqueConstraint(
                fields=["tenant", "user", "project"],
                condition=Q(project__isnull=False, pipeline__isnull=True),
                name="preferences_one_project_level",
            ),
            models.UniqueConstraint(
                fields=["tenant", "user", "pipeline"],
                condition=Q(pipeline__isnull=False),
                name="preferences_one_pipeline_level",
            ),
            # A pipeline preference names its project too, so reads can filter on either.
            models.CheckConstraint(
                condition=Q(pipeline__isnull=True) | Q(project__isnull=False),
                name="preferences_pipeline_has_project",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "user"], name="preferences_user")]

    def __str__(self):
        return f"{self.user_id}: {self.level}"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    REFUSED = "refused", "Refused permanently"
    ADDED = "added", "Added by an admin"
    # Reported by an email-service provider's delivery webhook (apps.webhooks).
    BOUNCED = "bounced", "Bounced (hard bounce)"
    COMPLAINED = "complained", "Marked as spam"


class Suppression(models.Model):
    """An address the tenant's mail must not go to."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    # Stored lower case, as the engine compares it.
    address = models.EmailField(max_length=254)
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "address"], name="preferences_suppression_unique"
            )
        ]
        # The list's pages, by cursor (apps.core.keyset).
        indexes = [models.Index(fields=["tenant", "-created_at", "-id"], name="suppression_recent")]

    def __str__(self):
        return self.address
