"""Events and deliveries across tenants, for system administrators: read-only.

Both tables hold millions of rows: the lists never count them exactly
(CappedCountPaginator: "more than 1000"), have no date hierarchy (it reads
the distinct days of the whole table), are ordered by what an index serves,
and search only what an index answers.

Nothing changes here: a delivery moves only through the engine's services,
and a resend belongs to the tenant's admins in their portal.
"""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from apps.core.keyset import CappedCountPaginator
from apps.delivery.models import Delivery, DeliveryAttempt, Event
from apps.pipelines.models import Pipeline


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
    # Searched by get_search_results: a whole run identifier, or a pipeline's name or slug.
    search_fields = ["run_id"]
    search_help_text = "A whole run identifier, or a pipeline's name or slug."
    list_select_related = ["tenant", "project", "pipeline"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    # The primary key, newest first: no sort of the table, whatever the filter.
    ordering = ["-id"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        pipelines = Pipeline.objects.filter(Q(name__iexact=term) | Q(slug__iexact=term))
        return queryset.filter(Q(run_id=term) | Q(pipeline__in=pipelines)), False

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
    # The start of an address (the trigram index on PostgreSQL serves UPPER(address)
    # LIKE 'X%'), a whole Message-ID or run identifier (their indexes): never a scan.
    search_fields = ["^address"]
    search_help_text = (
        "The start of a recipient's address, a whole Message-ID or a whole run identifier."
    )
    list_select_related = ["tenant", "event"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    # The primary key, newest first: no sort of the table, whatever the filter.
    ordering = ["-id"]
    raw_id_fields = ["event", "user"]
    inlines = [DeliveryAttemptInline]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.startswith("<") and term.endswith(">"):
            return queryset.filter(message_id=term), False
        events = Event.objects.filter(run_id=term).values("id")
        if term and events.exists():
            return queryset.filter(event__in=events), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="Last reply")
    def short_reply(self, delivery):
        reply = delivery.last_reply
        return reply if len(reply) <= 60 else f"{reply[:59]}…"
