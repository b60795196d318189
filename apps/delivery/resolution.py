"""Who an event goes to: its recipient list, in a bounded number of queries.

The tenant's defaults and the pipeline's override say whether the event's
level notifies at all. Then the rules matching the event name addresses and
groups; groups expand to their alias addresses and (when asked) every active
member; users who turned the notification off are dropped; suppressed
addresses are kept but flagged, so the log counts them; each address is
listed once, with the most specific reason. Seven queries at most, whatever
the number of recipients.
"""

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from apps.accounts.models import User
from apps.delivery.models import Event
from apps.groups.models import UserGroupMember
from apps.pipelines.models import ALL_LEVELS, Level, NotificationRule
from apps.pipelines.selectors import notification_settings_for, rules_matching
from apps.preferences.models import (
    NotificationPreference,
    PreferenceLevel,
    Suppression,
    SuppressionReason,
)

# The levels each preference lets through; "inherit" looks one scope up.
PREFERENCE_LEVELS = {
    PreferenceLevel.ALL: set(ALL_LEVELS),
    PreferenceLevel.WARNINGS: {Level.WARNING, Level.ERROR},
    PreferenceLevel.FAILURES: {Level.ERROR},
    PreferenceLevel.NONE: set(),
}


@dataclass(frozen=True)
class Recipient:
    address: str  # lower case
    user_id: int | None
    # Said in the message's footer.
    reason: str
    # Why it is not sent (on the suppression list), or "". Recorded, never sent.
    not_sent: str = ""


def _rules(event: Event) -> list[NotificationRule]:
    """The matching rules, the pipeline's own first (the more specific), groups prefetched."""
    rules = rules_matching(pipeline=event.pipeline, event_type=event.event_type)
    return sorted(rules, key=lambda rule: (rule.pipeline_id is None, rule.name, rule.pk))


def _where(rule: NotificationRule, event: Event) -> str:
    if rule.pipeline_id is not None:
        return f"of pipeline “{event.pipeline.slug}”"
    return f"of project “{event.project.name}”"


@dataclass(frozen=True)
class _Candidate:
    address: str  # lower case
    user_id: int | None
    reason: str


@dataclass(frozen=True)
class Expansion:
    """What rules name, before preferences and suppressions (duplicates kept)."""

    candidates: list[_Candidate]
    # The active members of the groups that mail all their members (not evaluated).
    members: QuerySet[UserGroupMember]
    # The typed addresses (rules' and groups' aliases), and the accounts behind them.
    typed: set[str]
    owners: dict[str, int]


def rules_expand(*, rules: list[NotificationRule], event: Event) -> Expansion:
    """Every address the rules name, in order of specificity.

    Two queries (with the rules' groups prefetched): the members of those
    that mail all members, and the tenant's accounts behind typed addresses.
    """
    groups_of = {rule.pk: list(rule.groups.all()) for rule in rules}
    members = UserGroupMember.objects.for_tenant(event.tenant_id).filter(
        group_id__in={g.pk for gs in groups_of.values() for g in gs if g.notify_all_members},
        user__is_active=True,
    )
    members_of: dict[int, list[tuple[int, str]]] = {}
    rows = members.order_by("user__email").values_list("group_id", "user_id", "user__email")
    for group_id, user_id, email in rows:
        members_of.setdefault(group_id, []).append((user_id, email.lower()))

    candidates: list[_Candidate] = []
    for rule in rules:
        where = _where(rule, event)
        listed = f"your address is listed in the rule “{rule}” {where}"
        candidates += [_Candidate(address.lower(), None, listed) for address in rule.addresses]
        for group in groups_of.get(rule.pk, []):
            via = f"the group “{group}”, which the rule “{rule}” {where} notifies"
            candidates += [
                _Candidate(address.lower(), None, f"this address receives the mail of {via}")
                for address in group.alias_addresses
            ]
            candidates += [
                _Candidate(email, user_id, f"you are in {via}")
                for user_id, email in members_of.get(group.pk, [])
            ]
    typed = {c.address for c in candidates if c.user_id is None}
    # A typed address may be a tenant member's own: their preferences apply too.
    owners = dict(
        User.objects.filter(memberships__tenant_id=event.tenant_id)
        .annotate(address=Lower("email"))
        .filter(address__in=typed)
        .values_list("address", "id")
        .distinct()
    )
    return Expansion(candidates, members, typed, owners)


def _opted_out(event: Event, expansion: Expansion) -> set[int]:
    """Users whose preference (project over tenant; none at all = all) excludes the level."""
    rows = NotificationPreference.objects.for_tenant(event.tenant_id).filter(
        Q(project__isnull=True) | Q(project_id=event.project_id),
        Q(user_id__in=expansion.members.values("user_id"))
        | Q(user_id__in=list(expansion.owners.values())),
    )
    levels: dict[int, dict[bool, str]] = {}
    for user_id, project_id, level in rows.values_list("user_id", "project_id", "level"):
        levels.setdefault(user_id, {})[project_id is not None] = level
    out = set()
    for user_id, by_scope in levels.items():
        # The project's row, unless it says "inherit"; then the tenant's; then "all".
        said = [by_scope.get(True), by_scope.get(False)]
        chosen = next(
            (level for level in said if level not in (None, PreferenceLevel.INHERIT)),
            PreferenceLevel.ALL,
        )
        if event.level not in PREFERENCE_LEVELS[chosen]:
            out.add(user_id)
    return out


REASONS = dict(SuppressionReason.choices)
OPTED_OUT = "Not sent: this person turned these notifications off."


def _suppressed(event: Event, expansion: Expansion) -> dict[str, str]:
    """{address: why not} for the addresses on the tenant's suppression list."""
    member_addresses = expansion.members.annotate(address=Lower("user__email")).values("address")
    rows = (
        Suppression.objects.for_tenant(event.tenant_id)
        .annotate(lower=Lower("address"))
        .filter(Q(lower__in=expansion.typed) | Q(lower__in=member_addresses))
    )
    return {
        address: f"Not sent: the address is on the suppression list ({REASONS[reason]})."
        for address, reason in rows.values_list("lower", "reason")
    }


def recipients_of(
    expansion: Expansion, event: Event, *, keep_opted_out: bool = False
) -> list[Recipient]:
    """Each address once with its first (most specific) reason; suppressed ones flagged.

    Users who turned the event's level off are dropped, or with
    `keep_opted_out` (a rule's test) kept and flagged.
    """
    opted_out = _opted_out(event, expansion)
    suppressed = _suppressed(event, expansion)
    recipients: dict[str, Recipient] = {}
    for c in expansion.candidates:
        if c.address in recipients:
            continue
        user_id = c.user_id or expansion.owners.get(c.address)
        not_sent = suppressed.get(c.address, "")
        if user_id in opted_out:
            if not keep_opted_out:
                continue
            not_sent = not_sent or OPTED_OUT
        reason = f"You receive this because {c.reason}."
        recipients[c.address] = Recipient(c.address, user_id, reason, not_sent)
    return list(recipients.values())


def event_recipients(event: Event) -> list[Recipient]:
    """Who the event goes to, most specific reason first; [] when its level does not notify.

    Expects the event with its pipeline and project loaded (select_related).
    """
    if not notification_settings_for(event.pipeline).notifies(event.level):
        return []
    rules = _rules(event)
    if not rules:
        return []
    return recipients_of(rules_expand(rules=rules, event=event), event)
