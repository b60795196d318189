import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.delivery.models import Event
from apps.pipelines import services
from apps.pipelines.models import (
    NotificationDefaults,
    NotificationRule,
    NotificationRuleGroup,
    Override,
    Pipeline,
    ProjectApiToken,
    token_hash,
)
from apps.pipelines.selectors import api_token_authenticate, notification_settings_for
from tests.factories import (
    NotificationRuleFactory,
    OrganizationFactory,
    PipelineFactory,
    ProjectApiTokenFactory,
    ProjectFactory,
    UserGroupFactory,
)


def _last(action):
    return AuditEntry.objects.filter(action=action).latest("id")


@pytest.fixture
def request_from(rf):
    return rf.post("/", REMOTE_ADDR="198.51.100.7")


# Pipelines ---------------------------------------------------------------------------


def test_create_a_pipeline_with_a_slug_made_from_its_name(
    tenant, project, tenant_admin, request_from
):
    pipeline = services.pipeline_create(
        project=project,
        name=" Deploy prod ",
        description="Ships the website.",
        actor=tenant_admin,
        request=request_from,
    )
    assert (pipeline.tenant, pipeline.name, pipeline.slug) == (tenant, "Deploy prod", "deploy-prod")
    assert pipeline.notifications == Override.INHERIT
    entry = _last("pipeline.created")
    assert (entry.actor, entry.tenant, entry.ip_address) == (tenant_admin, tenant, "198.51.100.7")
    assert entry.changes == {
        "name": [None, "Deploy prod"],
        "slug": [None, "deploy-prod"],
        "description": [None, "Ships the website."],
        "project": "Website",
    }


def test_names_and_slugs_are_unique_per_project_only(project, tenant_admin, pipeline):
    with pytest.raises(ValidationError) as exc:
        services.pipeline_create(
            project=project, name="deploy PROD", slug="deploy-prod", actor=tenant_admin
        )
    assert exc.value.message_dict == {
        "name": [
            "The project Website already has a pipeline called “deploy PROD”. Choose another name."
        ],
        "slug": [
            "Another pipeline in Website already uses the slug “deploy-prod”. Choose another one."
        ],
    }
    assert Pipeline.objects.count() == 1
    assert not AuditEntry.objects.exists()
    other_project = ProjectFactory(organization=project.organization)
    services.pipeline_create(project=other_project, name="Deploy prod", actor=tenant_admin)
    assert Pipeline.objects.count() == 2


def test_a_name_without_letters_needs_a_slug(project, tenant_admin):
    with pytest.raises(ValidationError) as exc:
        services.pipeline_create(project=project, name="!!!", actor=tenant_admin)
    assert "Give the pipeline a slug" in exc.value.message_dict["slug"][0]


def test_update_audits_only_what_changed(pipeline, tenant_admin):
    updated = services.pipeline_update(
        pipeline=pipeline, name="Deploy prod", slug="prod", actor=tenant_admin
    )
    assert Pipeline.objects.get().slug == "prod"
    assert updated.slug == "prod"
    assert _last("pipeline.updated").changes == {
        "slug": ["deploy-prod", "prod"],
        "project": "Website",
    }
    services.pipeline_update(pipeline=updated, name="Deploy prod", slug="prod", actor=tenant_admin)
    assert AuditEntry.objects.filter(action="pipeline.updated").count() == 1


def test_a_failed_update_leaves_the_pipeline_alone(project, pipeline, tenant_admin):
    PipelineFactory(project=project, name="Nightly", slug="nightly")
    with pytest.raises(ValidationError):
        services.pipeline_update(pipeline=pipeline, name="Nightly", actor=tenant_admin)
    assert pipeline.name == "Deploy prod"
    assert Pipeline.objects.get(pk=pipeline.pk).name == "Deploy prod"


