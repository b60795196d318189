"""Every write to pipelines, notification settings and rules, and project API tokens.

Each service is one transaction with its audit entry inside. Failures are
`ValidationError`s in plain words, keyed by the form field they are about
where there is one.
"""

import copy
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import User
from apps.audit.services import audit_record, field_changes
from apps.groups.models import UserGroup
from apps.groups.selectors import user_groups_usable_at
from apps.groups.validators import alias_addresses_parse
from apps.pipelines.models import (
    ALL_LEVELS,
    EventType,
    NotificationDefaults,
    NotificationRule,
    NotificationRuleGroup,
    Override,
    Pipeline,
    ProjectApiToken,
    token_hash,
)
from apps.pipelines.selectors import (
    TOKEN_PREFIX,
    notification_defaults_get,
    notifications_in_words,
    pipeline_delete_summary,
)
from apps.tenancy.models import Project, Scope, Tenant

# How many characters of a token are kept to tell tokens apart ("pm_" and 7 more).
TOKEN_SHOWN_CHARS = 10
# A token's "last used" is rewritten at most this often, not on every API call.
LAST_USED_PRECISION = timedelta(minutes=1)


def _levels(levels: Iterable[str], *, required: bool) -> list[str]:
    levels = set(levels)
    if levels - set(ALL_LEVELS):
        raise ValidationError({"levels": "Choose levels from the list: success, warning, error."})
    if required and not levels:
        raise ValidationError(
            {"levels": "Choose at least one level to be notified at, or turn notifications off."}
        )
    return [level for level in ALL_LEVELS if level in levels]


# Pipelines ---------------------------------------------------------------------


def _pipeline_fields(pipeline: Pipeline) -> dict:
    return {"name": pipeline.name, "slug": pipeline.slug, "description": pipeline.description}


def _pipeline_check(pipeline: Pipeline) -> None:
    """Field formats, then a name and slug not already taken in the project."""
    if not pipeline.slug:
        raise ValidationError(
            {"slug": "Give the pipeline a slug: letters, numbers, hyphens or underscores."}
        )
    pipeline.full_clean(
        exclude=["tenant", "project", "notifications", "levels"],
        validate_unique=False,
        validate_constraints=False,
    )
    siblings = (
        Pipeline.objects.for_tenant(pipeline.tenant_id)
        .filter(project_id=pipeline.project_id)
        .exclude(pk=pipeline.pk)
    )
    errors = {}
    if siblings.filter(name__iexact=pipeline.name).exists():
        errors["name"] = (
            f"The project {pipeline.project} already has a pipeline called “{pipeline.name}”. "
            "Choose another name."
        )
    if siblings.filter(slug=pipeline.slug).exists():
        errors["slug"] = (
            f"Another pipeline in {pipeline.project} already uses the slug “{pipeline.slug}”. "
            "Choose another one."
        )
    if errors:
        raise ValidationError(errors)


def _pipeline_named(pipeline: Pipeline, name: str, slug: str, description: str) -> Pipeline:
    """Set and check the pipeline's names (a blank slug is made from the name)."""
    pipeline.name = name.strip()
    pipeline.slug = slug.strip() or slugify(name)[:50]
    pipeline.description = description.strip()
    _pipeline_check(pipeline)
    return pipeline


def _pipeline_audit(pipeline: Pipeline, action: str, changes: dict, actor: User, request) -> None:
    audit_record(
        actor=actor,
        action=f"pipeline.{action}",
        target=pipeline,
        changes={**changes, "project": pipeline.project.name},
        tenant=pipeline.tenant,
        request=request,
    )


@transaction.atomic
def pipeline_create(
    *,
    project: Project,
    name: str,
    slug: str = "",
    description: str = "",
    actor: User,
    request=None,
) -> Pipeline:
    pipeline = _pipeline_named(
        Pipeline(tenant=project.tenant, project=project), name, slug, description
    )
    pipeline.save()
    changes = field_changes({}, _pipeline_fields(pipeline))
    _pipeline_audit(pipeline, "created", changes, actor, request)
    return pipeline


@transaction.atomic
def pipeline_update(
    *,
    pipeline: Pipeline,
    name: str,
    slug: str = "",
    description: str = "",
    actor: User,
    request=None,
) -> Pipeline:
    """Rename or describe a pipeline. A new slug changes what the events API must be sent."""
    updated = _pipeline_named(copy.copy(pipeline), name, slug, description)
    changes = field_changes(_pipeline_fields(pipeline), _pipeline_fields(updated))
    if changes:
        updated.save(update_fields=["name", "slug", "description", "updated_at"])
        _pipeline_audit(updated, "updated", changes, actor, request)
    return updated


@transaction.atomic
def pipeline_delete(*, pipeline: Pipeline, actor: User, request=None) -> None:
    """Delete a pipeline with its own rules and its events."""
    changes = {
        **field_changes(_pipeline_fields(pipeline), {}),
        "deleted_with_it": pipeline_delete_summary(pipeline=pipeline),
    }
    _pipeline_audit(pipeline, "deleted", changes, actor, request)
    pipeline.delete()


