"""A tenant's Provider pages: mounted by config/urls.py at `t/<tenant_slug>/email/provider/`.

The namespace keeps "mailsettings" in it, so the portal's Email settings tab stays active.
"""

from django.urls import path

from apps.connections import provider_views as views

app_name = "mailsettings_providers"

urlpatterns = [
    path("", views.tenant_provider, name="edit"),
    path("remove/", views.tenant_remove, name="remove"),
    path("failover/", views.tenant_secondary, name="secondary"),
    path("failover/remove/", views.tenant_secondary_remove, name="secondary_remove"),
    path("failover/smtp/", views.tenant_secondary_smtp, name="secondary_smtp"),
    path(
        "failover/smtp/remove/",
        views.tenant_secondary_smtp_remove,
        name="secondary_smtp_remove",
    ),
]
