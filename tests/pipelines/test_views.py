import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.delivery.models import Event
from apps.pipelines.models import (
    NotificationDefaults,
    NotificationRule,
    Override,
    Pipeline,
    ProjectApiToken,
)
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.factories import (
    NotificationRuleFactory,
    OrganizationFactory,
    ProjectApiTokenFactory,
    UserGroupFactory,
)
from tests.smtp_servers import smtp_server


def url(name, *args, tenant="acme"):
    return reverse(f"tenancy:pipelines:{name}", args=[tenant, *args])


@pytest.fixture
def member(client, tenant_member):
    client.force_login(tenant_member)
    return client


def _page(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# Pipelines ---------------------------------------------------------------------------


def test_the_portal_has_a_pipelines_tab(member, tenant):
    page = _page(member.get(reverse("tenancy:project_list", args=["acme"])))
    assert f'href="{url("list")}"' in page


def test_create_a_pipeline_from_its_project(admin, project):
    response = admin.post(
        url("create", project.slug), {"name": "Deploy prod", "slug": "", "description": ""}
    )
    pipeline = Pipeline.objects.get()
    assert response["Location"] == url("detail", pipeline.pk)
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert "The pipeline “Deploy prod” was created." in page
    assert "deploy-prod" in page
    assert "Postmaster default: on, levels success, warning and error" in page


def test_a_taken_slug_is_explained_on_the_form(admin, project, pipeline):
    response = admin.post(url("create", project.slug), {"name": "Other", "slug": pipeline.slug})
    assert "already uses the slug “deploy-prod”" in _page(response)
    assert Pipeline.objects.count() == 1


def test_the_list_shows_every_project_and_its_pipelines(admin, tenant, project, pipeline):
    empty = OrganizationFactory(tenant=tenant).projects.create(
        tenant=tenant, name="Empty project", slug="empty"
    )
    page = _page(admin.get(url("list")))
    assert "Deploy prod" in page
    assert "Empty project" in page
    assert url("create", empty.slug) in page
    assert url("project", project.slug) in page


def test_a_member_sees_pipelines_and_rules_but_no_buttons(member, tenant, project, pipeline):
    rule = NotificationRuleFactory(pipeline=pipeline, name="Failures")
    for name, args in [("list", []), ("project", [project.slug]), ("detail", [pipeline.pk])]:
        page = _page(member.get(url(name, *args)))
        assert "Deploy prod" in page
        for admin_url in (
            url("update", pipeline.pk),
            url("rule_update", rule.pk),
            url("token_list", project.slug),
            url("create", project.slug),
            url("defaults"),
        ):
            assert admin_url not in page
    page = _page(member.get(url("detail", pipeline.pk)))
    assert "Failures" in page
    assert "Save notification settings" not in page
    assert "Postmaster default: on" in page


def test_delete_a_pipeline_says_what_goes_with_it(admin, project, pipeline):
    NotificationRuleFactory(pipeline=pipeline)
    page = _page(admin.get(url("delete", pipeline.pk)))
    assert "Notification rules: <strong>1</strong>" in page
    response = admin.post(url("delete", pipeline.pk))
    assert response["Location"] == url("project", project.slug)
    assert not Pipeline.objects.exists()


# Notification settings -----------------------------------------------------------------


def test_tenant_defaults_page_saves_the_one_row(admin, tenant, pipeline):
    page = _page(admin.get(url("defaults")))
    assert "If you choose to enable notifications, you also need to select the levels" in page
    response = admin.post(url("defaults"), {"enabled": "on", "levels": ["warning", "error"]})
    assert response["Location"] == url("defaults")
    admin.post(url("defaults"), {"enabled": "on", "levels": ["error"]})
    assert NotificationDefaults.objects.get(tenant=tenant).levels == ["error"]
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert "Tenant default: on, level error" in page
    assert "inherits the tenant's default notification settings" in page


def test_defaults_on_without_a_level_is_refused(admin, tenant):
    page = _page(admin.post(url("defaults"), {"enabled": "on"}))
    assert "Choose at least one level to be notified at, or turn notifications off." in page
    assert not NotificationDefaults.objects.exists()
    assert not AuditEntry.objects.exists()


def test_override_on_the_pipeline_page(admin, tenant, pipeline):
    NotificationDefaults.objects.create(tenant=tenant, enabled=True, levels=["error"])
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert f'action="{url("notifications", pipeline.pk)}"' in page
    response = admin.post(url("notifications", pipeline.pk), {"notifications": "off"})
    assert response["Location"] == url("detail", pipeline.pk)
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert "This pipeline: off" in page
    assert "overrides the tenant" in page


def test_override_on_without_a_level_shows_the_error(admin, pipeline):
    page = _page(admin.post(url("notifications", pipeline.pk), {"notifications": "on"}))
    assert "Choose at least one level to be notified at" in page
    pipeline.refresh_from_db()
    assert pipeline.notifications == Override.INHERIT


# Notification rules ---------------------------------------------------------------------


def test_the_new_notification_form_groups_events_and_offers_usable_groups_only(
    admin, tenant, other_tenant, pipeline
):
    usable = UserGroupFactory(tenant=tenant, name="Everyone")
    UserGroupFactory(tenant=tenant, organization=OrganizationFactory(tenant=tenant), name="Aside")
    UserGroupFactory(tenant=other_tenant, name="Theirs")
    response = admin.get(url("rule_create", pipeline.pk))
    page = _page(response)
    for heading in (
        "<strong>Pipeline</strong>",
        "<strong>Stage</strong>",
        "<strong>Approval</strong>",
    ):
        assert heading in page
    assert "Approval requested" in page
    assert list(response.context["form"].fields["groups"].queryset) == [usable]
    assert "Aside" not in page
    assert "Theirs" not in page


def test_create_a_rule_on_a_pipeline(admin, tenant, pipeline):
    group = UserGroupFactory(tenant=tenant, name="Ops")
    response = admin.post(
        url("rule_create", pipeline.pk),
        {
            "name": "Failures",
            "event_types": ["pipeline_failed", "stage_failed"],
            "addresses": "a@example.com, A@example.com",
            "groups": [group.pk],
            "enabled": "on",
        },
    )
    assert response["Location"] == url("detail", pipeline.pk)
    rule = NotificationRule.objects.get()
    assert (rule.pipeline, rule.addresses) == (pipeline, ["a@example.com"])
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert "is now listed in Notifications" in page
    assert "Pipeline failed, Stage failed" in page
    assert "Ops" in page


def test_a_project_rule_shows_on_the_project_and_on_each_pipeline(admin, project, pipeline):
    response = admin.post(
        url("rule_create_for_project", project.slug),
        {"name": "All failures", "event_types": ["pipeline_failed"], "addresses": "x@example.com"},
    )
    assert response["Location"] == url("project", project.slug)
    rule = NotificationRule.objects.get()
    assert (rule.pipeline, rule.enabled) == (None, False)
    assert "All failures" in _page(admin.get(url("project", project.slug)))
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert "All failures" in page
    assert "Project rule" in page


def test_a_rule_without_recipients_or_with_bad_addresses_is_not_saved(admin, pipeline):
    data = {"name": "Nobody", "event_types": ["pipeline_failed"], "addresses": ""}
    page = _page(admin.post(url("rule_create", pipeline.pk), data))
    assert "This rule has no recipients: add at least one email address or user group" in page
    data["addresses"] = "ops@, fine@example.com"
    page = _page(admin.post(url("rule_create", pipeline.pk), data))
    assert "“ops@” is not a valid email address." in page
    data["event_types"] = []
    page = _page(admin.post(url("rule_create", pipeline.pk), data))
    assert "Choose at least one event to send notifications for." in page
    assert not NotificationRule.objects.exists()
    assert not AuditEntry.objects.exists()


def test_edit_a_rule_keeps_its_values_in_the_form(admin, tenant, pipeline):
    group = UserGroupFactory(tenant=tenant, name="Ops")
    rule = NotificationRuleFactory(pipeline=pipeline, name="Failures", groups=[group])
    form = admin.get(url("rule_update", rule.pk)).context["form"]
    assert form.initial["groups"] == [group.pk]
    assert "oncall@example.com" in form["addresses"].value()
    response = admin.post(
        url("rule_update", rule.pk),
        {"name": "Failures", "event_types": ["approval_requested"], "addresses": "", "groups": []},
    )
    assert "This rule has no recipients" in _page(response)
    assert NotificationRule.objects.get().event_types == ["pipeline_failed"]
    response = admin.post(
        url("rule_update", rule.pk),
        {"name": "Approvals", "event_types": ["approval_requested"], "groups": [group.pk]},
    )
    assert response["Location"] == url("detail", pipeline.pk)
    rule.refresh_from_db()
    assert (rule.name, rule.event_types, rule.addresses) == (
        "Approvals",
        ["approval_requested"],
        [],
    )


def test_disable_enable_and_delete_a_rule(admin, pipeline):
    rule = NotificationRuleFactory(pipeline=pipeline, name="Failures")
    response = admin.post(url("rule_set_enabled", rule.pk))
    assert response["Location"] == url("detail", pipeline.pk)
    assert not NotificationRule.objects.get().enabled
    assert "Failures” is disabled" in _page(admin.get(url("detail", pipeline.pk)))
    admin.post(url("rule_set_enabled", rule.pk), {"enabled": "on"})
    assert NotificationRule.objects.get().enabled
    assert admin.get(url("rule_set_enabled", rule.pk)).status_code == 405
    admin.post(url("rule_delete", rule.pk))
    assert not NotificationRule.objects.exists()


def test_the_test_button_sends_to_the_rules_real_recipients(admin, tenant, pipeline):
    group = UserGroupFactory(tenant=tenant, alias_addresses=["team@example.com"])
    rule = NotificationRuleFactory(
        pipeline=pipeline, name="Failures", addresses=["oncall@example.com"], groups=[group]
    )
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert f'action="{url("rule_test", rule.pk)}"' in page
    with smtp_server() as server:
        SmtpSettingsFactory(tenant=tenant, **server.connection)
        response = admin.post(url("rule_test", rule.pk))
    page = _page(response)
    assert "Test of the notification rule “Failures”" in page
    assert "alert-success" in page
    assert sorted(r for m in server.messages for r in m.rcpt_tos) == [
        "oncall@example.com",
        "team@example.com",
    ]
    assert "oncall@example.com" in page
    assert AuditEntry.objects.filter(action="notification_rule.test_sent").count() == 1
    assert admin.get(url("rule_test", rule.pk)).status_code == 405


def test_the_test_page_says_what_the_cap_left_out_and_when_the_limit_is_reached(
    admin, tenant, pipeline, settings
):
    settings.RULE_TEST_MAX_RECIPIENTS = 2
    settings.TEST_EMAIL_LIMIT_PER_USER_HOUR = 1
    rule = NotificationRuleFactory(
        pipeline=pipeline, name="Failures", addresses=[f"p{n}@example.com" for n in range(5)]
    )
    with smtp_server() as server:
        SmtpSettingsFactory(tenant=tenant, **server.connection)
        capped = _page(admin.post(url("rule_test", rule.pk)))
        limited = _page(admin.post(url("rule_test", rule.pk)))
    assert len([r for m in server.messages for r in m.rcpt_tos]) == 2
    assert "A test mails at most 2 recipients: the other 3 of this rule" in capped
    assert "Nothing was sent. You have sent 1 test email in the last hour." in limited
    assert "alert-danger" in limited


# Recent events ----------------------------------------------------------------------------


def _events(pipeline, n):
    Event.objects.bulk_create(
        Event(
            tenant=pipeline.tenant,
            project=pipeline.project,
            pipeline=pipeline,
            event_type="pipeline_failed",
            level="error",
            run_id=f"run-{i}",
            run_url="javascript:alert(1)" if i == 0 else f"https://ci.example.com/{i}",
            recipient_count=i,
        )
        for i in range(n)
    )


def test_the_pipeline_page_shows_the_newest_twenty_events(admin, pipeline):
    _events(pipeline, 25)
    response = admin.get(url("detail", pipeline.pk))
    page = _page(response)
    assert len(response.context["events"]) == 20
    assert '<a href="https://ci.example.com/24"' in page
    assert "24 recipients" in page
    assert "Pipeline failed" in page


def test_a_run_link_that_is_not_a_web_address_is_not_linked(admin, pipeline):
    _events(pipeline, 1)
    page = _page(admin.get(url("detail", pipeline.pk)))
    assert "run-0" in page
    assert "javascript:" not in page


# API tokens ----------------------------------------------------------------------------


def test_a_new_token_is_shown_once_with_a_copy_button(admin, project, tenant_admin):
    response = admin.post(url("token_create", project.slug), {"name": "Jenkins"})
    page = _page(response)
    raw = response.context["raw_token"]
    assert raw in page
    assert "Copy it now: it will not be shown again" in page
    assert 'data-copy-from="new-token-value"' in page
    assert "pipelines/copy.js" in page
    assert "<script>" not in page
    token = ProjectApiToken.objects.get()
    assert token.created_by == tenant_admin
    listed = _page(admin.get(url("token_list", project.slug)))
    assert raw not in listed
    assert token.prefix in listed
    assert "Jenkins" in listed
    assert "admin@acme.example" in listed


def test_a_token_needs_a_name(admin, project):
    page = _page(admin.post(url("token_create", project.slug), {"name": ""}))
    assert "This field is required." in page
    assert not ProjectApiToken.objects.exists()


def test_revoke_a_token_after_confirming(admin, project):
    token = ProjectApiTokenFactory(project=project, name="CI")
    assert "Revoke the API token" in _page(admin.get(url("token_revoke", token.pk)))
    response = admin.post(url("token_revoke", token.pk))
    assert response["Location"] == url("token_list", project.slug)
    page = _page(admin.get(url("token_list", project.slug)))
    assert "was revoked" in page
    assert "Revoked" in page
    assert url("token_revoke", token.pk) not in page
    assert AuditEntry.objects.filter(action="api_token.revoked").count() == 1
