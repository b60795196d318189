"""The host's OAuth2 sign-in, in the host administration (system administrators only).

One page for the host's SMTP settings, in place of the usual list and
forms: the same setup, test and disconnect as a tenant's pages.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.urls import path, reverse

from apps.oauth import views
from apps.oauth.models import OAuthGrant
from apps.oauth.selectors import tenant_smtp_settings


@admin.register(OAuthGrant)
class OAuthGrantAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.host_setup_view), name="oauth_oauthgrant_changelist"),
            path("test/", wrap(self.host_test_view), name="oauth_oauthgrant_test"),
            path(
                "disconnect/", wrap(self.host_disconnect_view), name="oauth_oauthgrant_disconnect"
            ),
        ]

    def _place(self) -> views.Place:
        smtp_settings = tenant_smtp_settings(None)
        return views.Place(
            smtp_settings=smtp_settings,
            page_url=reverse("admin:oauth_oauthgrant_changelist"),
            test_url=reverse("admin:oauth_oauthgrant_test"),
            disconnect_url=reverse("admin:oauth_oauthgrant_disconnect"),
            smtp_settings_url=reverse("admin:mailsettings_smtpsettings_changelist"),
            owner="the host's SMTP settings",
        )

    def _context(self, request, title: str) -> dict:
        if not self.has_change_permission(request):
            raise PermissionDenied
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "media": self.media,
        }

    def host_setup_view(self, request):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return views.setup_page(
            request,
            self._place(),
            "oauth/admin/setup.html",
            **self._context(request, "OAuth2 sign-in for the host's SMTP settings"),
        )

    def host_test_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return views.test_page(
            request,
            self._place(),
            "oauth/admin/setup.html",
            **self._context(request, "OAuth2 sign-in for the host's SMTP settings"),
        )

    def host_disconnect_view(self, request):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return views.disconnect_page(
            request,
            self._place(),
            "oauth/admin/disconnect.html",
            **self._context(request, "Remove OAuth2 sign-in"),
        )
