"""Reads of what recipients chose, and what reaches them because of it.

The semantics live here once, for the engine and for the My notifications
page: a user's level comes from the most specific of their pipeline,
project and tenant rows that does not say "inherit" (no row anywhere: all
events); event types turned off at any of those scopes are off. The master
switch off lets only mandatory rules through. Mandatory rules ignore every
preference, never the suppression list.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Q
from django.shortcuts import get_object_or_404

from apps.groups.models import UserGroupMember
from apps.pipelines.models import (
    ALL_LEVELS,
    EventType,
    Level,
    NotificationDefaults,
    NotificationRule,
    Pipeline,
)
from apps.pipelines.selectors import levels_in_words, notification_settings_for
from apps.preferences.models import NotificationPreference, PreferenceLevel, Suppression
from apps.tenancy.models import ROLE_RANK, Membership, Project, Tenant

# The levels each preference lets through; "inherit" looks one scope up.
PREFERENCE_LEVELS = {
    PreferenceLevel.ALL: frozenset(ALL_LEVELS),
    PreferenceLevel.WARNINGS: frozenset({Level.WARNING, Level.ERROR}),
    PreferenceLevel.FAILURES: frozenset({Level.ERROR}),
    PreferenceLevel.NONE: frozenset(),
}
LEVEL_LABELS = dict(PreferenceLevel.choices)
EVENT_LABELS = dict(EventType.choices)
# Scopes from the most specific; the words say where a setting was made.
SCOPES = ("pipeline", "project", "tenant")
SCOPE_WORDS = {
    "pipeline": "your setting for this pipeline",
    "project": "your setting for this project",
    "tenant": "your setting for the whole tenant",
    "default": "the default",
}


def preference_scope(row: NotificationPreference) -> str:
    if row.pipeline_id is not None:
        return "pipeline"
    return "project" if row.project_id is not None else "tenant"


@dataclass(frozen=True)
class EffectivePreference:
    """What a user lets through for one pipeline, and where that was decided."""

    level: str  # never "inherit"
    source: str  # a key of SCOPE_WORDS
    muted: frozenset[str] = frozenset()

    @property
    def levels(self) -> frozenset[str]:
        return PREFERENCE_LEVELS[self.level]

    def lets_through(self, *, level: str, event_type: str) -> bool:
        return level in self.levels and event_type not in self.muted

    @property
    def in_words(self) -> str:
        return f"{LEVEL_LABELS[self.level]} ({SCOPE_WORDS[self.source]})"


def preference_effective(rows: Iterable[NotificationPreference]) -> EffectivePreference:
    """The user's choice from their rows for one pipeline (its own, its project's, the tenant's)."""
    by_scope = {preference_scope(row): row for row in rows}
    muted = frozenset(t for row in by_scope.values() for t in row.muted_event_types)
    for scope in SCOPES:
        row = by_scope.get(scope)
        if row is not None and row.level != PreferenceLevel.INHERIT:
            return EffectivePreference(row.level, scope, muted)
    return EffectivePreference(PreferenceLevel.ALL, "default", muted)


def preference_rows_for_pipeline(*, tenant_id: int, project_id: int, pipeline_id: int | None) -> Q:
    """The rows that can apply to one pipeline: the tenant's, the project's and its own."""
    q = Q(tenant_id=tenant_id) & (
        Q(project__isnull=True) | Q(project_id=project_id, pipeline__isnull=True)
    )
    # An unsaved pipeline (a rule's test) has no rows; `pipeline_id=None` would mean IS NULL.
    if pipeline_id is not None:
        q |= Q(tenant_id=tenant_id, pipeline_id=pipeline_id)
    return q


# The My notifications page ---------------------------------------------------------------


def preference_in_words(row: NotificationPreference | None, inherit: str) -> str:
    """A row's level, or `inherit` when there is none or it says "inherit"."""
    if row is None or row.level == PreferenceLevel.INHERIT:
        return inherit
    return LEVEL_LABELS[row.level]


def muted_in_words(row: NotificationPreference | None) -> str:
    if row is None:
        return ""
    return ", ".join(EVENT_LABELS.get(t, t) for t in row.muted_event_types)


@dataclass
class Outcome:
    """What one rule sends the user for some of a project's pipelines."""

    event_types: list[str]  # labels
    levels: list[str]
    # Why nothing gets through ("" when something does).
    blocked: str = ""

    @property
    def in_words(self) -> str:
        if self.blocked:
            return self.blocked
        return f"{', '.join(self.event_types)} — at {levels_in_words(self.levels)}"


