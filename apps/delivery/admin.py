"""Events and deliveries across tenants, for system administrators: read-only.

Nothing changes here: a delivery moves only through the engine's services,
and a resend belongs to the tenant's admins in their portal.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.delivery.models import Delivery, DeliveryAttempt, Event


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    has_add_permission = ReadOnlyAdmin.has_add_permission
    has_change_permission = ReadOnlyAdmin.has_change_permission
    has_delete_permission = ReadOnlyAdmin.has_delete_permission


class DeliveryAttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ["attempted_at", "outcome", "code", "reply", "via"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "project",
        "pipeline",
        "event_type",
        "level",
        "run_id",
        "deliveries_link",
        "dispatched_at",
    ]
    list_filter = ["tenant", "event_type", "level", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["run_id", "message", "pipeline__name", "pipeline__slug"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "project", "pipeline"]
    show_full_result_count = False

    @admin.display(description="Recipients", ordering="recipient_count")
    def deliveries_link(self, event):
        url = reverse("admin:delivery_delivery_changelist")
        return format_html(
            '<a href="{}?event__id__exact={}">{}</a>', url, event.pk, event.recipient_count
        )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tenant",
        "address",
        "status",
        "event",
        "attempt_count",
        "last_code",
        "short_reply",
        "finished_at",
    ]
    list_filter = ["tenant", "status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["address", "event__run_id", "message_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "event"]
    show_full_result_count = False
    raw_id_fields = ["event", "user"]
    inlines = [DeliveryAttemptInline]

    @admin.display(description="Last reply")
    def short_reply(self, delivery):
        reply = delivery.last_reply
        return reply if len(reply) <= 60 else f"{reply[:59]}…"
