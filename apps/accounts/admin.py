from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html

from apps.accounts import services
from apps.accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Users, for system administrators.

    Who is a system administrator is decided on the System administrators
    page (audited, and the last one cannot be revoked), not with the staff
    flags here; every change here goes through the audited services.
    """

    ordering = ["email"]
    list_display = ["email", "full_name", "is_system_admin", "is_active", "last_login"]
    list_filter = ["is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["full_name"]}),
        ("Status", {"fields": ["is_active", "system_admin_status"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]}),
    ]
    filter_horizontal = []
    actions = []

    @admin.display(boolean=True, description="System administrator")
    def is_system_admin(self, user):
        return user.is_system_admin

    @admin.display(description="System administrator")
    def system_admin_status(self, user):
        return format_html(
            '{} — <a href="{}">manage system administrators</a>',
            "Yes" if user.is_system_admin else "No",
            reverse("admin:tenancy_systemadministrator_changelist"),
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = ["last_login", "date_joined", "system_admin_status"]
        if obj is not None and obj.is_system_admin:
            # Disabling a system administrator here would bypass the last-one rule.
            readonly.append("is_active")
        return readonly

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_system_admin:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        services.user_save(actor=request.user, user=obj, request=request)

    def delete_model(self, request, obj):
        services.user_delete(actor=request.user, user=obj, request=request)

    def user_change_password(self, request, id, form_url=""):  # noqa: A002 (Django's name)
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = self.get_object(request, unquote(id))
                services.user_password_changed(actor=request.user, user=user, request=request)
        return response
