"""The engine honours what people chose: scopes, event types, the master switch, mandatory rules."""

import pytest

from apps.accounts.models import User
from apps.delivery.models import DeliveryStatus, Event
from apps.delivery.resolution import event_recipients, recipients_of, rules_expand
from apps.delivery.services import event_dispatch
from apps.groups.models import UserGroupMember
from apps.pipelines.models import EventType, Level
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

ANN = "ann@payments.example"
ALL_TYPES = list(EventType.values)


@pytest.fixture
def payments(tenant):
    return ProjectFactory(organization__tenant=tenant, name="Payments", slug="payments")


@pytest.fixture
def deploy_prod(payments):
    return make_pipeline(payments, "Deploy prod", "deploy-prod")


@pytest.fixture
def nightly(payments):
    return make_pipeline(payments, "Nightly", "nightly")


@pytest.fixture
def ops(tenant):
    """A group that mails its members; Ann is one."""
    return UserGroupFactory(tenant=tenant, name="Ops", alias_addresses=[], notify_all_members=True)


@pytest.fixture
def ann(tenant, ops):
    (user,) = add_members(ops, ANN)
    MembershipFactory(tenant=tenant, user=user)
    return user


def rule(pipeline=None, *, project=None, groups=(), addresses=(), **fields):
    return NotificationRuleFactory(
        pipeline=pipeline,
        project=project or pipeline.project,
        groups=list(groups),
        addresses=list(addresses),
        **{"event_types": ALL_TYPES, **fields},
    )


def prefer(user, tenant, *, project=None, pipeline=None, level="inherit", muted=()):
    project = project or (pipeline.project if pipeline else None)
    return NotificationPreference.objects.create(
        tenant=tenant,
        user=user,
        project=project,
        pipeline=pipeline,
        level=level,
        muted_event_types=list(muted),
    )


def recipients(pipeline, **fields) -> dict[str, str]:
    """{address: reason} of those the event is sent to."""
    event = make_event(pipeline, **fields)
    event = Event.objects.select_related("pipeline", "project").get(pk=event.pk)
    return {r.address: r.reason for r in event_recipients(event) if not r.not_sent}


def reaches_ann(pipeline, level=Level.ERROR, event_type=EventType.PIPELINE_FAILED) -> bool:
    return ANN in recipients(pipeline, level=level, event_type=event_type)


# Scopes: pipeline over project over tenant; "inherit" looks one scope up -------------------


@pytest.mark.parametrize(
    ("tenant_level", "project_level", "pipeline_level", "expected"),
    [
        # (warning, error, success) reach Ann?
        (None, None, None, (True, True, True)),  # no rows: all events
        ("failures", None, None, (False, True, False)),
        ("failures", "warnings", None, (True, True, False)),
        ("failures", "warnings", "all", (True, True, True)),
        ("all", "all", "none", (False, False, False)),
        ("none", "inherit", "inherit", (False, False, False)),  # inherit all the way up
        ("warnings", "none", "inherit", (False, False, False)),
        ("none", "inherit", "failures", (False, True, False)),
        ("inherit", "inherit", "inherit", (True, True, True)),  # a tenant's inherit: all
        (None, None, "warnings", (True, True, False)),
    ],
)
def test_the_most_specific_scope_that_does_not_inherit_wins(
    tenant, payments, deploy_prod, ops, ann, tenant_level, project_level, pipeline_level, expected
):
    rule(deploy_prod, groups=[ops])
    if tenant_level:
        prefer(ann, tenant, level=tenant_level)
    if project_level:
        prefer(ann, tenant, project=payments, level=project_level)
    if pipeline_level:
        prefer(ann, tenant, pipeline=deploy_prod, level=pipeline_level)

    got = tuple(
        reaches_ann(deploy_prod, level) for level in (Level.WARNING, Level.ERROR, "success")
    )

    assert got == expected


def test_a_pipeline_setting_covers_only_its_pipeline(
    tenant, payments, deploy_prod, nightly, ops, ann
):
    rule(project=payments, groups=[ops])
    prefer(ann, tenant, pipeline=nightly, level="none")

    assert reaches_ann(deploy_prod)
    assert not reaches_ann(nightly)


def test_a_project_setting_covers_only_its_project(tenant, payments, deploy_prod, ops, ann):
    web = ProjectFactory(organization=payments.organization, name="Web", slug="web")
    site = make_pipeline(web, "Site", "site")
    rule(deploy_prod, groups=[ops])
    rule(site, groups=[ops])
    prefer(ann, tenant, project=web, level="none")

    assert reaches_ann(deploy_prod)
    assert not reaches_ann(site)


