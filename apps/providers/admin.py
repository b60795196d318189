"""The host's provider connections, in the host administration (system administrators only).

Pages in place of the usual list and forms: the same as a tenant's, for the
host's rows (tenant empty). Tenants' rows are edited on their own pages.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.urls import path, reverse

from apps.providers import views
from apps.providers.models import ConnectionRole, ProviderSettings


@admin.register(ProviderSettings)
class ProviderSettingsAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(tenant__isnull=True)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = "providers_providersettings"
        return [
            path("", wrap(self.primary_view), name=f"{name}_changelist"),
            path("remove/", wrap(self.primary_remove_view), name=f"{name}_remove"),
            path("failover/", wrap(self.secondary_view), name=f"{name}_secondary"),
            path(
                "failover/remove/",
                wrap(self.secondary_remove_view),
                name=f"{name}_secondary_remove",
            ),
            path("failover/smtp/", wrap(self.secondary_smtp_view), name=f"{name}_secondary_smtp"),
            path(
                "failover/smtp/remove/",
                wrap(self.secondary_smtp_remove_view),
                name=f"{name}_secondary_smtp_remove",
            ),
        ]

    def _place(self, role: str) -> views.Place:
        primary = role == ConnectionRole.PRIMARY
        name = "admin:providers_providersettings"
        return views.Place(
            tenant=None,
            role=role,
            page_url=reverse(f"{name}_changelist" if primary else f"{name}_secondary"),
            remove_url=reverse(f"{name}_remove" if primary else f"{name}_secondary_remove"),
            primary_url=reverse(f"{name}_changelist"),
            secondary_url=reverse(f"{name}_secondary"),
            smtp_url=reverse("admin:mailsettings_smtpsettings_changelist"),
            smtp_secondary_url=reverse(f"{name}_secondary_smtp"),
            smtp_secondary_remove_url=reverse(f"{name}_secondary_smtp_remove"),
        )

    def _context(self, request, title: str) -> dict:
        if not self.has_change_permission(request):
            raise PermissionDenied
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
        }

    def _page(self, request, role: str):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        title = (
            "Email-service provider"
            if role == ConnectionRole.PRIMARY
            else "Secondary (failover) provider connection"
        )
        return views.provider_page(
            request, self._place(role), "providers/admin/page.html", **self._context(request, title)
        )

    def _remove(self, request, role: str):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return views.remove_page(
            request,
            self._place(role),
            "providers/admin/remove.html",
            **self._context(request, "Remove the provider connection"),
        )

    def primary_view(self, request):
        return self._page(request, ConnectionRole.PRIMARY)

    def secondary_view(self, request):
        return self._page(request, ConnectionRole.SECONDARY)

    def primary_remove_view(self, request):
        return self._remove(request, ConnectionRole.PRIMARY)

    def secondary_remove_view(self, request):
        return self._remove(request, ConnectionRole.SECONDARY)

    def secondary_smtp_view(self, request):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return views.smtp_secondary_page(
            request,
            self._place(ConnectionRole.SECONDARY),
            "providers/admin/secondary_smtp.html",
            **self._context(request, "Secondary (failover) SMTP server"),
        )

    def secondary_smtp_remove_view(self, request):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return views.smtp_secondary_remove_page(
            request,
            self._place(ConnectionRole.SECONDARY),
            "providers/admin/secondary_smtp_remove.html",
            **self._context(request, "Remove the failover SMTP server"),
        )
