"""Delivery webhooks in the tenant portal, mounted at `t/<slug:tenant_slug>/webhooks/`."""

from django.urls import path

from apps.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("new/", views.endpoint_create, name="create"),
    path("<int:pk>/revoke/", views.endpoint_revoke, name="revoke"),
]
