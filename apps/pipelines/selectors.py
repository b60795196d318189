"""Reads of pipelines, their notification settings, rules and API tokens.

Portal reads take the tenant explicitly. The delivery engine and the events
API start from an object already resolved (a pipeline, a raw token): its
tenant comes with it.
"""

from dataclasses import dataclass
from datetime import UTC
from typing import Literal

from django.db import connection
from django.db.models import Count, F, Prefetch, Q, QuerySet, prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.pipelines.models import (
    ALL_LEVELS,
    Level,
    NotificationDefaults,
    NotificationRule,
    Override,
    Pipeline,
    ProjectApiToken,
    token_hash,
)
from apps.tenancy.models import Project, Tenant

TOKEN_PREFIX = "pm_"
RECENT_EVENTS = 20
# Pipelines shown per project on the tenant's pipelines page; the project page has them all.
PIPELINES_PER_PROJECT = 10

Source = Literal["pipeline", "tenant", "default"]


@dataclass(frozen=True)
class EffectiveNotifications:
    """Whether a pipeline's events notify, at which levels, and where that was decided."""

    enabled: bool
    levels: list[str]
    source: Source
    description: str

    def notifies(self, level: str) -> bool:
        return self.enabled and level in self.levels


def levels_in_words(levels: list[str]) -> str:
    """ "level error", "levels warning and error"."""
    names = [Level(level).label.lower() for level in ALL_LEVELS if level in levels]
    if not names:
        return "no level"
    if len(names) == 1:
        return f"level {names[0]}"
    return f"levels {', '.join(names[:-1])} and {names[-1]}"


def notifications_in_words(enabled: bool, levels: list[str]) -> str:
    return f"on, {levels_in_words(levels)}" if enabled else "off"


_FROM = {
    "pipeline": "This pipeline",
    "tenant": "Tenant default",
    # The tenant never saved its defaults: on, every level.
    "default": "Postmaster default",
}


def _effective(enabled: bool, levels: list[str], source: Source) -> EffectiveNotifications:
    levels = [level for level in ALL_LEVELS if enabled and level in levels]
    description = f"{_FROM[source]}: {notifications_in_words(enabled, levels)}"
    return EffectiveNotifications(enabled, levels, source, description)


def notification_defaults_get(*, tenant_id: int) -> NotificationDefaults:
    """The tenant's saved defaults, or (unsaved, pk None) the default: on, every level."""
    row = NotificationDefaults.objects.filter(tenant_id=tenant_id).first()
    return row or NotificationDefaults(tenant_id=tenant_id, enabled=True, levels=list(ALL_LEVELS))


def notification_defaults_effective(defaults: NotificationDefaults) -> EffectiveNotifications:
    source = "tenant" if defaults.pk else "default"
    return _effective(defaults.enabled, defaults.levels, source)


def notification_settings_for(
    pipeline: Pipeline, *, defaults: NotificationDefaults | None = None
) -> EffectiveNotifications:
    """What notifies for `pipeline`: its override, else its tenant's defaults.

    Pass `defaults` (from `notification_defaults_get`, for the pipeline's
    tenant) when deciding for many pipelines: no query is made then. A
    pipeline that overrides never needs the defaults.
    """
    if pipeline.notifications == Override.ON:
        return _effective(True, pipeline.levels, "pipeline")
    if pipeline.notifications == Override.OFF:
        return _effective(False, [], "pipeline")
    if defaults is None:
        defaults = notification_defaults_get(tenant_id=pipeline.tenant_id)
    return notification_defaults_effective(defaults)


def rules_matching(*, pipeline: Pipeline, event_type: str) -> list[NotificationRule]:
    """Enabled rules on the pipeline or its project that fire on `event_type`, groups prefetched.

    Two queries at most. The event types are matched in Python: a pipeline
    has few rules, and SQLite cannot look inside a JSON list.
    """
    rules = NotificationRule.objects.filter(
        Q(pipeline__isnull=True) | Q(pipeline_id=pipeline.pk),
        tenant_id=pipeline.tenant_id,
        project_id=pipeline.project_id,
        enabled=True,
    )
    matching = [rule for rule in rules if event_type in rule.event_types]
    prefetch_related_objects(matching, "groups")
    return matching


def pipeline_list(*, tenant: Tenant, project: Project) -> QuerySet[Pipeline]:
    """A project's pipelines with `rule_count` (their own rules)."""
    return (
        Pipeline.objects.for_tenant(tenant)
        .filter(project=project)
        .annotate(rule_count=Count("rules"))
        .order_by("name", "id")
    )


