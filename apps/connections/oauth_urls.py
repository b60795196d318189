"""A tenant's OAuth2 sign-in pages: mounted by config/urls.py at `t/<tenant_slug>/email/oauth/`.

The namespace keeps "mailsettings" in it, so the portal's Email settings tab stays active.
"""

from django.urls import path

from apps.connections import oauth_views as views

app_name = "mailsettings_oauth"

urlpatterns = [
    path("", views.tenant_setup, name="setup"),
    path("test/", views.tenant_test, name="test"),
    path("disconnect/", views.tenant_disconnect, name="disconnect"),
]
