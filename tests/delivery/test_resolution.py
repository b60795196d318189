"""Who an event goes to: rules, levels, groups, preferences, suppressions, de-duplication."""

import pytest
from django.db import connection

from apps.accounts.models import User
from apps.delivery.models import Delivery, DeliveryStatus, Event
from apps.delivery.resolution import event_recipients
from apps.delivery.services import event_dispatch
from apps.groups.models import UserGroupMember
from apps.pipelines.models import EventType, Level, NotificationDefaults, Override
from apps.preferences.models import NotificationPreference, Suppression
from tests.delivery.engine import add_members, make_event, make_pipeline
from tests.factories import (
    MembershipFactory,
    NotificationRuleFactory,
    ProjectFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = pytest.mark.django_db

ONCALL = "oncall@payments.example"


def resolve(event: Event) -> dict[str, str]:
    event = Event.objects.select_related("pipeline", "project").get(pk=event.pk)
    return {r.address: r.reason for r in event_recipients(event) if not r.not_sent}


def rule(pipeline=None, *, project=None, addresses=(ONCALL,), groups=(), **fields):
    project = project or pipeline.project
    return NotificationRuleFactory(
        pipeline=pipeline, project=project, addresses=list(addresses), groups=list(groups), **fields
    )


# Rules -------------------------------------------------------------------------------


def test_a_pipeline_rule_names_its_addresses_and_says_why(deploy_prod):
    rule(deploy_prod, name="Prod failures")

    assert resolve(make_event(deploy_prod)) == {
        ONCALL: "You receive this because your address is listed in the rule “Prod failures” "
        "of pipeline “deploy-prod”."
    }


def test_a_project_rule_covers_every_pipeline_of_the_project(payments, deploy_prod):
    rule(project=payments, name="All of Payments")
    nightly = make_pipeline(payments, "Nightly", "nightly")

    for pipeline in (deploy_prod, nightly):
        assert resolve(make_event(pipeline)) == {
            ONCALL: "You receive this because your address is listed in the rule "
            "“All of Payments” of project “Payments”."
        }


def test_only_enabled_rules_on_this_pipeline_for_this_event_type_fire(payments, deploy_prod):
    nightly = make_pipeline(payments, "Nightly", "nightly")
    rule(deploy_prod, addresses=["fires@x.example"])
    rule(deploy_prod, addresses=["disabled@x.example"], enabled=False)
    rule(deploy_prod, addresses=["other-type@x.example"], event_types=[EventType.STAGE_FAILED])
    rule(nightly, addresses=["other-pipeline@x.example"])
    other_project = ProjectFactory(organization=payments.organization, name="Web", slug="web")
    rule(project=other_project, addresses=["other-project@x.example"])

    assert set(resolve(make_event(deploy_prod))) == {"fires@x.example"}


def test_another_tenants_rules_never_fire(deploy_prod, other_tenant):
    rule(deploy_prod)
    theirs = make_pipeline(
        ProjectFactory(organization__tenant=other_tenant, name="Payments", slug="payments"),
        "Deploy prod",
        "deploy-prod",
    )
    rule(theirs, addresses=["globex@x.example"])

    assert set(resolve(make_event(deploy_prod))) == {ONCALL}
    assert set(resolve(make_event(theirs))) == {"globex@x.example"}


# Levels: the tenant's defaults and the pipeline's override -----------------------------


@pytest.mark.parametrize(
    ("defaults", "override", "level", "notifies"),
    [
        (None, Override.INHERIT, Level.SUCCESS, True),  # no defaults saved: on, every level
        ((True, [Level.ERROR]), Override.INHERIT, Level.ERROR, True),
        ((True, [Level.ERROR]), Override.INHERIT, Level.WARNING, False),
        ((False, [Level.ERROR]), Override.INHERIT, Level.ERROR, False),
        ((True, [Level.ERROR]), (Override.ON, [Level.WARNING]), Level.WARNING, True),
        ((True, [Level.ERROR]), (Override.ON, [Level.WARNING]), Level.ERROR, False),
        ((False, []), (Override.ON, [Level.ERROR]), Level.ERROR, True),
        (None, (Override.OFF, []), Level.ERROR, False),
    ],
)
def test_levels_of_the_tenant_defaults_and_the_pipeline_override(
    tenant, deploy_prod, defaults, override, level, notifies
):
    if defaults is not None:
        NotificationDefaults.objects.create(tenant=tenant, enabled=defaults[0], levels=defaults[1])
    if override != Override.INHERIT:
        deploy_prod.notifications, deploy_prod.levels = override
        deploy_prod.save()
    rule(deploy_prod)

    assert bool(resolve(make_event(deploy_prod, level=level))) is notifies


def test_another_tenants_defaults_do_not_apply(deploy_prod, other_tenant):
    NotificationDefaults.objects.create(tenant=other_tenant, enabled=False, levels=[])
    rule(deploy_prod)

    assert set(resolve(make_event(deploy_prod))) == {ONCALL}


# Groups ------------------------------------------------------------------------------


def test_groups_bring_their_aliases_and_when_asked_every_active_member(tenant, deploy_prod):
    managers = UserGroupFactory(
        tenant=tenant,
        name="Release managers",
        alias_addresses=["releases@payments.example"],
        notify_all_members=True,
    )
    add_members(managers, "ann@payments.example", "Bob@Payments.example")
    add_members(managers, "gone@payments.example", active=False)
    aliases_only = UserGroupFactory(tenant=tenant, name="DBAs", alias_addresses=["dba@x.example"])
    add_members(aliases_only, "not-mailed@x.example")
    rule(deploy_prod, name="Prod failures", addresses=[], groups=[managers, aliases_only])

    via = "the group “Release managers”, which the rule “Prod failures” of pipeline “deploy-prod”"
    assert resolve(make_event(deploy_prod)) == {
        "dba@x.example": "You receive this because this address receives the mail of the group "
        "“DBAs”, which the rule “Prod failures” of pipeline “deploy-prod” notifies.",
        "releases@payments.example": f"You receive this because this address receives the mail "
        f"of {via} notifies.",
        "ann@payments.example": f"You receive this because you are in {via} notifies.",
        "bob@payments.example": f"You receive this because you are in {via} notifies.",
    }


def test_members_are_linked_to_their_accounts(tenant, deploy_prod):
    group = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=True)
    (ann,) = add_members(group, "ann@payments.example")
    MembershipFactory(tenant=tenant, user=UserFactory(email="listed@payments.example"))
    rule(deploy_prod, addresses=["LISTED@payments.example", "outsider@x.example"], groups=[group])
    event = make_event(deploy_prod)

    event_dispatch(event_id=event.pk)

    users = dict(event.deliveries.values_list("address", "user__email"))
    assert users == {
        "ann@payments.example": "ann@payments.example",
        "listed@payments.example": "listed@payments.example",
        "outsider@x.example": None,
    }
    assert ann.pk in event.deliveries.values_list("user_id", flat=True)