def test_delete_takes_its_rules_and_events_and_says_so(pipeline, tenant_admin):
    NotificationRuleFactory(pipeline=pipeline)
    Event.objects.create(
        tenant=pipeline.tenant,
        project=pipeline.project,
        pipeline=pipeline,
        event_type="pipeline_failed",
        level="error",
        run_id="41",
        run_url="https://ci.example.com/41",
    )
    services.pipeline_delete(pipeline=pipeline, actor=tenant_admin)
    assert not Pipeline.objects.exists()
    assert not NotificationRule.objects.exists()
    assert _last("pipeline.deleted").changes["deleted_with_it"] == {
        "notification rules": 1,
        "events": 1,
    }


# Notification settings -----------------------------------------------------------------


def test_tenant_defaults_are_created_on_first_save_then_updated(tenant, tenant_admin):
    services.notification_defaults_update(
        tenant=tenant, enabled=True, levels=["error", "warning"], actor=tenant_admin
    )
    row = NotificationDefaults.objects.get(tenant=tenant)
    assert (row.enabled, row.levels) == (True, ["warning", "error"])
    assert _last("notification_defaults.updated").changes == {
        "notifications": [
            "on, levels success, warning and error",
            "on, levels warning and error",
        ]
    }
    services.notification_defaults_update(
        tenant=tenant, enabled=False, levels=["error"], actor=tenant_admin
    )
    row = NotificationDefaults.objects.get(tenant=tenant)
    assert (row.enabled, row.levels) == (False, [])
    assert AuditEntry.objects.filter(action="notification_defaults.updated").count() == 2


def test_on_needs_a_level_in_plain_words(tenant, tenant_admin):
    with pytest.raises(ValidationError) as exc:
        services.notification_defaults_update(
            tenant=tenant, enabled=True, levels=[], actor=tenant_admin
        )
    assert exc.value.message_dict == {
        "levels": ["Choose at least one level to be notified at, or turn notifications off."]
    }
    assert not NotificationDefaults.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_pipeline_overrides_then_inherits_again(tenant, pipeline, tenant_admin):
    NotificationDefaults.objects.create(tenant=tenant, enabled=True, levels=["error"])
    services.pipeline_notifications_update(
        pipeline=pipeline, notifications=Override.ON, levels=["warning"], actor=tenant_admin
    )
    pipeline.refresh_from_db()
    assert notification_settings_for(pipeline).description == "This pipeline: on, level warning"
    assert _last("pipeline.notifications_changed").changes == {
        "notifications": ["inherit", "on, level warning"],
        "project": "Website",
    }
    services.pipeline_notifications_update(
        pipeline=pipeline, notifications=Override.INHERIT, levels=["warning"], actor=tenant_admin
    )
    pipeline.refresh_from_db()
    assert (pipeline.notifications, pipeline.levels) == (Override.INHERIT, [])
    assert notification_settings_for(pipeline).description == "Tenant default: on, level error"


def test_an_override_on_needs_a_level(pipeline, tenant_admin):
    with pytest.raises(ValidationError) as exc:
        services.pipeline_notifications_update(
            pipeline=pipeline, notifications=Override.ON, levels=[], actor=tenant_admin
        )
    assert "Choose at least one level" in exc.value.message_dict["levels"][0]
    pipeline.refresh_from_db()
    assert pipeline.notifications == Override.INHERIT


# Notification rules --------------------------------------------------------------------


def test_create_a_rule_with_addresses_and_groups(
    tenant, project, pipeline, tenant_admin, request_from
):
    group = UserGroupFactory(tenant=tenant, organization=project.organization, name="Web team")
    rule = services.notification_rule_create(
        project=project,
        pipeline=pipeline,
        name=" Failures ",
        event_types=["stage_failed", "pipeline_failed"],
        addresses="Oncall@Example.com, oncall@example.com,, lead@example.com",
        groups=[group],
        actor=tenant_admin,
        request=request_from,
    )
    assert rule.name == "Failures"
    assert rule.event_types == ["pipeline_failed", "stage_failed"]
    assert rule.addresses == ["oncall@example.com", "lead@example.com"]
    assert list(rule.groups.all()) == [group]
    assert NotificationRuleGroup.objects.get().tenant == tenant
    entry = _last("notification_rule.created")
    assert (entry.actor, entry.tenant, entry.ip_address) == (tenant_admin, tenant, "198.51.100.7")
    assert entry.changes == {
        "name": [None, "Failures"],
        "events": [None, "Pipeline failed, Stage failed"],
        "addresses": [None, "oncall@example.com, lead@example.com"],
        "groups": [None, "Web team"],
        "mandatory": [None, False],
        "enabled": [None, True],
        "scope": "Pipeline Deploy prod in Website",
    }


