"""Google's redirect URI, one for all tenants and the host: mounted at `oauth/`."""

from django.urls import path

from apps.connections import oauth_views as views

app_name = "oauth"

urlpatterns = [
    path("google/callback/", views.google_callback, name="google_callback"),
]
