"""The tenant portal, mounted at `t/<slug:tenant_slug>/` by config/urls.py.

Every view here is wrapped in `tenant_view`; tests/tenancy/test_isolation.py
walks these patterns and fails for one it has no recipe for.
"""

from django.urls import include, path

from apps.tenancy import views

app_name = "tenancy"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("organisations/", views.organization_list_view, name="organization_list"),
    path("organisations/new/", views.organization_create, name="organization_create"),
    path("organisations/<slug:org_slug>/", views.organization_detail, name="organization_detail"),
    path(
        "organisations/<slug:org_slug>/edit/",
        views.organization_update,
        name="organization_update",
    ),
    path(
        "organisations/<slug:org_slug>/delete/",
        views.organization_delete,
        name="organization_delete",
    ),
    path(
        "organisations/<slug:org_slug>/projects/new/",
        views.project_create,
        name="project_create",
    ),
    path("projects/", views.project_list_view, name="project_list"),
    path("projects/<slug:project_slug>/edit/", views.project_update, name="project_update"),
    path("projects/<slug:project_slug>/delete/", views.project_delete, name="project_delete"),
    path("members/", views.membership_list_view, name="membership_list"),
    path("members/invite/", views.membership_invite, name="membership_invite"),
    path("members/<int:pk>/edit/", views.membership_update, name="membership_update"),
    path("members/<int:pk>/remove/", views.membership_remove, name="membership_remove"),
    path("members/<int:pk>/resend/", views.membership_resend, name="membership_resend"),
    path("audit/", views.audit_log, name="audit_log"),
    path("groups/", include("apps.groups.urls")),
    path("email/", include("apps.connections.urls")),
    path("delivery/", include("apps.delivery.urls")),
    path("suppressions/", include("apps.preferences.suppression_urls")),
    path("pipelines/", include("apps.pipelines.urls")),
]
