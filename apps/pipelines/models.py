"""Pipelines, what their events are, and who is told about them.

A pipeline belongs to a project. Whether its events notify at all is the
tenant's default (`NotificationDefaults`; no row means on, every level),
unless the pipeline overrides it. Who is told is said by notification rules,
on a pipeline or on a whole project.
"""

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TenantQuerySet, TimeStampedModel
from apps.tenancy.models import Project, Tenant


class EventType(models.TextChoices):
    PIPELINE_STARTED = "pipeline_started", "Pipeline started"
    PIPELINE_SUCCEEDED = "pipeline_succeeded", "Pipeline succeeded"
    PIPELINE_FAILED = "pipeline_failed", "Pipeline failed"
    PIPELINE_PAUSED = "pipeline_paused", "Pipeline paused"
    PIPELINE_ABORTED = "pipeline_aborted", "Pipeline aborted"
    STAGE_STARTED = "stage_started", "Stage started"
    STAGE_SUCCEEDED = "stage_succeeded", "Stage succeeded"
    STAGE_FAILED = "stage_failed", "Stage failed"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"


# How the rule form groups the events.
EVENT_GROUPS = {
    "Pipeline": [t for t in EventType if t.value.startswith("pipeline_")],
    "Stage": [t for t in EventType if t.value.startswith("stage_")],
    "Approval": [EventType.APPROVAL_REQUESTED],
}


class Level(models.TextChoices):
    SUCCESS = "success", "Success"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


ALL_LEVELS = [level.value for level in Level]


class NotificationDefaults(TimeStampedModel):
    """The tenant's default notification settings, for every pipeline that inherits them."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    enabled = models.BooleanField("notifications on", default=True)
    levels = models.JSONField("levels that notify", default=list)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "notification defaults"

    def __str__(self):
        return f"Notification defaults of {self.tenant}"


class Override(models.TextChoices):
    INHERIT = "inherit", "Inherit the tenant's defaults"
    ON = "on", "On, for the levels chosen here"
    OFF = "off", "Off"


class Pipeline(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="pipelines")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=100)
    slug = models.SlugField(
        max_length=50, help_text="How the events API names this pipeline; unique in its project."
    )
    description = models.TextField(blank=True)
    notifications = models.CharField(
        max_length=10, choices=Override.choices, default=Override.INHERIT
    )
    # The levels that notify when `notifications` is ON.
    levels = models.JSONField(default=list, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "project", "slug"], name="pipelines_pipeline_unique_slug"
            ),
            models.UniqueConstraint(
                fields=["tenant", "project", "name"], name="pipelines_pipeline_unique_name"
            ),
        ]

    def __str__(self):
        return self.name


class NotificationRule(TimeStampedModel):
    """Who is told of which events: on one pipeline, or (no pipeline) on all of a project's."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rules")
    pipeline = models.ForeignKey(
        Pipeline, null=True, blank=True, on_delete=models.CASCADE, related_name="rules"
    )
    name = models.CharField(max_length=100)
    event_types = models.JSONField("events", default=list)
    # Normalised like group aliases: lower case, no duplicates.
    addresses = models.JSONField("email addresses", default=list, blank=True)
    groups = models.ManyToManyField(
        "groups.UserGroup", through="NotificationRuleGroup", related_name="rules", blank=True
    )
    enabled = models.BooleanField(default=True)
    # Reaches its recipients whatever their own preferences (e.g. production failures).
    mandatory = models.BooleanField(
        default=False, help_text="Recipients cannot turn this rule's notifications off."
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["tenant", "project", "pipeline"], name="pipelines_rule_scope")
        ]

    def __str__(self):
        return self.name

    @property
    def event_type_labels(self) -> list[str]:
        return [EventType(t).label for t in self.event_types if t in EventType.values]


class NotificationRuleGroup(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey("groups.UserGroup", on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "rule", "group"], name="pipelines_rule_group_unique"
            )
        ]

    def __str__(self):
        return f"{self.rule_id} → {self.group_id}"


def token_hash(token: str) -> str:
    # Tokens are long random strings, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode()).hexdigest()


class ProjectApiToken(models.Model):
    """A bearer token for the events API, shown once; only its hash is kept."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The token's first characters, so people can tell their tokens apart.
    prefix = models.CharField(max_length=16)
    hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "project"], name="pipelines_token_project"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(hash=""), name="pipelines_token_has_hash"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