def pipeline_projects(*, tenant: Tenant) -> QuerySet[Project]:
    """Projects with `pipeline_count`, and their first pipelines as `shown_pipelines`."""
    first = Pipeline.objects.for_tenant(tenant).order_by("name", "id")[:PIPELINES_PER_PROJECT]
    return (
        Project.objects.for_tenant(tenant)
        .select_related("organization")
        .annotate(pipeline_count=Count("pipelines"))
        .prefetch_related(Prefetch("pipelines", queryset=first, to_attr="shown_pipelines"))
        .order_by("organization__name", "name", "id")
    )


def pipeline_get(*, tenant: Tenant, pk: int) -> Pipeline:
    return get_object_or_404(
        Pipeline.objects.for_tenant(tenant).select_related("tenant", "project__organization"),
        pk=pk,
    )


def pipeline_delete_summary(*, pipeline: Pipeline) -> dict[str, int]:
    return {"notification rules": pipeline.rules.count(), "events": pipeline.events.count()}


def pipeline_recent_events(*, tenant: Tenant, pipeline: Pipeline) -> list:
    """The pipeline's latest events (delivery's `Event`, read through the relation it adds)."""
    return list(pipeline.events.for_tenant(tenant)[:RECENT_EVENTS])


def _rules(tenant: Tenant) -> QuerySet[NotificationRule]:
    return (
        NotificationRule.objects.for_tenant(tenant)
        .select_related("pipeline")
        .prefetch_related("groups")
    )


def project_rule_list(*, tenant: Tenant, project: Project) -> QuerySet[NotificationRule]:
    """The rules on a whole project (each applies to all its pipelines)."""
    return _rules(tenant).filter(project=project, pipeline__isnull=True).order_by("name", "id")


def pipeline_rule_list(*, tenant: Tenant, pipeline: Pipeline) -> QuerySet[NotificationRule]:
    """The rules that apply to a pipeline: its own first, then its project's."""
    return (
        _rules(tenant)
        .filter(Q(pipeline=pipeline) | Q(pipeline__isnull=True), project_id=pipeline.project_id)
        .order_by(F("pipeline").asc(nulls_last=True), "name", "id")
    )


def notification_rule_get(*, tenant: Tenant, pk: int) -> NotificationRule:
    return get_object_or_404(
        _rules(tenant).select_related("tenant", "project__organization"), pk=pk
    )


def project_api_token_list(*, tenant: Tenant, project: Project) -> QuerySet[ProjectApiToken]:
    return (
        ProjectApiToken.objects.for_tenant(tenant)
        .filter(project=project)
        .select_related("created_by")
    )


def project_api_token_get(*, tenant: Tenant, pk: int) -> ProjectApiToken:
    return get_object_or_404(
        ProjectApiToken.objects.for_tenant(tenant).select_related("tenant", "project"), pk=pk
    )


# The events API's hot lookup, in SQL written once: building the same query
# through the ORM costs ~0.5 ms of CPU per call, most of an event's intake
# (`make bench --only api --profile DIR`). Table names come from the models.
_TOKEN_SQL = f"""
    SELECT token.id, token.tenant_id, token.project_id, token.last_used_at,
           project.name AS project_name, project.slug AS project_slug
    FROM {ProjectApiToken._meta.db_table} token
    JOIN {Project._meta.db_table} project ON project.id = token.project_id
    WHERE token.hash = %s AND token.revoked_at IS NULL
"""  # noqa: S608 (no input is formatted in, only the models' table names)


def api_token_authenticate(raw_token: str) -> ProjectApiToken | None:
    """The active token `raw_token` is, with its project; None for anything else.

    Looked up by hash, so no stored value is compared character by
    character. A revoked token is refused; a disabled tenant's token is not,
    because its events are still accepted and kept until it is enabled again.
    Fields not read here (and the tenant) load on first use.
    """
    if not raw_token or not raw_token.startswith(TOKEN_PREFIX):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_TOKEN_SQL, [token_hash(raw_token)])
        row = cursor.fetchone()
    if row is None:
        return None
    token_id, tenant_id, project_id, last_used_at, project_name, project_slug = row
    if last_used_at is not None and timezone.is_naive(last_used_at):
        # SQLite hands back stored UTC without its zone (the ORM's converters add it).
        last_used_at = timezone.make_aware(last_used_at, UTC)
    db = connection.alias
    token = ProjectApiToken.from_db(
        db,
        ["id", "tenant_id", "project_id", "last_used_at"],
        [token_id, tenant_id, project_id, last_used_at],
    )
    token.project = Project.from_db(
        db, ["id", "tenant_id", "name", "slug"], [project_id, tenant_id, project_name, project_slug]
    )
    return token
