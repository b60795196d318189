"""Who an event goes to: its recipient list, in a bounded number of queries.

The tenant's defaults and the pipeline's override say whether the event's
level notifies at all. Then the rules matching the event name addresses and
groups; groups expand to their alias addresses and (when asked) every active
member. People's own choices apply next (`apps.preferences.selectors`): the
most specific of their pipeline, project and tenant settings, the event
types they turned off, and their master switch; a mandatory rule reaches
them whatever they chose. Suppressed addresses are kept but flagged, so the
log counts them (mandatory or not), except that an address of no account
on the list only because it was unsubscribed (one click in a notification,
or the provider's unsubscribe) still receives mandatory rules: it may be a
shared alias, and one reader never silences a mandatory rule for the others.
Each address is listed once, with the most specific reason. Seven queries
at most, whatever the number of recipients.
"""

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from apps.accounts.models import User
from apps.delivery.models import Event
from apps.groups.models import UserGroupMember
from apps.pipelines.models import NotificationRule
from apps.pipelines.selectors import notification_settings_for, rules_matching
from apps.preferences.models import NotificationPreference, Suppression, SuppressionReason
from apps.preferences.selectors import preference_effective, preference_rows_for_pipeline


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
    # From a mandatory rule: the person's preferences do not apply.
    mandatory: bool = False


@dataclass(frozen=True)
class Expansion:
    """What rules name, before preferences and suppressions (duplicates kept)."""

    candidates: list[_Candidate]
    # The active members of the groups that mail all their members (not evaluated).
    members: QuerySet[UserGroupMember]
    # The typed addresses (rules' and groups' aliases), and the accounts behind them.
    typed: set[str]
    owners: dict[str, int]
    # Users among them whose master switch is off.
    switched_off: set[int]


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
    switched_off: set[int] = set()
    rows = members.order_by("user__email").values_list(
        "group_id", "user_id", "user__email", "user__notifications_enabled"
    )
    for group_id, user_id, email, enabled in rows:
        members_of.setdefault(group_id, []).append((user_id, email.lower()))
        if not enabled:
            switched_off.add(user_id)

    candidates: list[_Candidate] = []
    for rule in rules:
        where = _where(rule, event)
        named = f"the {'mandatory ' if rule.mandatory else ''}rule “{rule}” {where}"
        listed = f"your address is listed in {named}"
        must = rule.mandatory
        candidates += [_Candidate(a.lower(), None, listed, must) for a in rule.addresses]
        for group in groups_of.get(rule.pk, []):
            via = f"the group “{group}”, which {named} notifies"
            aliased = f"this address receives the mail of {via}"
            candidates += [
                _Candidate(a.lower(), None, aliased, must) for a in group.alias_addresses
            ]
            candidates += [
                _Candidate(email, user_id, f"you are in {via}", must)
                for user_id, email in members_of.get(group.pk, [])
            ]
    typed = {c.address for c in candidates if c.user_id is None}
    # A typed address may be a tenant member's own: their preferences apply too.
    owners = {}
    accounts = (
        User.objects.filter(memberships__tenant_id=event.tenant_id)
        .annotate(address=Lower("email"))
        .filter(address__in=typed)
        .values_list("address", "id", "notifications_enabled")
        .distinct()
    )
    for address, user_id, enabled in accounts:
        owners[address] = user_id
        if not enabled:
            switched_off.add(user_id)
    return Expansion(candidates, members, typed, owners, switched_off)


def _opted_out(event: Event, expansion: Expansion) -> set[int]:
    """Users whose choices exclude this event: master switch off, its level or its type."""
    rows = NotificationPreference.objects.filter(
        preference_rows_for_pipeline(
            tenant_id=event.tenant_id, project_id=event.project_id, pipeline_id=event.pipeline_id
        ),
        Q(user_id__in=expansion.members.values("user_id"))
        | Q(user_id__in=list(expansion.owners.values())),
    ).only("user_id", "project_id", "pipeline_id", "level", "muted_event_types")
    rows_of: dict[int, list[NotificationPreference]] = {}
    for row in rows:
        rows_of.setdefault(row.user_id, []).append(row)
    out = set(expansion.switched_off)
    for user_id, chosen in rows_of.items():
        effective = preference_effective(chosen)
        if not effective.lets_through(level=event.level, event_type=event.event_type):
            out.add(user_id)
    return out


REASONS = dict(SuppressionReason.choices)
OPTED_OUT = "Not sent: this person turned these notifications off."