@dataclass
class Reach:
    """A rule that reaches the user, how, and what it sends them."""

    rule: NotificationRule
    via: list[str]
    outcome: Outcome
    # The pipelines this outcome is for; empty = every pipeline of the project.
    pipelines: list[Pipeline] = field(default_factory=list)


@dataclass
class ProjectNotifications:
    project: Project
    # The user's own row for the project (None = inherit) and their pipelines' rows.
    preference: NotificationPreference | None
    pipeline_preferences: dict[int, NotificationPreference]
    pipelines: list[Pipeline]
    reaches: list[Reach]

    @property
    def level_in_words(self) -> str:
        return preference_in_words(self.preference, "As for the whole tenant")

    @property
    def muted_in_words(self) -> str:
        return muted_in_words(self.preference)

    @property
    def pipelines_set_apart(self) -> list[str]:
        """The pipelines with a level of their own, with it: "Nightly: None"."""
        return [
            f"{p.name}: {LEVEL_LABELS[self.pipeline_preferences[p.pk].level]}"
            for p in self.pipelines
            if p.pk in self.pipeline_preferences
            and self.pipeline_preferences[p.pk].level != PreferenceLevel.INHERIT
        ]


@dataclass
class TenantNotifications:
    tenant: Tenant
    role: str
    preference: NotificationPreference | None
    projects: list[ProjectNotifications]
    # The user's address is on the tenant's suppression list: nothing is sent to it.
    suppressed: bool

    @property
    def level_in_words(self) -> str:
        return preference_in_words(self.preference, "Not set: all events")

    @property
    def muted_in_words(self) -> str:
        return muted_in_words(self.preference)


@dataclass
class _Chooser:
    """One user's choices in one project, to decide what each rule sends them."""

    user: object
    defaults: object  # the tenant's NotificationDefaults
    scoped: list[NotificationPreference]  # their tenant and project rows
    pipeline_rows: dict[int, NotificationPreference]

    def outcome(self, rule: NotificationRule, pipeline: Pipeline | None) -> Outcome:
        # A project without pipelines yet: they will inherit the tenant's defaults.
        pipeline = pipeline or Pipeline(tenant_id=rule.tenant_id)
        levels = list(notification_settings_for(pipeline, defaults=self.defaults).levels)
        types = list(rule.event_types)
        if not levels:
            return Outcome([], [], "Nothing: notifications are off for this pipeline.")
        if not rule.mandatory:
            if not self.user.notifications_enabled:
                return Outcome([], [], "Nothing: you turned all your notifications off.")
            own = self.pipeline_rows.get(pipeline.pk) if pipeline.pk else None
            chosen = preference_effective([*self.scoped, own] if own else self.scoped)
            levels = [level for level in levels if level in chosen.levels]
            types = [t for t in types if t not in chosen.muted]
            if not levels:
                return Outcome([], [], f"Nothing: {chosen.in_words}.")
            if not types:
                return Outcome([], [], "Nothing: you turned these events off.")
        return Outcome([EVENT_LABELS.get(t, t) for t in types], levels)

    def reaches(
        self, rule: NotificationRule, via: list[str], pipelines: list[Pipeline]
    ) -> list[Reach]:
        """One Reach per distinct outcome over the rule's pipelines (the same for all: one)."""
        if rule.pipeline_id is not None:
            targets = [p for p in pipelines if p.pk == rule.pipeline_id]
        else:
            targets = pipelines or [None]
        found: dict[str, Reach] = {}
        for pipeline in targets:
            outcome = self.outcome(rule, pipeline)
            reach = found.setdefault(outcome.in_words, Reach(rule, via, outcome))
            if pipeline is not None:
                reach.pipelines.append(pipeline)
        reaches = list(found.values())
        if rule.pipeline_id is None and len(reaches) == 1:
            reaches[0].pipelines = []  # The same for every pipeline: "all pipelines".
        return reaches


def _via(rule: NotificationRule, *, email: str, my_groups: set[int], active: bool) -> list[str]:
    """How the rule reaches the user, as the engine finds them ([] = it does not)."""
    via = []
    if email in rule.addresses:
        via.append("your address is listed in the rule")
    for group in rule.groups.all():
        if group.notify_all_members and active and group.pk in my_groups:
            via.append(f"you are in the group “{group.name}”")
        elif email in group.alias_addresses:
            via.append(f"your address is an address of the group “{group.name}”")
    return via


def _roles(user, tenant: Tenant | None) -> dict[int, Membership]:
    """The user's highest membership per active tenant (tenants loaded)."""
    memberships = Membership.objects.filter(user=user, tenant__is_active=True)
    if tenant is not None:
        memberships = memberships.filter(tenant=tenant)
    roles: dict[int, Membership] = {}
    for membership in memberships.select_related("tenant"):
        held = roles.get(membership.tenant_id)
        if held is None or ROLE_RANK[membership.role] > ROLE_RANK[held.role]:
            roles[membership.tenant_id] = membership
    return roles