# Preferences ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant_level", "project_level", "warning", "error", "success"),
    [
        (None, None, True, True, True),  # no row anywhere: all
        ("none", None, False, False, False),
        ("failures", None, False, True, False),
        ("warnings", None, True, True, False),
        ("all", None, True, True, True),
        ("none", "all", True, True, True),  # the project's row wins
        ("all", "none", False, False, False),
        ("failures", "inherit", False, True, False),  # inherit: the tenant's
        (None, "inherit", True, True, True),
        ("inherit", None, True, True, True),
    ],
)
def test_preferences_most_specific_wins(
    tenant, payments, deploy_prod, tenant_level, project_level, warning, error, success
):
    group = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=True)
    (ann,) = add_members(group, "ann@payments.example")
    rule(deploy_prod, addresses=[], groups=[group], event_types=list(EventType.values))
    if tenant_level:
        NotificationPreference.objects.create(tenant=tenant, user=ann, level=tenant_level)
    if project_level:
        NotificationPreference.objects.create(
            tenant=tenant, user=ann, project=payments, level=project_level
        )

    def reaches(level):
        return "ann@payments.example" in resolve(make_event(deploy_prod, level=level))

    assert (reaches(Level.WARNING), reaches(Level.ERROR), reaches(Level.SUCCESS)) == (
        warning,
        error,
        success,
    )


def test_preferences_apply_to_a_members_address_listed_in_a_rule(tenant, deploy_prod):
    ann = UserFactory(email="ann@payments.example")
    MembershipFactory(tenant=tenant, user=ann)
    NotificationPreference.objects.create(tenant=tenant, user=ann, level="none")
    rule(deploy_prod, addresses=["Ann@Payments.example", ONCALL])

    assert set(resolve(make_event(deploy_prod))) == {ONCALL}


def test_preferences_of_another_project_or_tenant_do_not_apply(
    tenant, other_tenant, payments, deploy_prod
):
    group = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=True)
    (ann,) = add_members(group, "ann@payments.example")
    web = ProjectFactory(organization=payments.organization, name="Web", slug="web")
    NotificationPreference.objects.create(tenant=tenant, user=ann, project=web, level="none")
    NotificationPreference.objects.create(tenant=other_tenant, user=ann, level="none")
    rule(deploy_prod, addresses=[], groups=[group])

    assert set(resolve(make_event(deploy_prod))) == {"ann@payments.example"}


# Suppressions and de-duplication ---------------------------------------------------------


