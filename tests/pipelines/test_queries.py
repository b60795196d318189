"""Every pipelines list page runs the same bounded number of queries at 5 rows and at 500."""

import pytest
from django.urls import reverse

from apps.delivery.models import Event
from apps.groups.models import UserGroup
from apps.pipelines.models import NotificationRule, NotificationRuleGroup, Pipeline, ProjectApiToken
from apps.tenancy.models import Project

# Session, user, membership+tenant, then the page's own reads.
MAX_QUERIES = 10


def _pipelines(project, n, prefix="p"):
    return Pipeline.objects.bulk_create(
        Pipeline(tenant=project.tenant, project=project, name=f"{prefix} {i}", slug=f"{prefix}-{i}")
        for i in range(n)
    )


def _rules(project, n, pipeline=None):
    groups = UserGroup.objects.bulk_create(
        UserGroup(tenant=project.tenant, name=f"G {i}") for i in range(3)
    )
    rules = NotificationRule.objects.bulk_create(
        NotificationRule(
            tenant=project.tenant,
            project=project,
            pipeline=pipeline if i % 2 else None,
            name=f"R {i}",
            event_types=["pipeline_failed"],
            addresses=["a@example.com"],
        )
        for i in range(n)
    )
    NotificationRuleGroup.objects.bulk_create(
        NotificationRuleGroup(tenant=project.tenant, rule=r, group=g) for r in rules for g in groups
    )


def _list(project, n):
    """n projects with a pipeline each, and n pipelines in one project."""
    Project.objects.bulk_create(
        Project(
            tenant=project.tenant, organization=project.organization, name=f"P {i}", slug=f"p{i}"
        )
        for i in range(n)
    )
    for other in Project.objects.exclude(pk=project.pk)[:5]:
        _pipelines(other, 1)
    _pipelines(project, n)
    return []


def _project(project, n):
    _rules(project, n, pipeline=_pipelines(project, n)[0])
    return [project.slug]


def _detail(project, n):
    pipeline = _pipelines(project, 1)[0]
    _rules(project, n, pipeline=pipeline)
    Event.objects.bulk_create(
        Event(
            tenant=project.tenant,
            project=project,
            pipeline=pipeline,
            event_type="pipeline_failed",
            level="error",
            run_id=str(i),
            run_url="https://ci.example.com/",
        )
        for i in range(n)
    )
    return [pipeline.pk]


def _rule_form(project, n):
    UserGroup.objects.bulk_create(UserGroup(tenant=project.tenant, name=f"G {i}") for i in range(n))
    return [_pipelines(project, 1)[0].pk]


def _tokens(project, n):
    ProjectApiToken.objects.bulk_create(
        ProjectApiToken(
            tenant=project.tenant, project=project, name=f"T {i}", prefix="pm_x", hash=f"{i:064}"
        )
        for i in range(n)
    )
    return [project.slug]


PAGES = {
    "list": _list,
    "project": _project,
    "detail": _detail,
    "rule_create": _rule_form,
    "token_list": _tokens,
}


@pytest.mark.parametrize("rows", [5, 500])
@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_run_a_bounded_number_of_queries(
    client, tenant, tenant_admin, project, name, rows, django_assert_max_num_queries
):
    args = PAGES[name](project, rows)
    client.force_login(tenant_admin)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(reverse(f"tenancy:pipelines:{name}", args=[tenant.slug, *args]))
    assert response.status_code == 200
    if "page" in response.context:
        assert len(response.context["page"].object_list) >= min(rows, 50)