# Event types ---------------------------------------------------------------------------------


def test_an_event_type_turned_off_for_the_tenant_is_off_in_every_project(
    tenant, payments, deploy_prod, ops, ann
):
    rule(deploy_prod, groups=[ops])
    prefer(ann, tenant, muted=[EventType.STAGE_FAILED])
    # A level chosen lower down does not bring the event type back.
    prefer(ann, tenant, project=payments, level="all")

    assert not reaches_ann(deploy_prod, event_type=EventType.STAGE_FAILED)
    assert reaches_ann(deploy_prod, event_type=EventType.PIPELINE_FAILED)


def test_event_types_turned_off_for_a_project_or_a_pipeline_stay_there(
    tenant, payments, deploy_prod, nightly, ops, ann
):
    web = ProjectFactory(organization=payments.organization, name="Web", slug="web")
    site = make_pipeline(web, "Site", "site")
    for pipeline in (deploy_prod, nightly, site):
        rule(pipeline, groups=[ops])
    prefer(ann, tenant, project=payments, muted=[EventType.PIPELINE_STARTED])
    prefer(ann, tenant, pipeline=nightly, muted=[EventType.PIPELINE_FAILED])

    started, failed = EventType.PIPELINE_STARTED, EventType.PIPELINE_FAILED
    assert not reaches_ann(deploy_prod, event_type=started)
    assert reaches_ann(deploy_prod, event_type=failed)
    assert not reaches_ann(nightly, event_type=failed)
    assert reaches_ann(site, event_type=started)


def test_muting_applies_to_a_members_address_typed_in_a_rule(tenant, deploy_prod):
    bob = UserFactory(email="bob@payments.example")
    MembershipFactory(tenant=tenant, user=bob)
    prefer(bob, tenant, muted=[EventType.PIPELINE_FAILED])
    rule(deploy_prod, addresses=["Bob@Payments.example", "oncall@payments.example"])

    assert set(recipients(deploy_prod)) == {"oncall@payments.example"}


# The master switch ---------------------------------------------------------------------------


def test_master_switch_off_stops_everything_but_mandatory_rules(tenant, deploy_prod, ops, ann):
    bob = UserFactory(email="bob@payments.example", notifications_enabled=False)
    MembershipFactory(tenant=tenant, user=bob)
    ann.notifications_enabled = False
    ann.save()
    ordinary = rule(deploy_prod, groups=[ops], addresses=["bob@payments.example", "x@y.example"])

    assert set(recipients(deploy_prod)) == {"x@y.example"}

    ordinary.mandatory = True
    ordinary.save()

    assert set(recipients(deploy_prod)) == {ANN, "bob@payments.example", "x@y.example"}


def test_master_switch_back_on_takes_effect_for_the_next_event(deploy_prod, ops, ann):
    rule(deploy_prod, groups=[ops])
    User.objects.filter(pk=ann.pk).update(notifications_enabled=False)
    assert not reaches_ann(deploy_prod)

    User.objects.filter(pk=ann.pk).update(notifications_enabled=True)

    assert reaches_ann(deploy_prod)


# Mandatory rules -----------------------------------------------------------------------------


def test_a_mandatory_rule_reaches_people_who_turned_everything_off(
    tenant, payments, deploy_prod, ops, ann
):
    rule(deploy_prod, name="Prod failures", groups=[ops], mandatory=True)
    prefer(ann, tenant, level="none", muted=ALL_TYPES)
    prefer(ann, tenant, pipeline=deploy_prod, level="none")

    assert recipients(deploy_prod) == {
        ANN: "You receive this because you are in the group “Ops”, which the mandatory rule "
        "“Prod failures” of pipeline “deploy-prod” notifies."
    }


def test_opted_out_people_get_the_event_through_the_mandatory_rule_only(
    tenant, payments, deploy_prod, ops, ann
):
    # The pipeline's own rule is the more specific, but Ann turned it off.
    rule(deploy_prod, name="Prod", groups=[ops])
    rule(project=payments, name="Payments failures", groups=[ops], mandatory=True)
    prefer(ann, tenant, level="none")

    assert recipients(deploy_prod)[ANN].endswith(
        "the mandatory rule “Payments failures” of project “Payments” notifies."
    )


