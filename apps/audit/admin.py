import json

from django.contrib import admin
from django.utils.html import format_html

from apps.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The host's audit log: read-only, searchable, filterable."""

    list_display = ["created_at", "actor_email", "ip_address", "action", "target_repr", "tenant"]
    list_filter = ["action", "target_type", "tenant", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_email", "action", "target_repr", "ip_address"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]
    fields = [
        "created_at",
        "actor_email",
        "ip_address",
        "tenant",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "changes_display",
    ]
    readonly_fields = fields

    @admin.display(description="Changes")
    def changes_display(self, entry):
        return format_html("<pre>{}</pre>", json.dumps(entry.changes, indent=2, sort_keys=True))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
