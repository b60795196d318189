"""Pipelines, notification settings and rules, API tokens: included by apps/tenancy/urls.py.

Pipelines and rules go by id: a pipeline's slug is only unique in its
project, and may be anything (even "new").
"""

from django.urls import path

from apps.pipelines import views

app_name = "pipelines"

urlpatterns = [
    path("", views.pipeline_list_view, name="list"),
    path("notification-settings/", views.notification_defaults, name="defaults"),
    path("projects/<slug:project_slug>/", views.project_detail, name="project"),
    path("projects/<slug:project_slug>/new/", views.pipeline_create, name="create"),
    path(
        "projects/<slug:project_slug>/rules/new/",
        views.rule_create_for_project,
        name="rule_create_for_project",
    ),
    path("projects/<slug:project_slug>/tokens/", views.token_list, name="token_list"),
    path("projects/<slug:project_slug>/tokens/new/", views.token_create, name="token_create"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("<int:pk>/", views.pipeline_detail, name="detail"),
    path("<int:pk>/edit/", views.pipeline_update, name="update"),
    path("<int:pk>/delete/", views.pipeline_delete, name="delete"),
    path("<int:pk>/notifications/", views.pipeline_notifications, name="notifications"),
    path("<int:pk>/rules/new/", views.rule_create, name="rule_create"),
    path("rules/<int:pk>/edit/", views.rule_update, name="rule_update"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("rules/<int:pk>/enabled/", views.rule_set_enabled, name="rule_set_enabled"),
    path("rules/<int:pk>/test/", views.rule_test, name="rule_test"),
]
