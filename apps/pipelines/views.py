"""Pipelines in the tenant portal: everyone in the tenant sees them and their rules;
tenant admins change them, the default notification settings and the API tokens.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.pipelines import services
from apps.pipelines.forms import (
    ApiTokenForm,
    NotificationDefaultsForm,
    NotificationRuleForm,
    PipelineForm,
    PipelineNotificationsForm,
)
from apps.pipelines.hooks import rule_test_run
from apps.pipelines.models import Pipeline
from apps.pipelines.selectors import (
    notification_defaults_effective,
    notification_defaults_get,
    notification_rule_get,
    notification_settings_for,
    pipeline_delete_summary,
    pipeline_get,
    pipeline_list,
    pipeline_projects,
    pipeline_recent_events,
    pipeline_rule_list,
    project_api_token_get,
    project_api_token_list,
    project_rule_list,
)
from apps.tenancy.decorators import tenant_view
from apps.tenancy.models import Project, Role
from apps.tenancy.portal import actor, delete_page, form_page, form_submit, paginate
from apps.tenancy.selectors import project_get


def _url(request, name: str, *args) -> str:
    return reverse(f"tenancy:pipelines:{name}", args=[request.tenant.slug, *args])


def _with_effective(request, pipelines) -> list[Pipeline]:
    """Each pipeline with `.effective` notifications; the tenant's defaults read once."""
    pipelines = list(pipelines)
    defaults = notification_defaults_get(tenant_id=request.tenant.pk)
    for pipeline in pipelines:
        pipeline.effective = notification_settings_for(pipeline, defaults=defaults)
    return pipelines


# Pipelines ---------------------------------------------------------------------------


@tenant_view()
@require_GET
def pipeline_list_view(request):
    """The tenant's projects, each with its first pipelines."""
    page = paginate(request, pipeline_projects(tenant=request.tenant))
    defaults = notification_defaults_get(tenant_id=request.tenant.pk)
    for project in page.object_list:
        for pipeline in project.shown_pipelines:
            pipeline.effective = notification_settings_for(pipeline, defaults=defaults)
    context = {"page": page, "defaults": notification_defaults_effective(defaults)}
    return render(request, "pipelines/pipeline_list.html", context)


@tenant_view()
@require_GET
def project_detail(request, project_slug: str):
    """A project's pipelines, the rules on the whole project, and (admins) its API tokens."""
    project = project_get(tenant=request.tenant, slug=project_slug)
    page = paginate(request, pipeline_list(tenant=request.tenant, project=project))
    page.object_list = _with_effective(request, page.object_list)
    context = {
        "project": project,
        "page": page,
        "rules": project_rule_list(tenant=request.tenant, project=project),
    }
    return render(request, "pipelines/project_detail.html", context)


