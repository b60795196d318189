import pytest
from django.http import Http404
from django.utils import timezone

from apps.pipelines.models import EventType, NotificationDefaults, Override
from apps.pipelines.selectors import (
    api_token_authenticate,
    levels_in_words,
    notification_defaults_get,
    notification_settings_for,
    pipeline_get,
    pipeline_rule_list,
    rules_matching,
)
from tests.factories import (
    NotificationRuleFactory,
    PipelineFactory,
    ProjectApiTokenFactory,
    ProjectFactory,
    UserGroupFactory,
)

FAILED, SUCCEEDED = EventType.PIPELINE_FAILED, EventType.PIPELINE_SUCCEEDED


# Notification settings: pipeline override > tenant default > Postmaster default -------


def test_without_tenant_defaults_every_level_notifies(pipeline):
    effective = notification_settings_for(pipeline)
    assert (effective.enabled, effective.levels, effective.source) == (
        True,
        ["success", "warning", "error"],
        "default",
    )
    assert effective.description == "Postmaster default: on, levels success, warning and error"
    assert effective.notifies("success")


def test_an_inheriting_pipeline_follows_the_tenant_default(tenant, pipeline):
    NotificationDefaults.objects.create(tenant=tenant, enabled=True, levels=["error", "warning"])
    effective = notification_settings_for(pipeline)
    assert (effective.levels, effective.source) == (["warning", "error"], "tenant")
    assert effective.description == "Tenant default: on, levels warning and error"
    assert not effective.notifies("success")
    assert effective.notifies("error")


def test_tenant_default_off_silences_inheriting_pipelines(tenant, pipeline):
    NotificationDefaults.objects.create(tenant=tenant, enabled=False, levels=["error"])
    effective = notification_settings_for(pipeline)
    assert (effective.enabled, effective.levels) == (False, [])
    assert effective.description == "Tenant default: off"
    assert not effective.notifies("error")


def test_a_pipeline_override_wins_over_the_tenant_default(tenant, pipeline):
    NotificationDefaults.objects.create(tenant=tenant, enabled=False, levels=[])
    pipeline.notifications, pipeline.levels = Override.ON, ["error"]
    effective = notification_settings_for(pipeline)
    assert (effective.enabled, effective.levels, effective.source) == (True, ["error"], "pipeline")
    assert effective.description == "This pipeline: on, level error"

    pipeline.notifications = Override.OFF
    assert notification_settings_for(pipeline).description == "This pipeline: off"
    assert not notification_settings_for(pipeline).notifies("error")


def test_another_tenants_defaults_do_not_apply(other_tenant, pipeline):
    NotificationDefaults.objects.create(tenant=other_tenant, enabled=False, levels=[])
    assert notification_settings_for(pipeline).source == "default"
    assert notification_settings_for(pipeline).enabled


def test_preloaded_defaults_decide_many_pipelines_without_queries(
    tenant, project, django_assert_num_queries
):
    NotificationDefaults.objects.create(tenant=tenant, enabled=True, levels=["error"])
    pipelines = [PipelineFactory(project=project) for _ in range(5)]
    defaults = notification_defaults_get(tenant_id=tenant.pk)
    with django_assert_num_queries(0):
        decided = [notification_settings_for(p, defaults=defaults) for p in pipelines]
    assert {e.description for e in decided} == {"Tenant default: on, level error"}


def test_an_overriding_pipeline_needs_no_query(pipeline, django_assert_num_queries):
    pipeline.notifications = Override.OFF
    with django_assert_num_queries(0):
        notification_settings_for(pipeline)


def test_levels_in_words():
    assert levels_in_words(["error"]) == "level error"
    assert levels_in_words(["error", "success"]) == "levels success and error"
    assert levels_in_words([]) == "no level"


# Rules matching an event ----------------------------------------------------------------


