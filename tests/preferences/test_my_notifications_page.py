"""My notifications: the master switch, tenant and project settings, what reaches the user."""

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.delivery.models import Event
from apps.delivery.resolution import event_recipients
from apps.pipelines.models import EventType, Level, NotificationRule, Pipeline
from apps.preferences.models import NotificationPreference, Suppression
from apps.tenancy.models import Project
from tests.factories import (
    MembershipFactory,
    NotificationRuleFactory,
    PipelineFactory,
    ProjectFactory,
    UserFactory,
    UserGroupFactory,
)

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("preferences:my_notifications")


def tenant_url(tenant):
    return reverse("preferences:my_tenant", args=[tenant.slug])


def project_url(project):
    return reverse("preferences:my_project", args=[project.tenant.slug, project.slug])


@pytest.fixture
def payments(tenant):
    return ProjectFactory(organization__tenant=tenant, name="Payments", slug="payments")


@pytest.fixture
def deploy_prod(payments):
    return PipelineFactory(project=payments, name="Deploy prod", slug="deploy-prod")


@pytest.fixture
def nightly(payments):
    return PipelineFactory(project=payments, name="Nightly", slug="nightly")


@pytest.fixture
def ann(tenant):
    user = UserFactory(email="ann@acme.example")
    MembershipFactory(tenant=tenant, user=user)
    return user


@pytest.fixture
def release_managers(tenant, ann):
    group = UserGroupFactory(
        tenant=tenant, name="Release managers", alias_addresses=[], notify_all_members=True
    )
    group.memberships.create(tenant=tenant, user=ann)
    return group


@pytest.fixture
def ann_client(client, ann):
    client.force_login(ann)
    return client


def page(response) -> str:
    """The page's text, tags dropped and white space collapsed."""
    assert response.status_code == 200
    return " ".join(strip_tags(response.content.decode()).split())


def events_except(*muted) -> list[str]:
    return [t for t in EventType.values if t not in muted]


# The page ----------------------------------------------------------------------------------


def test_signed_in_users_find_it_in_the_navbar_and_anonymous_ones_sign_in(client, ann):
    assert client.get(OVERVIEW)["Location"].startswith(reverse("accounts:login"))
    client.force_login(ann)
    home = client.get(reverse("home")).content.decode()
    assert f'href="{OVERVIEW}"' in home


def test_it_says_which_rule_and_group_reach_the_user_and_what_gets_through(
    ann_client, tenant, payments, deploy_prod, release_managers
):
    NotificationRuleFactory(
        pipeline=deploy_prod,
        name="Prod failures",
        groups=[release_managers],
        addresses=["ann@acme.example"],
        event_types=[EventType.PIPELINE_FAILED, EventType.STAGE_FAILED],
    )
    NotificationRuleFactory(
        pipeline=None, project=payments, name="Everything", addresses=["someone@else.example"]
    )

    html = page(ann_client.get(OVERVIEW))

    assert "Acme" in html
    assert "Payments" in html
    assert "Prod failures" in html
    assert "rule on the pipeline Deploy prod" in html
    assert (
        "Reaches you because your address is listed in the rule; "
        "you are in the group “Release managers”." in html
    )
    assert "You get: Pipeline failed, Stage failed — at levels success, warning and error." in html
    assert "Everything" not in html  # It does not name Ann.


def test_a_project_rule_says_for_which_pipelines_when_they_differ(
    ann_client, tenant, payments, deploy_prod, nightly, release_managers, ann
):
    NotificationRuleFactory(
        pipeline=None, project=payments, name="All of Payments", groups=[release_managers]
    )
    NotificationPreference.objects.create(
        tenant=tenant, user=ann, pipeline=nightly, project=payments, level="none"
    )

    html = page(ann_client.get(OVERVIEW))

    assert "project rule, for Deploy prod" in html
    assert "project rule, for Nightly" in html
    assert "Nothing: None (your setting for this pipeline)." in html
    assert "Nightly: None" in html