# The one suppression a mandatory rule overrides (for an address of no account):
# an unsubscribe, never a bounce, a complaint or an admin's entry.
UNSUBSCRIBED = f"Not sent: the address is on the suppression list ({REASONS['unsubscribed']})."


def _suppressed(event: Event, expansion: Expansion) -> dict[str, str]:
    """{address: why not} for the addresses on the tenant's suppression list."""
    member_addresses = expansion.members.annotate(address=Lower("user__email")).values("address")
    # Stored lower case (every write lowers it), so the comparison is on the column
    # itself and the (tenant, address) unique index serves it; Lower() would not. One
    # query, a UNION of two lookups each that index answers (an OR of the two would not).
    listed = Suppression.objects.for_tenant(event.tenant_id).order_by()
    rows = (
        listed.filter(address__in=expansion.typed)
        .values_list("address", "reason")
        .union(listed.filter(address__in=member_addresses).values_list("address", "reason"))
        .order_by()
    )
    return {
        address: f"Not sent: the address is on the suppression list ({REASONS[reason]})."
        for address, reason in rows
    }


def recipients_of(
    expansion: Expansion,
    event: Event,
    *,
    keep_opted_out: bool = False,
    opted_out: set[int] | None = None,
    suppressed: dict[str, str] | None = None,
) -> list[Recipient]:
    """Each address once with its first (most specific) reason; suppressed ones flagged.

    Users who turned the event off are dropped, unless a mandatory rule
    names them too (its reason is given then). With `keep_opted_out` (an
    event's dispatch, a rule's test) they are kept and flagged instead.
    `opted_out` and `suppressed` are read here unless the caller has them.
    """
    if opted_out is None:
        opted_out = _opted_out(event, expansion)
    if suppressed is None:
        suppressed = _suppressed(event, expansion)
    recipients: dict[str, Recipient] = {}
    held_out: set[str] = set()  # kept only to be listed as opted out or unsubscribed
    for c in expansion.candidates:
        if c.address in recipients and c.address not in held_out:
            continue
        user_id = c.user_id or expansion.owners.get(c.address)
        not_sent = suppressed.get(c.address, "")
        # An address of no account may be shared: whoever unsubscribed it spoke for
        # everyone who reads it, which never silences a mandatory rule.
        shared_unsubscribed = not_sent == UNSUBSCRIBED and user_id is None
        if shared_unsubscribed and c.mandatory:
            not_sent = ""
        if user_id in opted_out and not c.mandatory:
            if not keep_opted_out or c.address in held_out:
                continue
            held_out.add(c.address)
            not_sent = not_sent or OPTED_OUT
        elif shared_unsubscribed and not c.mandatory:
            # Listed as not sent, unless a mandatory rule further down names it too.
            if c.address in held_out:
                continue
            held_out.add(c.address)
        else:
            held_out.discard(c.address)
        reason = f"You receive this because {c.reason}."
        recipients[c.address] = Recipient(c.address, user_id, reason, not_sent)
    return list(recipients.values())


def event_recipients(event: Event, *, memo: dict | None = None) -> list[Recipient]:
    """Who the event goes to, most specific reason first; [] when its level does not notify.

    Expects the event with its pipeline and project loaded (select_related).
    `memo`, one dict for the events of one dispatch task, reuses what
    events of the same pipeline share: the notification settings, the rules
    and what they name per event type, the suppressed addresses among them,
    and who opted out per event type and level. A thousand small events in
    one task are resolved in a handful of queries.
    """
    memo = {} if memo is None else memo
    settings_key = ("settings", event.pipeline_id)
    if settings_key not in memo:
        memo[settings_key] = notification_settings_for(event.pipeline)
    if not memo[settings_key].notifies(event.level):
        return []
    rules_key = ("expansion", event.pipeline_id, event.event_type)
    if rules_key not in memo:
        rules = _rules(event)
        memo[rules_key] = rules_expand(rules=rules, event=event) if rules else None
    expansion = memo[rules_key]
    if expansion is None:
        return []
    opted_out_key = ("opted_out", event.pipeline_id, event.event_type, event.level)
    if opted_out_key not in memo:
        memo[opted_out_key] = _opted_out(event, expansion)
    suppressed_key = ("suppressed", *rules_key[1:])
    if suppressed_key not in memo:
        memo[suppressed_key] = _suppressed(event, expansion)
    # Opted-out people are kept, flagged: the log counts them.
    return recipients_of(
        expansion,
        event,
        keep_opted_out=True,
        opted_out=memo[opted_out_key],
        suppressed=memo[suppressed_key],
    )