def _override_in_words(notifications: str, levels: list[str]) -> str:
    if notifications == Override.INHERIT:
        return "inherit"
    return notifications_in_words(notifications == Override.ON, levels)


@transaction.atomic
def pipeline_notifications_update(
    *,
    pipeline: Pipeline,
    notifications: str,
    levels: Iterable[str] = (),
    actor: User,
    request=None,
) -> Pipeline:
    """Inherit the tenant's defaults, or override them: on for some levels, or off."""
    if notifications not in Override.values:
        raise ValidationError({"notifications": "Choose inherit, on or off."})
    # Levels only mean something when on; kept empty otherwise.
    levels = _levels(levels, required=True) if notifications == Override.ON else []
    before = _override_in_words(pipeline.notifications, pipeline.levels)
    after = _override_in_words(notifications, levels)
    updated = copy.copy(pipeline)
    updated.notifications, updated.levels = notifications, levels
    if before != after:
        updated.save(update_fields=["notifications", "levels", "updated_at"])
        changes = {"notifications": [before, after]}
        _pipeline_audit(updated, "notifications_changed", changes, actor, request)
    return updated


@transaction.atomic
def notification_defaults_update(
    *, tenant: Tenant, enabled: bool, levels: Iterable[str] = (), actor: User, request=None
) -> NotificationDefaults:
    """Set the tenant's default notification settings (the one row is created when first saved)."""
    levels = _levels(levels, required=enabled) if enabled else []
    defaults = notification_defaults_get(tenant_id=tenant.pk)
    before = notifications_in_words(defaults.enabled, defaults.levels)
    after = notifications_in_words(enabled, levels)
    if defaults.pk is None or before != after:
        defaults.enabled, defaults.levels = enabled, levels
        defaults.save()
        audit_record(
            actor=actor,
            action="notification_defaults.updated",
            target=defaults,
            changes={"notifications": [before, after]},
            tenant=tenant,
            request=request,
        )
    return defaults


# Notification rules -------------------------------------------------------------


def _rule_fields(rule: NotificationRule, groups: list[UserGroup]) -> dict:
    return {
        "name": rule.name,
        "events": ", ".join(rule.event_type_labels),
        "addresses": ", ".join(rule.addresses),
        "groups": ", ".join(sorted(g.name for g in groups)),
        "mandatory": rule.mandatory,
        "enabled": rule.enabled,
    }


def _rule_scope(rule: NotificationRule) -> str:
    if rule.pipeline is not None:
        return f"Pipeline {rule.pipeline} in {rule.project}"
    return f"Project {rule.project} (all its pipelines)"


def _rule_prepare(
    rule: NotificationRule,
    *,
    name: str,
    event_types: Iterable[str],
    addresses: str | Iterable[str],
    groups: Iterable[UserGroup],
    enabled: bool,
    mandatory: bool,
) -> list[UserGroup]:
    """Set and check the rule's fields; returns its groups, checked usable in its project."""
    rule.name, rule.enabled, rule.mandatory = name.strip(), enabled, mandatory
    event_types = set(event_types)
    rule.event_types = [t for t in EventType.values if t in event_types]
    try:
        rule.addresses = alias_addresses_parse(addresses)
    except ValidationError as exc:
        raise ValidationError({"addresses": exc.error_list}) from exc
    rule.full_clean(
        exclude=["tenant", "project", "pipeline", "event_types", "addresses"],
        validate_unique=False,
        validate_constraints=False,
    )
    if not rule.event_types or len(rule.event_types) != len(event_types):
        raise ValidationError({"event_types": "Choose at least one event from the list."})
    groups = list(groups)
    usable = set(
        user_groups_usable_at(tenant=rule.tenant, scope=Scope.of_project(rule.project))
        .filter(pk__in=[g.pk for g in groups])
        .values_list("pk", flat=True)
    )
    outside = [g.name for g in groups if g.pk not in usable]
    if outside:
        raise ValidationError(
            {
                "groups": f"These groups cannot be used in the project {rule.project}: "
                f"{', '.join(outside)}. "
                "Choose groups of the tenant, the organisation or the project."
            }
        )
    if not rule.addresses and not groups:
        raise ValidationError(
            "This rule has no recipients: add at least one email address or user group, "
            "or nobody would be notified."
        )
    return groups


def _rule_groups_set(rule: NotificationRule, groups: list[UserGroup]) -> None:
    links = NotificationRuleGroup.objects.for_tenant(rule.tenant_id).filter(rule=rule)
    wanted = {g.pk for g in groups}
    current = set(links.values_list("group_id", flat=True))
    links.exclude(group_id__in=wanted).delete()
    NotificationRuleGroup.objects.bulk_create(
        NotificationRuleGroup(tenant_id=rule.tenant_id, rule=rule, group_id=pk)
        for pk in wanted - current
    )