def test_a_rule_without_recipients_is_refused_in_plain_words(project, tenant_admin):
    with pytest.raises(ValidationError) as exc:
        services.notification_rule_create(
            project=project, name="Nobody", event_types=["pipeline_failed"], actor=tenant_admin
        )
    assert exc.value.messages == [
        "This rule has no recipients: add at least one email address or user group, "
        "or nobody would be notified."
    ]
    assert not NotificationRule.objects.exists()
    assert not AuditEntry.objects.exists()


def test_bad_addresses_are_reported_each_with_the_group_wording(project, tenant_admin):
    with pytest.raises(ValidationError) as exc:
        services.notification_rule_create(
            project=project,
            name="Ops",
            event_types=["pipeline_failed"],
            addresses="ops@, ok@example.com, dev@example",
            actor=tenant_admin,
        )
    assert exc.value.message_dict["addresses"] == [
        "“ops@” is not a valid email address. "
        "Write it like name@example.com and separate addresses with commas.",
        "“dev@example” is not a valid email address. "
        "Write it like name@example.com and separate addresses with commas.",
    ]
    assert not NotificationRule.objects.exists()


def test_events_must_be_chosen_from_the_list(project, tenant_admin):
    for event_types in ([], ["pipeline_failed", "pipeline_exploded"]):
        with pytest.raises(ValidationError) as exc:
            services.notification_rule_create(
                project=project,
                name="Ops",
                event_types=event_types,
                addresses="ops@example.com",
                actor=tenant_admin,
            )
        assert exc.value.message_dict == {
            "event_types": ["Choose at least one event from the list."]
        }


def test_groups_must_be_usable_in_the_rules_project(tenant, other_tenant, project, tenant_admin):
    sibling_org_group = UserGroupFactory(
        tenant=tenant, organization=OrganizationFactory(tenant=tenant), name="Elsewhere"
    )
    their_group = UserGroupFactory(tenant=other_tenant, name="Theirs")
    with pytest.raises(ValidationError) as exc:
        services.notification_rule_create(
            project=project,
            name="Ops",
            event_types=["pipeline_failed"],
            groups=[sibling_org_group, their_group],
            actor=tenant_admin,
        )
    assert exc.value.message_dict["groups"] == [
        "These groups cannot be used in the project Website: Elsewhere, Theirs. "
        "Choose groups of the tenant, the organisation or the project."
    ]
    assert not NotificationRule.objects.exists()


def test_a_pipeline_of_another_project_is_refused(tenant, project, tenant_admin):
    elsewhere = PipelineFactory(project=ProjectFactory(organization=project.organization))
    with pytest.raises(ValidationError):
        services.notification_rule_create(
            project=project,
            pipeline=elsewhere,
            name="Ops",
            event_types=["pipeline_failed"],
            addresses="ops@example.com",
            actor=tenant_admin,
        )
    assert not NotificationRule.objects.exists()


def test_update_replaces_groups_and_audits_the_difference(tenant, pipeline, tenant_admin):
    old, new = (
        UserGroupFactory(tenant=tenant, name="Old"),
        UserGroupFactory(tenant=tenant, name="New"),
    )
    rule = NotificationRuleFactory(pipeline=pipeline, name="Ops", groups=[old])
    services.notification_rule_update(
        rule=rule,
        name="Ops",
        event_types=["pipeline_failed"],
        addresses=["oncall@example.com"],
        groups=[new],
        enabled=True,
        actor=tenant_admin,
    )
    assert list(NotificationRule.objects.get().groups.all()) == [new]
    assert _last("notification_rule.updated").changes == {
        "groups": ["Old", "New"],
        "scope": "Pipeline Deploy prod in Website",
    }