def test_suppressed_addresses_become_suppressed_deliveries_never_sent(tenant, deploy_prod):
    group = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=True)
    add_members(group, "Bounced.Member@payments.example")
    Suppression.objects.create(
        tenant=tenant, address="bounced.member@payments.example", reason="refused"
    )
    Suppression.objects.create(
        tenant=tenant, address="oncall@payments.example", reason="unsubscribed"
    )
    rule(
        deploy_prod, addresses=["ONCALL@payments.example", "kept@payments.example"], groups=[group]
    )
    event = make_event(deploy_prod)

    assert event_dispatch(event_id=event.pk) == 3

    rows = {d.address: (d.status, d.last_reply) for d in event.deliveries.all()}
    assert rows == {
        "oncall@payments.example": (
            DeliveryStatus.SUPPRESSED,
            "Not sent: the address is on the suppression list (Unsubscribed).",
        ),
        "bounced.member@payments.example": (
            DeliveryStatus.SUPPRESSED,
            "Not sent: the address is on the suppression list (Refused permanently).",
        ),
        "kept@payments.example": (DeliveryStatus.QUEUED, ""),
    }
    event.refresh_from_db()
    assert event.recipient_count == 3


def test_another_tenants_suppressions_do_not_apply(deploy_prod, other_tenant):
    Suppression.objects.create(tenant=other_tenant, address=ONCALL, reason="refused")
    rule(deploy_prod)

    assert set(resolve(make_event(deploy_prod))) == {ONCALL}


def test_each_address_once_with_the_most_specific_reason(tenant, payments, deploy_prod):
    group = UserGroupFactory(
        tenant=tenant, name="Ops", alias_addresses=["ops@x.example"], notify_all_members=True
    )
    add_members(group, "ann@x.example")
    # The project rule names everyone too; the pipeline's rule is the more specific.
    rule(project=payments, name="Everything", addresses=["ANN@x.example", "ops@x.example"])
    rule(deploy_prod, name="Prod", addresses=["Ops@X.example"], groups=[group])

    recipients = resolve(make_event(deploy_prod))

    assert list(recipients) == ["ops@x.example", "ann@x.example"]
    assert recipients["ops@x.example"].endswith(
        "listed in the rule “Prod” of pipeline “deploy-prod”."
    )
    assert "you are in the group “Ops”" in recipients["ann@x.example"]


def test_dispatch_creates_one_delivery_per_address(deploy_prod):
    rule(deploy_prod, addresses=["a@x.example", "b@x.example"])
    rule(deploy_prod, addresses=["B@x.example", "c@x.example"])
    event = make_event(deploy_prod)

    event_dispatch(event_id=event.pk)

    assert sorted(event.deliveries.values_list("address", flat=True)) == [
        "a@x.example",
        "b@x.example",
        "c@x.example",
    ]


# Bounded queries --------------------------------------------------------------------------


def _crowd(tenant, deploy_prod, size: int) -> Event:
    """`size` recipients: half from a group's members, some opted out or suppressed."""
    group = UserGroupFactory(
        tenant=tenant, name="Everyone", alias_addresses=["all@x.example"], notify_all_members=True
    )
    users = User.objects.bulk_create(
        User(email=f"person{n}@x.example", full_name=f"Person {n}") for n in range(size // 2)
    )
    UserGroupMember.objects.bulk_create(
        UserGroupMember(tenant=tenant, group=group, user=user) for user in users
    )
    NotificationPreference.objects.create(tenant=tenant, user=users[0], level="none")
    Suppression.objects.create(tenant=tenant, address="person1@x.example", reason="refused")
    typed = [f"typed{n}@x.example" for n in range(size - size // 2 - 1)]
    rule(deploy_prod, addresses=typed, groups=[group])
    return make_event(deploy_prod)


@pytest.mark.parametrize("size", [10, 2000])
def test_resolution_runs_a_bounded_number_of_queries(
    tenant, deploy_prod, django_assert_max_num_queries, size
):
    event = Event.objects.select_related("pipeline", "project").get(
        pk=_crowd(tenant, deploy_prod, size).pk
    )

    with django_assert_max_num_queries(8):
        recipients = event_recipients(event)

    # person0 opted out and person1 is suppressed: both kept, flagged, to be counted.
    assert len(recipients) == size
    assert sorted(r.address for r in recipients if r.not_sent) == [
        "person0@x.example",
        "person1@x.example",
    ]


def test_dispatch_of_many_recipients_stays_within_a_few_queries(
    tenant, deploy_prod, django_assert_max_num_queries
):
    event = _crowd(tenant, deploy_prod, 2000)
    # Locking the event, resolution, Message-ID domain, inserts (1,000 a statement), the event.
    inserts = 2 if connection.vendor == "postgresql" else 20

    with django_assert_max_num_queries(14 + inserts):
        event_dispatch(event_id=event.pk)

    assert Delivery.objects.filter(event=event).count() == 2000
    assert Delivery.objects.get(event=event, address="person0@x.example").status == "opted_out"
