"""The suppression list: included by apps/tenancy/urls.py at `t/<tenant_slug>/suppressions/`."""

from django.urls import path

from apps.preferences import suppression_views

app_name = "suppressions"

urlpatterns = [
    path("", suppression_views.suppression_list_view, name="list"),
    path("add/", suppression_views.suppression_add_view, name="add"),
    path("<int:pk>/remove/", suppression_views.suppression_remove_view, name="remove"),
]
