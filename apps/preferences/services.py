"""Writes of what people chose: their master switch and their settings per scope.

A user only ever changes their own choices: every service takes the user
and acts as them (the audit entry names them as the actor). A scope set
back to "inherit" with no event type turned off has no row: none is kept.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.pipelines.models import EventType, Pipeline
from apps.preferences.models import NotificationPreference, PreferenceLevel
from apps.preferences.selectors import LEVEL_LABELS, muted_in_words, preference_in_words
from apps.tenancy.models import Membership, Project, Tenant


@transaction.atomic
def notification_switch_set(*, user: User, enabled: bool, request=None) -> User:
    """The master switch: off, only mandatory rules reach the user, in every tenant."""
    if user.notifications_enabled != enabled:
        user.notifications_enabled = enabled
        user.save(update_fields=["notifications_enabled"])
        audit_record(
            actor=user,
            action="user.notifications_switched",
            target=user,
            changes={"notifications on": [not enabled, enabled]},
            request=request,
        )
    return user


def _scope_words(project: Project | None, pipeline: Pipeline | None) -> str:
    if pipeline is not None:
        return f"Pipeline {pipeline} in {project}"
    return f"Project {project}" if project is not None else "Whole tenant"


def _in_words(row: NotificationPreference | None) -> tuple[str, str]:
    return preference_in_words(row, LEVEL_LABELS[PreferenceLevel.INHERIT]), muted_in_words(row)


def _check(
    *, user: User, tenant: Tenant, project: Project | None, pipeline: Pipeline | None, level: str
) -> None:
    if not Membership.objects.for_tenant(tenant).filter(user=user).exists():
        raise ValidationError(f"{user.email} is not a member of {tenant}.")
    if project is not None and project.tenant_id != tenant.pk:
        raise ValidationError(f"The project {project} is not part of {tenant}.")
    if pipeline is not None and (project is None or pipeline.project_id != project.pk):
        raise ValidationError(f"The pipeline {pipeline} is not part of the project {project}.")
    if level not in PreferenceLevel.values:
        raise ValidationError(f"“{level}” is not a level: choose one from the list.")


@transaction.atomic
def notification_preference_set(
    *,
    user: User,
    tenant: Tenant,
    project: Project | None = None,
    pipeline: Pipeline | None = None,
    level: str,
    muted_event_types: Iterable[str] = (),
    request=None,
) -> NotificationPreference | None:
    """The user's level and event types turned off at one scope; None when it inherits.

    The scope is the tenant, a project of it, or (with its project) a
    pipeline. Applies from the next event: the engine reads it at dispatch.
    """
    _check(user=user, tenant=tenant, project=project, pipeline=pipeline, level=level)
    wanted = set(muted_event_types)
    unknown = wanted - set(EventType.values)
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(sorted(unknown))}.")
    muted = [t for t in EventType.values if t in wanted]
    row = (
        NotificationPreference.objects.for_tenant(tenant)
        .select_for_update()
        .filter(user=user, project=project, pipeline=pipeline)
        .first()
    )
    before = _in_words(row)
    if level == PreferenceLevel.INHERIT and not muted:
        if row is not None:
            row.delete()
        row = None
    elif row is None:
        row = NotificationPreference.objects.create(
            tenant=tenant,
            user=user,
            project=project,
            pipeline=pipeline,
            level=level,
            muted_event_types=muted,
        )
    elif (row.level, row.muted_event_types) != (level, muted):
        row.level, row.muted_event_types = level, muted
        row.save(update_fields=["level", "muted_event_types", "updated_at"])
    after = _in_words(row)
    if before != after:
        changes = {
            name: [old, new]
            for name, old, new in zip(("level", "events turned off"), before, after, strict=True)
            if old != new
        }
        audit_record(
            actor=user,
            action="notification_preference.updated",
            target=user,
            changes={**changes, "scope": _scope_words(project, pipeline)},
            tenant=tenant,
            request=request,
        )
    return row


@transaction.atomic
def project_notification_preferences_set(
    *,
    user: User,
    tenant: Tenant,
    project: Project,
    level: str,
    muted_event_types: Iterable[str] = (),
    pipeline_levels: dict[int, str],
    request=None,
) -> None:
    """The user's choice for a project and for each of its pipelines (by pk), all or nothing.

    A pipeline keeps the event types it had turned off; only those whose
    level changes are written.
    """
    notification_preference_set(
        user=user,
        tenant=tenant,
        project=project,
        level=level,
        muted_event_types=muted_event_types,
        request=request,
    )
    pipelines = Pipeline.objects.for_tenant(tenant).filter(project=project)
    outside = set(pipeline_levels) - set(pipelines.values_list("pk", flat=True))
    if outside:
        raise ValidationError(f"Those pipelines are not part of the project {project}.")
    rows = {
        row.pipeline_id: row
        for row in NotificationPreference.objects.for_tenant(tenant).filter(
            user=user, pipeline_id__in=list(pipeline_levels)
        )
    }
    for pipeline in pipelines.filter(pk__in=list(pipeline_levels)):
        row = rows.get(pipeline.pk)
        if (row.level if row else PreferenceLevel.INHERIT) == pipeline_levels[pipeline.pk]:
            continue
        notification_preference_set(
            user=user,
            tenant=tenant,
            project=project,
            pipeline=pipeline,
            level=pipeline_levels[pipeline.pk],
            muted_event_types=row.muted_event_types if row else (),
            request=request,
        )
