from django.contrib import admin
from django.urls import include, path

from apps.core import views as core_views
from apps.operations import metrics as operations_metrics
from apps.operations import views as operations_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("accounts/", include("apps.accounts.urls")),
    path("mail/", include("apps.mailcatcher.urls")),
    # OAuth2 sign-in for a tenant's own SMTP server, beside its Email settings.
    path("t/<slug:tenant_slug>/email/oauth/", include("apps.connections.oauth_urls")),
    # Email-service providers (primary and failover) for a tenant, beside its Email settings.
    path("t/<slug:tenant_slug>/email/provider/", include("apps.connections.provider_urls")),
    path("t/<slug:tenant_slug>/webhooks/", include("apps.webhooks.portal_urls")),
    path("t/<slug:tenant_slug>/", include("apps.tenancy.urls")),
    # Google's redirect URI (one for every tenant and the host).
    path("oauth/", include("apps.connections.oauth_callback_urls")),
    path("invitations/", include("apps.tenancy.invitation_urls")),
    path("me/", include("apps.preferences.urls")),
    path("me/account/", include("apps.accounts.account_urls")),
    path("unsubscribe/", include("apps.preferences.unsubscribe_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.api.urls")),
    # Email-service providers' delivery reports: no sign-in (basic auth and signatures).
    path("webhooks/", include("apps.webhooks.urls")),
    # For load balancers and monitoring: no sign-in, JSON.
    path("health/", operations_views.health, name="health"),
    # For Prometheus: a token or an allowed address, else 404 (apps/operations/metrics.py).
    path("metrics/", operations_metrics.metrics, name="metrics"),
]
