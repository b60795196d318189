"""Mandatory rules in the tenant portal: the checkbox, the badge, the audit."""

import re

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from apps.audit.models import AuditEntry
from apps.pipelines.models import NotificationRule
from tests.factories import NotificationRuleFactory, PipelineFactory

pytestmark = pytest.mark.django_db

RULE = {"name": "Prod failures", "event_types": ["pipeline_failed"], "addresses": "a@x.example"}


def url(name, *args):
    return reverse(f"tenancy:pipelines:{name}", args=["acme", *args])


def text(response) -> str:
    assert response.status_code == 200
    return " ".join(strip_tags(response.content.decode()).split())


@pytest.fixture
def pipeline(project):
    return PipelineFactory(project=project, name="Deploy prod", slug="deploy-prod")


@pytest.fixture
def admin(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def test_the_rule_form_offers_mandatory_in_plain_words(admin, pipeline):
    page = text(admin.get(url("rule_create", pipeline.pk)))

    assert "Mandatory Recipients cannot turn this off, e.g. production failures." in page


def test_a_mandatory_rule_is_saved_audited_and_badged_on_the_pipeline_and_project(
    admin, tenant, project, pipeline, tenant_admin
):
    admin.post(url("rule_create", pipeline.pk), {**RULE, "mandatory": "on", "enabled": "on"})
    admin.post(url("rule_create_for_project", project.slug), {**RULE, "name": "Everything"})

    mandatory = NotificationRule.objects.get(name="Prod failures")
    assert mandatory.mandatory is True
    assert NotificationRule.objects.get(name="Everything").mandatory is False
    entry = AuditEntry.objects.get(action="notification_rule.created", target_id=mandatory.pk)
    assert (entry.actor, entry.tenant) == (tenant_admin, tenant)
    assert entry.changes["mandatory"] == [None, True]
    pipeline_page = text(admin.get(url("detail", pipeline.pk)))
    assert "Prod failures Mandatory" in pipeline_page
    assert "Everything Mandatory" not in pipeline_page
    project_page = admin.get(url("project", project.slug)).content.decode()
    assert project_page.count(">Mandatory</span>") == 0  # Only project rules listed there.


def test_unticking_mandatory_is_audited_and_the_badge_goes(admin, tenant, pipeline):
    rule = NotificationRuleFactory(pipeline=pipeline, name="Prod failures", mandatory=True)
    form = admin.get(url("rule_update", rule.pk)).content.decode()
    assert re.search(r'<input type="checkbox" name="mandatory"[^>]* checked>', form)

    admin.post(url("rule_update", rule.pk), {**RULE, "addresses": "oncall@example.com"})

    rule.refresh_from_db()
    assert rule.mandatory is False
    entry = AuditEntry.objects.get(action="notification_rule.updated")
    assert entry.changes["mandatory"] == [True, False]
    assert "Prod failures Mandatory" not in text(admin.get(url("detail", pipeline.pk)))


def test_members_see_the_badge_too(client, tenant_member, project, pipeline):
    NotificationRuleFactory(pipeline=None, project=project, name="Payments", mandatory=True)
    client.force_login(tenant_member)

    assert "Payments Mandatory" in text(client.get(url("project", project.slug)))