def test_mandatory_rules_are_shown_as_always_sent(
    ann_client, ann, tenant, deploy_prod, release_managers
):
    NotificationRuleFactory(
        pipeline=deploy_prod, name="Prod failures", groups=[release_managers], mandatory=True
    )
    NotificationPreference.objects.create(tenant=tenant, user=ann, level="none")
    User.objects.filter(pk=ann.pk).update(notifications_enabled=False)

    html = page(ann_client.get(OVERVIEW))

    assert "Mandatory" in html
    assert "Always sent: your administrators marked this rule mandatory." in html
    assert "You get: Pipeline failed — at levels success, warning and error." in html
    assert "All your notifications are off" in html


def test_a_suppressed_address_is_said_to_receive_nothing(ann_client, tenant, payments):
    Suppression.objects.create(tenant=tenant, address="ann@acme.example", reason="unsubscribed")

    html = page(ann_client.get(OVERVIEW))

    assert "Your address is on the suppression list of Acme" in html


# The master switch -------------------------------------------------------------------------


def test_the_master_switch_turns_everything_off_and_back_on_audited(ann_client, ann):
    response = ann_client.post(OVERVIEW, {})
    assert response["Location"] == OVERVIEW
    ann.refresh_from_db()
    assert ann.notifications_enabled is False
    html = page(ann_client.get(OVERVIEW))
    assert "Your notifications are off: only mandatory rules still reach you." in html

    ann_client.post(OVERVIEW, {"enabled": "on"})

    ann.refresh_from_db()
    assert ann.notifications_enabled is True
    entries = AuditEntry.objects.filter(action="user.notifications_switched").order_by("pk")
    assert [(e.actor, e.changes) for e in entries] == [
        (ann, {"notifications on": [True, False]}),
        (ann, {"notifications on": [False, True]}),
    ]


# The whole tenant --------------------------------------------------------------------------


def test_set_the_tenant_level_and_turn_events_off(ann_client, ann, tenant):
    html = page(ann_client.get(tenant_url(tenant)))
    assert "Not set: all events" in html
    assert "Events you untick here are off in every project of Acme." in html

    response = ann_client.post(
        tenant_url(tenant),
        {"level": "failures", "events": events_except(EventType.STAGE_STARTED)},
    )

    assert response["Location"] == f"{OVERVIEW}#tenant-acme"
    row = NotificationPreference.objects.get(user=ann)
    assert (row.tenant, row.project, row.level) == (tenant, None, "failures")
    assert row.muted_event_types == [EventType.STAGE_STARTED]
    html = page(ann_client.get(OVERVIEW))
    assert "Your notification settings for Acme were saved. They apply from the next event." in html
    assert "For the whole tenant: Failures only; turned off: Stage started." in html
    entry = AuditEntry.objects.get(action="notification_preference.updated")
    assert (entry.actor, entry.tenant) == (ann, tenant)
    assert entry.changes == {
        "level": ["Inherit", "Failures only"],
        "events turned off": ["", "Stage started"],
        "scope": "Whole tenant",
    }


def test_back_to_inherit_with_every_event_on_deletes_the_row(ann_client, ann, tenant):
    NotificationPreference.objects.create(tenant=tenant, user=ann, level="none")

    ann_client.post(tenant_url(tenant), {"level": "inherit", "events": EventType.values})

    assert not NotificationPreference.objects.exists()


def test_a_level_that_is_not_offered_is_refused(ann_client, tenant):
    response = ann_client.post(tenant_url(tenant), {"level": "loud", "events": []})

    assert "Select a valid choice." in page(response)
    assert not NotificationPreference.objects.exists()


def test_a_choice_made_on_the_page_applies_to_the_next_event(
    ann_client, tenant, deploy_prod, release_managers
):
    NotificationRuleFactory(pipeline=deploy_prod, groups=[release_managers], addresses=[])

    def next_event_reaches_ann() -> bool:
        event = Event.objects.create(
            tenant=tenant,
            project=deploy_prod.project,
            pipeline=deploy_prod,
            event_type=EventType.PIPELINE_FAILED,
            level=Level.ERROR,
            run_id="1",
        )
        event = Event.objects.select_related("pipeline", "project").get(pk=event.pk)
        return "ann@acme.example" in {r.address for r in event_recipients(event) if not r.not_sent}

    assert next_event_reaches_ann()
    ann_client.post(tenant_url(tenant), {"level": "warnings", "events": events_except()})
    assert next_event_reaches_ann()
    ann_client.post(
        project_url(deploy_prod.project),
        {"level": "inherit", "events": events_except(EventType.PIPELINE_FAILED)},
    )
    assert not next_event_reaches_ann()
    ann_client.post(
        project_url(deploy_prod.project), {"level": "inherit", "events": events_except()}
    )
    assert next_event_reaches_ann()
    ann_client.post(OVERVIEW, {})
    assert not next_event_reaches_ann()