@tenant_view()
@require_GET
def pipeline_detail(request, pk: int):
    pipeline = pipeline_get(tenant=request.tenant, pk=pk)
    context = {
        "pipeline": pipeline,
        "project": pipeline.project,
        "effective": notification_settings_for(pipeline),
        "rules": pipeline_rule_list(tenant=request.tenant, pipeline=pipeline),
        "events": pipeline_recent_events(tenant=request.tenant, pipeline=pipeline),
        "notifications_form": PipelineNotificationsForm(pipeline=pipeline)
        if request.membership.is_tenant_admin
        else None,
    }
    return render(request, "pipelines/pipeline_detail.html", context)


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def pipeline_create(request, project_slug: str):
    project = project_get(tenant=request.tenant, slug=project_slug)
    return form_page(
        request,
        PipelineForm(request.POST or None),
        save=lambda data: services.pipeline_create(project=project, **data, **actor(request)),
        done=lambda pipeline: (
            f"The pipeline “{pipeline}” was created.",
            _url(request, "detail", pipeline.pk),
        ),
        title=f"New pipeline in {project}",
        cancel_url=_url(request, "project", project.slug),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def pipeline_update(request, pk: int):
    pipeline = pipeline_get(tenant=request.tenant, pk=pk)
    initial = {"name": pipeline.name, "slug": pipeline.slug, "description": pipeline.description}
    return form_page(
        request,
        PipelineForm(request.POST or None, initial=initial),
        save=lambda data: services.pipeline_update(pipeline=pipeline, **data, **actor(request)),
        done=lambda updated: (
            f"The pipeline “{updated}” was saved.",
            _url(request, "detail", pk),
        ),
        title=f"Edit pipeline {pipeline}",
        cancel_url=_url(request, "detail", pk),
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def pipeline_delete(request, pk: int):
    pipeline = pipeline_get(tenant=request.tenant, pk=pk)
    return delete_page(
        request,
        obj=pipeline,
        kind="pipeline",
        goes_with_it=pipeline_delete_summary(pipeline=pipeline),
        delete=lambda: services.pipeline_delete(pipeline=pipeline, **actor(request)),
        cancel_url=_url(request, "detail", pk),
        success_url=_url(request, "project", pipeline.project.slug),
    )


# Notification settings ----------------------------------------------------------------


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def notification_defaults(request):
    defaults = notification_defaults_get(tenant_id=request.tenant.pk)
    return form_page(
        request,
        NotificationDefaultsForm(request.POST or None, defaults=defaults),
        save=lambda data: services.notification_defaults_update(
            tenant=request.tenant, **data, **actor(request)
        ),
        done=lambda saved: (
            "The default notification settings were saved: "
            f"{notification_defaults_effective(saved).description}.",
            _url(request, "defaults"),
        ),
        template="pipelines/notification_defaults.html",
        effective=notification_defaults_effective(defaults),
        title="Default notification settings",
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def pipeline_notifications(request, pk: int):
    """The pipeline's override; its page shows the same form, posting here."""
    pipeline = pipeline_get(tenant=request.tenant, pk=pk)
    return form_page(
        request,
        PipelineNotificationsForm(request.POST or None, pipeline=pipeline),
        save=lambda data: services.pipeline_notifications_update(
            pipeline=pipeline, **data, **actor(request)
        ),
        done=lambda updated: (
            f"Notifications of “{updated}”: {notification_settings_for(updated).description}.",
            _url(request, "detail", pk),
        ),
        template="pipelines/pipeline_notifications.html",
        pipeline=pipeline,
        effective=notification_settings_for(pipeline),
        title=f"Notification settings of {pipeline}",
        cancel_url=_url(request, "detail", pk),
    )


# Notification rules -----------------------------------------------------------------


def _rule_back(request, rule) -> str:
    """Where a rule is listed: its pipeline's page, or its project's."""
    if rule.pipeline_id is not None:
        return _url(request, "detail", rule.pipeline_id)
    return _url(request, "project", rule.project.slug)


def _applies_to(project: Project, pipeline: Pipeline | None) -> str:
    return f"Pipeline {pipeline}" if pipeline else f"Every pipeline of {project}"


def _rule_form_page(request, *, project: Project, pipeline: Pipeline | None, back: str):
    return form_page(
        request,
        NotificationRuleForm(request.POST or None, tenant=request.tenant, project=project),
        save=lambda data: services.notification_rule_create(
            project=project, pipeline=pipeline, **data, **actor(request)
        ),
        done=lambda rule: (
            f"The notification rule “{rule}” was created and is now listed in Notifications.",
            back,
        ),
        template="pipelines/rule_form.html",
        title="New Notification",
        applies_to=_applies_to(project, pipeline),
        cancel_url=back,
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def rule_create(request, pk: int):
    pipeline = pipeline_get(tenant=request.tenant, pk=pk)
    back = _url(request, "detail", pk)
    return _rule_form_page(request, project=pipeline.project, pipeline=pipeline, back=back)


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def rule_create_for_project(request, project_slug: str):
    project = project_get(tenant=request.tenant, slug=project_slug)
    back = _url(request, "project", project.slug)
    return _rule_form_page(request, project=project, pipeline=None, back=back)


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def rule_update(request, pk: int):
    rule = notification_rule_get(tenant=request.tenant, pk=pk)
    back = _rule_back(request, rule)
    form = NotificationRuleForm(
        request.POST or None, tenant=request.tenant, project=rule.project, rule=rule
    )
    return form_page(
        request,
        form,
        save=lambda data: services.notification_rule_update(rule=rule, **data, **actor(request)),
        done=lambda updated: (f"The notification rule “{updated}” was saved.", back),
        template="pipelines/rule_form.html",
        title=f"Edit notification rule {rule}",
        applies_to=_applies_to(rule.project, rule.pipeline),
        rule=rule,
        cancel_url=back,
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def rule_delete(request, pk: int):
    rule = notification_rule_get(tenant=request.tenant, pk=pk)
    back = _rule_back(request, rule)
    return delete_page(
        request,
        obj=rule,
        kind="notification rule",
        goes_with_it={},
        delete=lambda: services.notification_rule_delete(rule=rule, **actor(request)),
        cancel_url=back,
        success_url=back,
    )


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def rule_set_enabled(request, pk: int):
    rule = notification_rule_get(tenant=request.tenant, pk=pk)
    enabled = request.POST.get("enabled") == "on"
    services.notification_rule_set_enabled(rule=rule, enabled=enabled, **actor(request))
    state = "enabled" if enabled else "disabled: it notifies nobody until enabled again"
    messages.success(request, f"The notification rule “{rule}” is {state}.")
    return redirect(_rule_back(request, rule))


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def rule_test(request, pk: int):
    """Send a sample event through the rule to its real recipients, and show what happened."""
    rule = notification_rule_get(tenant=request.tenant, pk=pk)
    context = {
        "rule": rule,
        "result": rule_test_run(rule=rule, **actor(request)),
        "back": _rule_back(request, rule),
    }
    return render(request, "pipelines/rule_test.html", context)


# Project API tokens ------------------------------------------------------------------


def _token_page(request, project: Project, form: ApiTokenForm, **context):
    page = paginate(request, project_api_token_list(tenant=request.tenant, project=project))
    context = {"project": project, "page": page, "form": form, **context}
    return render(request, "pipelines/token_list.html", context)


@tenant_view(role=Role.TENANT_ADMIN)
@require_GET
def token_list(request, project_slug: str):
    project = project_get(tenant=request.tenant, slug=project_slug)
    return _token_page(request, project, ApiTokenForm())


@tenant_view(role=Role.TENANT_ADMIN)
@require_POST
def token_create(request, project_slug: str):
    """The new token is in this response only: it is never stored, so never shown again."""
    project = project_get(tenant=request.tenant, slug=project_slug)
    form = ApiTokenForm(request.POST)
    created = form_submit(
        form,
        lambda data: services.project_api_token_create(project=project, **data, **actor(request)),
    )
    if created is None:
        return _token_page(request, project, form)
    token, raw = created
    return _token_page(request, project, ApiTokenForm(), new_token=token, raw_token=raw)


@tenant_view(role=Role.TENANT_ADMIN)
@require_http_methods(["GET", "POST"])
def token_revoke(request, pk: int):
    token = project_api_token_get(tenant=request.tenant, pk=pk)
    back = _url(request, "token_list", token.project.slug)
    return delete_page(
        request,
        obj=token,
        kind="API token",
        goes_with_it={},
        delete=lambda: services.project_api_token_revoke(token=token, **actor(request)),
        cancel_url=back,
        success_url=back,
        verb=("Revoke", "revoked"),
    )