def my_notifications(
    *, user, tenant: Tenant | None = None, project: Project | None = None
) -> list[TenantNotifications]:
    """Per active tenant the user is in, per project: their settings and what reaches them.

    `tenant` and `project` narrow it to one. Nine queries however many
    tenants, projects, pipelines and rules: memberships, projects,
    pipelines, rules, their groups, the user's group memberships,
    preferences, suppressions and the tenants' notification defaults.
    """
    email = user.email.lower()
    roles = _roles(user, tenant)
    if not roles:
        return []
    within = Q(tenant_id__in=list(roles))
    if project is not None:
        within &= Q(project=project)
    projects = Project.objects.filter(tenant_id__in=list(roles))
    if project is not None:
        projects = projects.filter(pk=project.pk)
    pipelines_of: dict[int, list[Pipeline]] = {}
    for pipeline in Pipeline.objects.filter(within).order_by("name", "id"):
        pipelines_of.setdefault(pipeline.project_id, []).append(pipeline)
    rules_of: dict[int, list[NotificationRule]] = {}
    rules = NotificationRule.objects.filter(within, enabled=True).prefetch_related("groups")
    for rule in rules.order_by("name", "id"):
        rules_of.setdefault(rule.project_id, []).append(rule)
    my_groups = set(
        UserGroupMember.objects.filter(tenant_id__in=list(roles), user=user).values_list(
            "group_id", flat=True
        )
    )
    preferences = NotificationPreference.objects.filter(tenant_id__in=list(roles), user=user)
    rows: dict[str, dict[int, NotificationPreference]] = {scope: {} for scope in SCOPES}
    for row in preferences:
        scope = preference_scope(row)
        key = {"tenant": row.tenant_id, "project": row.project_id, "pipeline": row.pipeline_id}
        rows[scope][key[scope]] = row
    suppressed = set(
        Suppression.objects.filter(tenant_id__in=list(roles), address=email).values_list(
            "tenant_id", flat=True
        )
    )
    saved = NotificationDefaults.objects.filter(tenant_id__in=list(roles))
    defaults = {row.tenant_id: row for row in saved}
    for pk in roles:
        # Never saved: the default, on at every level (as notification_defaults_get says).
        defaults.setdefault(pk, NotificationDefaults(tenant_id=pk, levels=list(ALL_LEVELS)))

    by_tenant: dict[int, list[ProjectNotifications]] = {pk: [] for pk in roles}
    for one in projects.select_related("organization").order_by("organization__name", "name", "id"):
        pipelines = pipelines_of.get(one.pk, [])
        scoped = [rows["tenant"].get(one.tenant_id), rows["project"].get(one.pk)]
        chooser = _Chooser(
            user, defaults[one.tenant_id], [r for r in scoped if r], rows["pipeline"]
        )
        reaches = []
        for rule in rules_of.get(one.pk, []):
            via = _via(rule, email=email, my_groups=my_groups, active=user.is_active)
            if via:
                reaches += chooser.reaches(rule, via, pipelines)
        by_tenant[one.tenant_id].append(
            ProjectNotifications(
                project=one,
                preference=rows["project"].get(one.pk),
                pipeline_preferences={
                    p.pk: rows["pipeline"][p.pk] for p in pipelines if p.pk in rows["pipeline"]
                },
                pipelines=pipelines,
                reaches=reaches,
            )
        )
    return [
        TenantNotifications(
            tenant=membership.tenant,
            role=membership.get_role_display(),
            preference=rows["tenant"].get(pk),
            projects=by_tenant[pk],
            suppressed=pk in suppressed,
        )
        for pk, membership in sorted(roles.items(), key=lambda kv: kv[1].tenant.name)
    ]


def my_project_get(*, tenant: Tenant, slug: str) -> Project:
    """A project of `tenant` by slug; another tenant's is a 404, like a missing one."""
    return get_object_or_404(Project.objects.for_tenant(tenant), slug=slug)


def my_project_notifications(*, user, tenant: Tenant, project: Project) -> TenantNotifications:
    """The tenant's entry of My notifications with just `project` (the user is a member)."""
    (mine,) = my_notifications(user=user, tenant=tenant, project=project)
    return mine


def my_preference_get(
    *, user, tenant: Tenant, project: Project | None = None
) -> NotificationPreference | None:
    """The user's own row at the tenant's or a project's scope (None = inherit)."""
    return (
        NotificationPreference.objects.for_tenant(tenant)
        .filter(user=user, project=project, pipeline__isnull=True)
        .first()
    )