# A project and its pipelines -----------------------------------------------------------------


def test_set_a_project_and_its_pipelines(
    ann_client, ann, tenant, payments, deploy_prod, nightly, release_managers
):
    NotificationPreference.objects.create(
        tenant=tenant, user=ann, level="warnings", muted_event_types=[EventType.STAGE_STARTED]
    )
    html = page(ann_client.get(project_url(payments)))
    assert "As for the whole tenant (Failures and warnings)" in html
    assert "Off for the whole tenant already: Stage started." in html
    assert "As for the project" in html

    response = ann_client.post(
        project_url(payments),
        {
            "level": "all",
            "events": events_except(EventType.STAGE_STARTED, EventType.PIPELINE_STARTED),
            f"pipeline_{deploy_prod.pk}": "failures",
            f"pipeline_{nightly.pk}": "inherit",
        },
    )

    assert response["Location"] == f"{OVERVIEW}#project-{payments.pk}"
    rows = {
        (r.project_id, r.pipeline_id): (r.level, r.muted_event_types)
        for r in NotificationPreference.objects.filter(project__isnull=False)
    }
    assert rows == {
        (payments.pk, None): ("all", [EventType.PIPELINE_STARTED]),
        (payments.pk, deploy_prod.pk): ("failures", []),
    }
    scopes = AuditEntry.objects.filter(action="notification_preference.updated").values_list(
        "changes__scope", flat=True
    )
    assert sorted(scopes) == ["Pipeline Deploy prod in Payments", "Project Payments"]


def test_a_pipeline_set_back_to_inherit_loses_its_row(ann_client, ann, tenant, payments, nightly):
    NotificationPreference.objects.create(
        tenant=tenant, user=ann, project=payments, pipeline=nightly, level="none"
    )

    ann_client.post(
        project_url(payments),
        {"level": "inherit", "events": EventType.values, f"pipeline_{nightly.pk}": "inherit"},
    )

    assert not NotificationPreference.objects.exists()


def test_the_project_page_shows_what_reaches_the_user_there(
    ann_client, payments, deploy_prod, release_managers
):
    NotificationRuleFactory(pipeline=deploy_prod, name="Prod failures", groups=[release_managers])

    html = page(ann_client.get(project_url(payments)))

    assert "What reaches you now" in html
    assert "Prod failures" in html


# Negative twins: other users, other tenants ---------------------------------------------------


def test_a_user_only_ever_sees_and_changes_their_own_choices(
    client, tenant, payments, deploy_prod, ann, release_managers
):
    NotificationRuleFactory(pipeline=deploy_prod, name="Prod failures", groups=[release_managers])
    NotificationPreference.objects.create(tenant=tenant, user=ann, level="none")
    bob = UserFactory(email="bob@acme.example")
    MembershipFactory(tenant=tenant, user=bob)
    client.force_login(bob)

    html = page(client.get(OVERVIEW))
    assert "Prod failures" not in html  # Ann's rule, not Bob's.
    assert "For the whole tenant: Not set: all events." in html
    client.post(tenant_url(tenant), {"level": "failures", "events": EventType.values})
    client.post(OVERVIEW, {})

    assert NotificationPreference.objects.get(user=ann).level == "none"
    assert NotificationPreference.objects.get(user=bob).level == "failures"
    ann.refresh_from_db()
    assert ann.notifications_enabled is True


