from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from apps.mailsettings.forms import TEST_BUTTON, SmtpSettingsForm
from apps.mailsettings.models import SmtpSettings
from apps.mailsettings.presets import presets_data
from apps.mailsettings.services import (
    TestEmailLimitError,
    smtp_settings_update,
    smtp_test_email_send,
)
from apps.mailsettings.signin import connection_words, password_sign_in_notice
from apps.providers.selectors import provider_settings_for

TEST_FIELDS = ("test_to", "test_subject", "test_body")


@admin.register(SmtpSettings)
class SmtpSettingsAdmin(admin.ModelAdmin):
    """The host's SMTP settings: one row, for system administrators only.

    Tenants' rows are edited on their own pages, not here. "Send test email"
    (a second submit button) tests the values in the form without saving.
    """

    form = SmtpSettingsForm
    change_form_template = "mailsettings/admin/change_form.html"
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
        js = ["mailsettings/presets.js"]

    def get_queryset(self, request):
        # The host's primary row; its failover row has its own page (apps/providers/admin.py).
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
            return redirect("admin:mailsettings_smtpsettings_add")
        return redirect("admin:mailsettings_smtpsettings_change", row.pk)

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
