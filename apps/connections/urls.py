"""A tenant's Email settings: included by apps/tenancy/urls.py at `t/<tenant_slug>/email/`."""

from django.urls import path

from apps.connections import views

app_name = "mailsettings"

urlpatterns = [
    path("", views.tenant_settings, name="edit"),
    path("use-host-settings/", views.tenant_use_host_settings, name="use_host"),
]