def test_a_mandatory_rule_never_mails_a_suppressed_address(tenant, deploy_prod, ops, ann):
    rule(deploy_prod, groups=[ops], mandatory=True)
    Suppression.objects.create(tenant=tenant, address=ANN, reason="unsubscribed")
    event = make_event(deploy_prod)

    event_dispatch(event_id=event.pk)

    delivery = event.deliveries.get()
    assert (delivery.address, delivery.status) == (ANN, DeliveryStatus.SUPPRESSED)


def test_the_levels_of_the_pipeline_still_apply_to_mandatory_rules(deploy_prod, ops, ann):
    deploy_prod.notifications, deploy_prod.levels = "on", [Level.ERROR]
    deploy_prod.save()
    rule(deploy_prod, groups=[ops], mandatory=True)

    assert reaches_ann(deploy_prod, Level.ERROR)
    assert not reaches_ann(deploy_prod, Level.WARNING)


def test_a_rules_test_lists_opted_out_people_unless_the_rule_is_mandatory(
    tenant, deploy_prod, ops, ann
):
    prefer(ann, tenant, level="none")
    for mandatory, not_sent in [
        (False, "Not sent: this person turned these notifications off."),
        (True, ""),
    ]:
        tested = rule(deploy_prod, groups=[ops], mandatory=mandatory)
        event = Event(
            tenant=tenant,
            project=deploy_prod.project,
            pipeline=deploy_prod,
            event_type=EventType.PIPELINE_FAILED,
            level=Level.ERROR,
        )
        expansion = rules_expand(rules=[tested], event=event)
        (recipient,) = recipients_of(expansion, event, keep_opted_out=True)
        assert (recipient.address, recipient.not_sent) == (ANN, not_sent)


# Tenants apart -------------------------------------------------------------------------------


def test_choices_made_in_another_tenant_never_apply(tenant, other_tenant, deploy_prod, ops, ann):
    theirs = ProjectFactory(organization__tenant=other_tenant, name="Payments", slug="payments")
    their_pipeline = make_pipeline(theirs, "Deploy prod", "deploy-prod")
    MembershipFactory(tenant=other_tenant, user=ann)
    prefer(ann, other_tenant, level="none", muted=ALL_TYPES)
    prefer(ann, other_tenant, project=theirs, level="none")
    prefer(ann, other_tenant, pipeline=their_pipeline, level="none")
    rule(deploy_prod, groups=[ops])

    assert reaches_ann(deploy_prod)


# Bounded queries -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 2000])
def test_resolution_with_choices_at_every_scope_stays_bounded(
    tenant, payments, deploy_prod, django_assert_max_num_queries, size
):
    group = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=True)
    users = User.objects.bulk_create(
        User(email=f"person{n}@x.example", notifications_enabled=n % 7 != 0) for n in range(size)
    )
    UserGroupMember.objects.bulk_create(
        UserGroupMember(tenant=tenant, group=group, user=user) for user in users
    )
    # Rows at the tenant's, the project's and the pipeline's scope; every fifth says "none".
    NotificationPreference.objects.bulk_create(
        NotificationPreference(
            tenant=tenant,
            user=user,
            project=payments if n % 3 else None,
            pipeline=deploy_prod if n % 3 == 2 else None,
            level="all" if n % 5 else "none",
            muted_event_types=[EventType.STAGE_FAILED],
        )
        for n, user in enumerate(users)
    )
    rule(deploy_prod, groups=[group], addresses=["typed@x.example"])
    rule(deploy_prod, groups=[group], mandatory=True, event_types=[EventType.STAGE_FAILED])
    everyone = {f"person{n}@x.example" for n in range(size)} | {"typed@x.example"}
    chose_it = {f"person{n}@x.example" for n in range(size) if n % 7 and n % 5}

    for event_type, expected in [
        (EventType.PIPELINE_FAILED, chose_it | {"typed@x.example"}),
        (EventType.STAGE_FAILED, everyone),  # muted by all, but a mandatory rule sends it
    ]:
        event = make_event(deploy_prod, event_type=event_type)
        event = Event.objects.select_related("pipeline", "project").get(pk=event.pk)
        with django_assert_max_num_queries(8):
            found = event_recipients(event)
        assert {r.address for r in found if not r.not_sent} == expected
        # The others are kept, flagged as opted out, so the delivery log counts them.
        assert {r.address for r in found if r.not_sent} == everyone - expected
