import json

from django.contrib import admin
from django.utils.html import format_html

from apps.audit.models import AuditEntry
from apps.core.keyset import CappedCountPaginator


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The host's audit log: read-only, searchable, filterable.

    It only grows: no exact count (CappedCountPaginator), no date hierarchy and
    no filter whose choices are the distinct values of the whole table.
    """

    list_display = ["created_at", "actor_email", "ip_address", "action", "target_repr", "tenant"]
    list_filter = ["tenant", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_email", "action", "target_repr", "ip_address"]
    list_select_related = ["tenant"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    # The created_at index, newest first.
    ordering = ["-created_at", "-id"]
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