def test_another_tenant_is_a_404_and_never_shown(
    client, tenant, other_tenant, payments, other_tenant_admin
):
    theirs = ProjectFactory(organization__tenant=other_tenant, name="Secret", slug="secret")
    client.force_login(other_tenant_admin)

    assert "Acme" not in page(client.get(OVERVIEW))
    for url in (tenant_url(tenant), project_url(payments)):
        assert client.get(url).status_code == 404
        assert client.post(url, {"level": "none", "events": []}).status_code == 404
    # Our tenant's URL with their project in it: 404 too.
    mine = reverse("preferences:my_project", args=[other_tenant.slug, payments.slug])
    assert client.post(mine, {"level": "none", "events": []}).status_code == 404
    assert "Secret" in page(client.get(project_url(theirs)))
    assert not NotificationPreference.objects.exists()


def test_settings_in_one_tenant_leave_the_other_alone(client, tenant, other_tenant, ann):
    MembershipFactory(tenant=other_tenant, user=ann)
    client.force_login(ann)

    client.post(tenant_url(other_tenant), {"level": "none", "events": []})

    row = NotificationPreference.objects.get()
    assert row.tenant == other_tenant
    html = page(client.get(OVERVIEW))
    assert "For the whole tenant: Not set: all events." in html  # Acme
    assert "For the whole tenant: None; turned off: Pipeline started" in html  # Globex


def test_a_disabled_tenant_is_left_out(ann_client, tenant):
    tenant.is_active = False
    tenant.save()

    assert "Acme" not in page(ann_client.get(OVERVIEW))
    assert ann_client.get(tenant_url(tenant)).status_code == 404


# Bounded queries -------------------------------------------------------------------------------


def _crowd(tenant, ann, group, count: int) -> None:
    """`count` projects with a pipeline, a pipeline rule and a project rule each, and settings."""
    organization = ProjectFactory(organization__tenant=tenant).organization
    projects = Project.objects.bulk_create(
        Project(tenant=tenant, organization=organization, name=f"P{n}", slug=f"p{n}")
        for n in range(count)
    )
    pipelines = Pipeline.objects.bulk_create(
        Pipeline(tenant=tenant, project=p, name="Deploy", slug="deploy") for p in projects
    )
    rules = NotificationRule.objects.bulk_create(
        [
            NotificationRule(
                tenant=tenant,
                project=pipeline.project,
                pipeline=pipeline if n % 2 else None,
                name=f"R{n}",
                event_types=[EventType.PIPELINE_FAILED],
                addresses=["ann@acme.example"] if n % 3 else [],
                mandatory=n % 5 == 0,
            )
            for n, pipeline in enumerate(pipelines)
        ]
    )
    for rule in rules:
        rule.groups.add(group, through_defaults={"tenant": tenant})
    NotificationPreference.objects.bulk_create(
        NotificationPreference(
            tenant=tenant, user=ann, project=p.project, pipeline=p, level="failures"
        )
        for p in pipelines[::2]
    )


@pytest.mark.parametrize("count", [5, 50])
def test_the_page_runs_a_bounded_number_of_queries(
    ann_client, tenant, other_tenant, ann, release_managers, count, django_assert_max_num_queries
):
    MembershipFactory(tenant=other_tenant, user=ann)
    other_group = UserGroupFactory(tenant=other_tenant, notify_all_members=True)
    other_group.memberships.create(tenant=other_tenant, user=ann)
    _crowd(tenant, ann, release_managers, count)
    _crowd(other_tenant, ann, other_group, count)

    # Session and user, then the selector's nine reads, whatever the number of tenants.
    with django_assert_max_num_queries(11):
        html = page(ann_client.get(OVERVIEW))

    assert html.count("Reaches you because") == 2 * count


@pytest.mark.parametrize("count", [5, 50])
def test_the_project_page_runs_a_bounded_number_of_queries(
    ann_client, tenant, ann, release_managers, count, django_assert_max_num_queries
):
    _crowd(tenant, ann, release_managers, 1)
    project = Project.objects.get(slug="p0")
    pipelines = Pipeline.objects.bulk_create(
        Pipeline(tenant=tenant, project=project, name=f"Nightly {n}", slug=f"nightly-{n}")
        for n in range(count)
    )
    for pipeline in pipelines:
        NotificationRuleFactory(pipeline=pipeline, groups=[release_managers], addresses=[])

    # Session, user, membership, project, then the selector's nine reads.
    with django_assert_max_num_queries(13):
        html = page(ann_client.get(project_url(project)))

    assert html.count("Reaches you because") == count + 1