@pytest.fixture
def rules(tenant, project, pipeline):
    """Rules on the pipeline, on its project, on a sibling pipeline, and an other tenant's twin."""
    group = UserGroupFactory(tenant=tenant, name="Ops")
    sibling = PipelineFactory(project=project)
    twin_project = ProjectFactory()
    twin = PipelineFactory(project=twin_project, slug=pipeline.slug)
    return {
        "own": NotificationRuleFactory(pipeline=pipeline, event_types=[FAILED], groups=[group]),
        "project": NotificationRuleFactory(
            pipeline=None, project=project, event_types=[FAILED, SUCCEEDED]
        ),
        "own_other_event": NotificationRuleFactory(pipeline=pipeline, event_types=[SUCCEEDED]),
        "disabled": NotificationRuleFactory(pipeline=pipeline, event_types=[FAILED], enabled=False),
        "sibling": NotificationRuleFactory(pipeline=sibling, event_types=[FAILED]),
        "other_tenant": NotificationRuleFactory(pipeline=twin, event_types=[FAILED]),
        "other_tenant_project": NotificationRuleFactory(
            pipeline=None, project=twin_project, event_types=[FAILED]
        ),
    }


def test_rules_matching_takes_the_pipelines_and_its_projects_enabled_rules(
    pipeline, rules, django_assert_num_queries
):
    with django_assert_num_queries(2):
        matching = rules_matching(pipeline=pipeline, event_type=FAILED)
        groups = {rule.name: [g.name for g in rule.groups.all()] for rule in matching}
    assert set(matching) == {rules["own"], rules["project"]}
    assert groups == {rules["own"].name: ["Ops"], rules["project"].name: []}


def test_rules_matching_filters_by_event_type(pipeline, rules):
    matching = rules_matching(pipeline=pipeline, event_type=SUCCEEDED)
    assert set(matching) == {rules["project"], rules["own_other_event"]}
    assert rules_matching(pipeline=pipeline, event_type=EventType.APPROVAL_REQUESTED) == []


def test_rules_matching_on_the_other_tenants_twin_sees_only_its_own(rules):
    twin = rules["other_tenant"].pipeline
    assert set(rules_matching(pipeline=twin, event_type=FAILED)) == {
        rules["other_tenant"],
        rules["other_tenant_project"],
    }


def test_a_pipelines_page_lists_its_rules_then_its_projects(tenant, pipeline, rules):
    listed = list(pipeline_rule_list(tenant=tenant, pipeline=pipeline))
    assert listed[-1] == rules["project"]
    assert set(listed) == {
        rules["own"],
        rules["own_other_event"],
        rules["disabled"],
        rules["project"],
    }


def test_another_tenants_pipeline_is_not_found(tenant, other_tenant):
    theirs = PipelineFactory(project=ProjectFactory(organization__tenant=other_tenant))
    with pytest.raises(Http404):
        pipeline_get(tenant=tenant, pk=theirs.pk)


# API tokens --------------------------------------------------------------------------


def test_a_token_authenticates_with_its_project_in_one_query(project, django_assert_num_queries):
    token = ProjectApiTokenFactory(project=project, raw="pm_right-token")
    with django_assert_num_queries(1):
        found = api_token_authenticate("pm_right-token")
        assert (found.project, found.project.name, found.tenant_id) == (
            project,
            project.name,
            project.tenant_id,
        )
    assert found == token
    assert found.tenant == project.tenant


@pytest.mark.parametrize("raw", ["pm_wrong-token", "", "right-token", "pm_right-toke"])
def test_anything_else_does_not_authenticate(project, raw):
    ProjectApiTokenFactory(project=project, raw="pm_right-token")
    assert api_token_authenticate(raw) is None


def test_a_revoked_token_does_not_authenticate(project):
    ProjectApiTokenFactory(project=project, raw="pm_revoked", revoked_at=timezone.now())
    assert api_token_authenticate("pm_revoked") is None


def test_a_disabled_tenants_token_still_authenticates(project):
    # A disabled tenant's events are accepted and kept (not sent) until it is enabled.
    token = ProjectApiTokenFactory(project=project, raw="pm_active")
    project.tenant.is_active = False
    project.tenant.save()
    assert api_token_authenticate("pm_active") == token