def _rule_audit(rule: NotificationRule, action: str, changes: dict, actor: User, request) -> None:
    audit_record(
        actor=actor,
        action=f"notification_rule.{action}",
        target=rule,
        changes={**changes, "scope": _rule_scope(rule)},
        tenant=rule.tenant,
        request=request,
    )


@transaction.atomic
def notification_rule_create(
    *,
    project: Project,
    pipeline: Pipeline | None = None,
    name: str,
    event_types: Iterable[str],
    addresses: str | Iterable[str] = (),
    groups: Iterable[UserGroup] = (),
    enabled: bool = True,
    mandatory: bool = False,
    actor: User,
    request=None,
) -> NotificationRule:
    """A rule on one pipeline, or (no pipeline) on every pipeline of the project."""
    if pipeline is not None and pipeline.project_id != project.pk:
        raise ValidationError(f"The pipeline {pipeline} is not part of the project {project}.")
    rule = NotificationRule(tenant=project.tenant, project=project, pipeline=pipeline)
    groups = _rule_prepare(
        rule,
        name=name,
        event_types=event_types,
        addresses=addresses,
        groups=groups,
        enabled=enabled,
        mandatory=mandatory,
    )
    rule.save()
    _rule_groups_set(rule, groups)
    _rule_audit(rule, "created", field_changes({}, _rule_fields(rule, groups)), actor, request)
    return rule


@transaction.atomic
def notification_rule_update(
    *,
    rule: NotificationRule,
    name: str,
    event_types: Iterable[str],
    addresses: str | Iterable[str] = (),
    groups: Iterable[UserGroup] = (),
    enabled: bool = True,
    mandatory: bool = False,
    actor: User,
    request=None,
) -> NotificationRule:
    """Change what a rule fires on and who it tells. Its pipeline or project stays."""
    before = _rule_fields(rule, list(rule.groups.all()))
    updated = copy.copy(rule)
    groups = _rule_prepare(
        updated,
        name=name,
        event_types=event_types,
        addresses=addresses,
        groups=groups,
        enabled=enabled,
        mandatory=mandatory,
    )
    changes = field_changes(before, _rule_fields(updated, groups))
    if changes:
        updated.save(
            update_fields=["name", "event_types", "addresses", "enabled", "mandatory", "updated_at"]
        )
        _rule_groups_set(updated, groups)
        _rule_audit(updated, "updated", changes, actor, request)
    return updated


@transaction.atomic
def notification_rule_set_enabled(
    *, rule: NotificationRule, enabled: bool, actor: User, request=None
) -> NotificationRule:
    if rule.enabled != enabled:
        rule.enabled = enabled
        rule.save(update_fields=["enabled", "updated_at"])
        action = "enabled" if enabled else "disabled"
        _rule_audit(rule, action, {"enabled": [not enabled, enabled]}, actor, request)
    return rule


@transaction.atomic
def notification_rule_delete(*, rule: NotificationRule, actor: User, request=None) -> None:
    changes = field_changes(_rule_fields(rule, list(rule.groups.all())), {})
    _rule_audit(rule, "deleted", changes, actor, request)
    rule.delete()


# Project API tokens ---------------------------------------------------------------


@transaction.atomic
def project_api_token_create(
    *, project: Project, name: str, actor: User, request=None, raw: str | None = None
) -> tuple[ProjectApiToken, str]:
    """A new token for the events API: (the stored token, the raw token).

    The raw token is returned this once, to be shown to its creator; only
    its hash is stored. `raw` is for the demo seed only, whose token the README names.
    """
    raw = raw or TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ProjectApiToken(
        tenant=project.tenant,
        project=project,
        name=name.strip(),
        prefix=raw[:TOKEN_SHOWN_CHARS],
        hash=token_hash(raw),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    token.full_clean(exclude=["tenant", "project", "created_by"], validate_unique=False)
    token.save()
    audit_record(
        actor=actor,
        action="api_token.created",
        target=token,
        changes={"name": token.name, "prefix": token.prefix, "project": project.name},
        tenant=project.tenant,
        request=request,
    )
    return token, raw


@transaction.atomic
def project_api_token_revoke(*, token: ProjectApiToken, actor: User, request=None) -> None:
    """The token stops working at once; it stays listed as revoked."""
    if not token.is_active:
        raise ValidationError(f"The token “{token}” was already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="api_token.revoked",
        target=token,
        changes={"name": token.name, "prefix": token.prefix, "project": token.project.name},
        tenant=token.tenant,
        request=request,
    )


def project_api_token_mark_used(*, token: ProjectApiToken) -> None:
    """Note that the API accepted the token now (not audited: it happens on every call).

    Written at most once per LAST_USED_PRECISION, so a busy client does not
    rewrite the row on every request.
    """
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        token.last_used_at = now
        ProjectApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