def test_a_refused_update_changes_nothing(tenant, pipeline, tenant_admin):
    group = UserGroupFactory(tenant=tenant)
    rule = NotificationRuleFactory(pipeline=pipeline, addresses=[], groups=[group])
    with pytest.raises(ValidationError):
        services.notification_rule_update(
            rule=rule, name="Ops", event_types=["pipeline_failed"], actor=tenant_admin
        )
    assert list(NotificationRule.objects.get().groups.all()) == [group]
    assert rule.name != "Ops"


def test_disable_and_enable_a_rule(pipeline, tenant_admin):
    rule = NotificationRuleFactory(pipeline=pipeline)
    services.notification_rule_set_enabled(rule=rule, enabled=False, actor=tenant_admin)
    assert not NotificationRule.objects.get().enabled
    services.notification_rule_set_enabled(rule=rule, enabled=False, actor=tenant_admin)
    services.notification_rule_set_enabled(rule=rule, enabled=True, actor=tenant_admin)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["notification_rule.disabled", "notification_rule.enabled"]


def test_delete_a_rule(project, tenant_admin):
    rule = NotificationRuleFactory(pipeline=None, project=project, name="Project-wide")
    services.notification_rule_delete(rule=rule, actor=tenant_admin)
    assert not NotificationRule.objects.exists()
    entry = _last("notification_rule.deleted")
    assert entry.changes["name"] == ["Project-wide", None]
    assert entry.changes["scope"] == "Project Website (all its pipelines)"


# Project API tokens ---------------------------------------------------------------------


def test_a_new_token_is_returned_once_and_only_its_hash_is_stored(
    tenant, project, tenant_admin, request_from
):
    token, raw = services.project_api_token_create(
        project=project, name=" Jenkins ", actor=tenant_admin, request=request_from
    )
    assert raw.startswith("pm_")
    assert len(raw) > 40
    stored = ProjectApiToken.objects.get()
    assert (stored.name, stored.prefix, stored.created_by) == ("Jenkins", raw[:10], tenant_admin)
    assert stored.hash == token_hash(raw)
    stored_values = [str(v) for v in ProjectApiToken.objects.values().get().values()]
    assert not any(raw in value for value in stored_values)
    entry = _last("api_token.created")
    assert entry.changes == {"name": "Jenkins", "prefix": raw[:10], "project": "Website"}
    assert raw not in str(entry.changes) + entry.target_repr
    assert api_token_authenticate(raw) == token


def test_two_tokens_differ(project, tenant_admin):
    _, first = services.project_api_token_create(project=project, name="A", actor=tenant_admin)
    _, second = services.project_api_token_create(project=project, name="B", actor=tenant_admin)
    assert first != second


def test_a_revoked_token_stops_working_at_once(tenant, project, tenant_admin):
    token, raw = services.project_api_token_create(project=project, name="CI", actor=tenant_admin)
    services.project_api_token_revoke(token=token, actor=tenant_admin)
    assert api_token_authenticate(raw) is None
    assert ProjectApiToken.objects.get().revoked_at is not None
    assert _last("api_token.revoked").tenant == tenant
    with pytest.raises(ValidationError, match="already revoked"):
        services.project_api_token_revoke(token=token, actor=tenant_admin)


def test_last_used_is_written_at_most_once_a_minute(project, django_assert_num_queries):
    token = ProjectApiTokenFactory(project=project)
    with django_assert_num_queries(1):
        services.project_api_token_mark_used(token=token)
    with django_assert_num_queries(0):
        services.project_api_token_mark_used(token=token)
    assert ProjectApiToken.objects.get().last_used_at <= timezone.now()
