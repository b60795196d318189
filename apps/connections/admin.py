"""How mail leaves: SMTP settings, email-service providers and OAuth2 sign-in for SMTP (admin).

Each part below keeps the notes it had; a connection is primary or failover (ConnectionRole)."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse

from apps.connections import oauth_views, provider_views
from apps.connections.forms import TEST_BUTTON, SmtpSettingsForm
from apps.connections.models import ConnectionRole, OAuthGrant, ProviderSettings, SmtpSettings
from apps.connections.presets import presets_data
from apps.connections.selectors import provider_settings_for, tenant_smtp_settings
from apps.connections.services import (
    TestEmailLimitError,
    smtp_settings_update,
    smtp_test_email_send,
)
from apps.connections.signin import connection_words, password_sign_in_notice

# --- SMTP settings -----------------------------------------------
TEST_FIELDS = ("test_to", "test_subject", "test_body")


@admin.register(SmtpSettings)
class SmtpSettingsAdmin(admin.ModelAdmin):
    """The host's SMTP settings: one row, for system administrators only.

    Tenants' rows are edited on their own pages, not here. "Send test email"
    (a second submit button) tests the values in the form without saving.
    """

    form = SmtpSettingsForm
    change_form_template = "connections/smtp/admin/change_form.html"
    fieldsets = [
        (None, {"fields": ["preset"]}),
        ("Server", {"fields": ["name", "host", "port", "security", "timeout"]}),
        (
            "Login",
            {
                "fields": [
                    "username",
                    "new_password",
                    "password_tested",
                    "clear_password",
                    "confirm_unencrypted",
                    "smtp_domain",
                ]
            },
        ),
        ("Sender", {"fields": ["from_email", "from_name"]}),
        ("Advanced", {"classes": ["collapse"], "fields": ["ehlo_name"]}),
        (
            "Test email",
            {
                "classes": ["smtp-test-email"],
                "description": "Sends with the values in this form, saved or not. "
                "Sending a test saves nothing.",
                "fields": list(TEST_FIELDS),
            },
        ),
    ]

    class Media:
        js = ["connections/smtp/presets.js"]

    def get_queryset(self, request):
        # The host's primary row; its failover row has its own page (apps/connections/admin.py).
        return super().get_queryset(request).filter(tenant__isnull=True, role="primary")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not self.get_queryset(request).exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row: the list is its change page (or the add page before it exists).
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        row = self.get_queryset(request).first()
        if row is None:
            return redirect("admin:connections_smtpsettings_add")
        return redirect("admin:connections_smtpsettings_change", row.pk)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.password:
            return fieldsets
        # Nothing stored, nothing to clear.
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "clear_password"]})
            for name, options in fieldsets
        ]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "presets": presets_data(),
            "test_button": TEST_BUTTON,
            "show_save_and_add_another": False,
        }
        if request.method == "POST" and TEST_BUTTON in request.POST:
            return self._send_test_view(request, object_id, form_url, extra_context)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Which connection carries the host's mail, and the password sign-in notice:
        # the form already looked up the row's OAuth2 grant.
        grant = context["adminform"].form.grant if obj is not None else None
        provider = provider_settings_for(tenant_id=None)
        context = {
            **context,
            "oauth_grant": grant,
            "provider": provider,
            "connection_words": connection_words(obj, grant, provider),
            "sign_in_notice": None if provider else password_sign_in_notice(obj, grant),
        }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _send_test_view(self, request, object_id, form_url, extra_context):
        """Validate the posted form, send the test with its values, show it again. No save."""
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not (
            self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        ):
            raise PermissionDenied
        fieldsets = self.get_fieldsets(request, obj)
        form_class = self.get_form(
            request, obj, change=obj is not None, fields=flatten_fieldsets(fieldsets)
        )
        # The form gets its own copy: validating puts the typed, unsaved values on
        # its instance, and the page's title and breadcrumbs name the stored row.
        form_row = self.get_object(request, unquote(object_id)) if object_id else None
        form = form_class(request.POST, instance=form_row)
        result = None
        if form.is_valid():
            try:
                result = smtp_test_email_send(form=form, actor=request.user, request=request)
            except TestEmailLimitError as error:
                form.add_error(None, error)
        self._show_warnings(request, form)
        admin_form = helpers.AdminForm(form, list(fieldsets), {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": ("Change %s" if obj else "Add %s") % self.opts.verbose_name,
            "subtitle": str(obj) if obj else None,
            "adminform": admin_form,
            "object_id": object_id,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "test_result": result,
            **extra_context,
        }
        return self.render_change_form(
            request, context, add=obj is None, change=obj is not None, obj=obj, form_url=form_url
        )

    def save_model(self, request, obj, form, change):
        smtp_settings_update(actor=request.user, smtp_settings=obj, request=request)
        self._show_warnings(request, form)

    def construct_change_message(self, request, form, formsets, add=False):
        # The test email's fields are not settings: keep them out of the history.
        form.changed_data[:] = [name for name in form.changed_data if name not in TEST_FIELDS]
        return super().construct_change_message(request, form, formsets, add)

    @staticmethod
    def _show_warnings(request, form):
        for warning in form.warnings:
            messages.warning(request, warning)


# --- Email-service providers -------------------------------------
# The host's provider connections, in the host administration (system administrators only).
#
# Pages in place of the usual list and forms: the same as a tenant's, for the
# host's rows (tenant empty). Tenants' rows are edited on their own pages.
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
        name = "connections_providersettings"
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

    def _place(self, role: str) -> provider_views.Place:
        primary = role == ConnectionRole.PRIMARY
        name = "admin:connections_providersettings"
        return provider_views.Place(
            tenant=None,
            role=role,
            page_url=reverse(f"{name}_changelist" if primary else f"{name}_secondary"),
            remove_url=reverse(f"{name}_remove" if primary else f"{name}_secondary_remove"),
            primary_url=reverse(f"{name}_changelist"),
            secondary_url=reverse(f"{name}_secondary"),
            smtp_url=reverse("admin:connections_smtpsettings_changelist"),
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
        return provider_views.provider_page(
            request,
            self._place(role),
            "connections/providers/admin/page.html",
            **self._context(request, title),
        )

    def _remove(self, request, role: str):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return provider_views.remove_page(
            request,
            self._place(role),
            "connections/providers/admin/remove.html",
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
        return provider_views.smtp_secondary_page(
            request,
            self._place(ConnectionRole.SECONDARY),
            "connections/providers/admin/secondary_smtp.html",
            **self._context(request, "Secondary (failover) SMTP server"),
        )

    def secondary_smtp_remove_view(self, request):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return provider_views.smtp_secondary_remove_page(
            request,
            self._place(ConnectionRole.SECONDARY),
            "connections/providers/admin/secondary_smtp_remove.html",
            **self._context(request, "Remove the failover SMTP server"),
        )


# --- OAuth2 sign-in for SMTP -------------------------------------
# The host's OAuth2 sign-in, in the host administration (system administrators only).
#
# One page for the host's SMTP settings, in place of the usual list and
# forms: the same setup, test and disconnect as a tenant's pages.
@admin.register(OAuthGrant)
class OAuthGrantAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.host_setup_view), name="connections_oauthgrant_changelist"),
            path("test/", wrap(self.host_test_view), name="connections_oauthgrant_test"),
            path(
                "disconnect/",
                wrap(self.host_disconnect_view),
                name="connections_oauthgrant_disconnect",
            ),
        ]

    def _place(self) -> oauth_views.Place:
        smtp_settings = tenant_smtp_settings(None)
        return oauth_views.Place(
            smtp_settings=smtp_settings,
            page_url=reverse("admin:connections_oauthgrant_changelist"),
            test_url=reverse("admin:connections_oauthgrant_test"),
            disconnect_url=reverse("admin:connections_oauthgrant_disconnect"),
            smtp_settings_url=reverse("admin:connections_smtpsettings_changelist"),
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
        return oauth_views.setup_page(
            request,
            self._place(),
            "connections/oauth/admin/setup.html",
            **self._context(request, "OAuth2 sign-in for the host's SMTP settings"),
        )

    def host_test_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return oauth_views.test_page(
            request,
            self._place(),
            "connections/oauth/admin/setup.html",
            **self._context(request, "OAuth2 sign-in for the host's SMTP settings"),
        )

    def host_disconnect_view(self, request):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        return oauth_views.disconnect_page(
            request,
            self._place(),
            "connections/oauth/admin/disconnect.html",
            **self._context(request, "Remove OAuth2 sign-in"),
        )
