"""My notifications: every signed-in user's own choices, and what reaches them.

No URL names a user: each page reads and writes the signed-in user's own
choices. Tenant pages go through `tenant_view`, so a tenant the user is not
in (or a project of another tenant) is a 404 like a missing one.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.preferences import selectors, services
from apps.preferences.forms import (
    NotificationSwitchForm,
    ProjectPreferenceForm,
    ScopePreferenceForm,
)
from apps.tenancy.decorators import tenant_view
from apps.tenancy.portal import form_page

APPLIES = "They apply from the next event."


def _overview(anchor: str = "") -> str:
    url = reverse("preferences:my_notifications")
    return f"{url}#{anchor}" if anchor else url


@login_required
@require_http_methods(["GET", "POST"])
def my_notifications(request):
    """Every tenant and project the user is in, what reaches them; POST: the master switch."""
    if request.method == "POST":
        form = NotificationSwitchForm(request.POST)
        form.is_valid()  # One optional checkbox: always valid.
        enabled = form.cleaned_data["enabled"]
        services.notification_switch_set(user=request.user, enabled=enabled, request=request)
        if enabled:
            messages.success(request, f"Your notifications are on again. {APPLIES}")
        else:
            messages.success(
                request,
                f"Your notifications are off: only mandatory rules still reach you. {APPLIES}",
            )
        return redirect(_overview())
    tenants = selectors.my_notifications(user=request.user)
    return render(request, "preferences/my_notifications.html", {"tenants": tenants})


@tenant_view()
@require_http_methods(["GET", "POST"])
def my_tenant(request):
    """The user's level and events for the whole tenant."""
    tenant = request.tenant
    form = ScopePreferenceForm(
        request.POST or None,
        row=selectors.my_preference_get(user=request.user, tenant=tenant),
        inherit_label="Not set: all events",
    )

    def save(data):
        services.notification_preference_set(
            user=request.user,
            tenant=tenant,
            level=data["level"],
            muted_event_types=form.muted_event_types,
            request=request,
        )
        return tenant  # The service gives None for "inherit"; form_page wants a result.

    return form_page(
        request,
        form,
        save=save,
        done=lambda _: (
            f"Your notification settings for {tenant} were saved. {APPLIES}",
            _overview(f"tenant-{tenant.slug}"),
        ),
        template="preferences/my_tenant.html",
        tenant=tenant,
    )


@tenant_view()
@require_http_methods(["GET", "POST"])
def my_project(request, project_slug: str):
    """The user's level and events for a project, a level per pipeline, and what reaches them."""
    tenant = request.tenant
    project = selectors.my_project_get(tenant=tenant, slug=project_slug)
    mine = selectors.my_project_notifications(user=request.user, tenant=tenant, project=project)
    (shown,) = mine.projects
    form = ProjectPreferenceForm(
        request.POST or None,
        tenant_row=mine.preference,
        row=shown.preference,
        pipelines=shown.pipelines,
        pipeline_rows=shown.pipeline_preferences,
    )

    def save(data):
        services.project_notification_preferences_set(
            user=request.user,
            tenant=tenant,
            project=project,
            level=data["level"],
            muted_event_types=form.muted_event_types,
            pipeline_levels=form.pipeline_levels,
            request=request,
        )
        return project

    return form_page(
        request,
        form,
        save=save,
        done=lambda _: (
            f"Your notification settings for {project} were saved. {APPLIES}",
            _overview(f"project-{project.pk}"),
        ),
        template="preferences/my_project.html",
        tenant=tenant,
        mine=mine,
        shown=shown,
    )
