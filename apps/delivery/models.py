"""Events reported by pipelines, and the deliveries they fan out into.

An event is stored in the transaction that accepts it; dispatching it
resolves its recipients into one `Delivery` per (event, address). A
delivery moves `queued → sending → sent | failed` (or is `suppressed` at
once); every try at sending it is a `DeliveryAttempt`, so each outcome can
be explained.
"""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from apps.core.models import TenantQuerySet
from apps.pipelines.models import EventType, Level, Pipeline
from apps.tenancy.models import Project, Tenant


class Event(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=30, choices=EventType.choices)
    level = models.CharField(max_length=10, choices=Level.choices)
    run_id = models.CharField("run identifier", max_length=200)
    run_url = models.URLField("link to the run", max_length=2000)
    message = models.CharField(max_length=1000, blank=True)
    stage = models.CharField("stage name", max_length=200, blank=True)
    # Cleared once older than the idempotency window, so the key may be reused.
    # Null, not "", for "none": the unique constraint must ignore events without a key.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when its recipients were resolved into deliveries; the sweep finds the rest.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    recipient_count = models.PositiveIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="delivery_event_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="delivery_event_recent"),
            # The host admin's search by a whole run identifier.
            models.Index(fields=["run_id"], name="delivery_event_run"),
            models.Index(
                fields=["created_at"],
                condition=Q(dispatched_at__isnull=True),
                name="delivery_event_undispatched",
            ),
        ]

    def __str__(self):
        return f"{self.get_event_type_display()} #{self.run_id}"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"
    # The recipient turned these notifications off (My notifications, or unsubscribed).
    OPTED_OUT = "opted_out", "Opted out"
    # What an email-service provider reported later about mail it accepted (apps.webhooks).
    DELIVERED = "delivered", "Delivered"
    BOUNCED = "bounced", "Bounced"
    REJECTED = "rejected", "Rejected by the provider"
    COMPLAINED = "complained", "Marked as spam"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


# A provider's report refines "sent": counts and charts take the mail that left as sent
# (it was, even if it later bounced) or failed (it never reached the mailbox).
SENT_STATUSES = [
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.COMPLAINED,
    DeliveryStatus.UNSUBSCRIBED,
]
FAILED_STATUSES = [DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.REJECTED]

FINAL_STATUSES = [
    *SENT_STATUSES,
    *FAILED_STATUSES,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.OPTED_OUT,
]


class Delivery(models.Model):
    # Not indexed alone: the indexes below start with them. Each index costs
    # the engine at every outcome it records, so there are no spare ones.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    address = models.EmailField(max_length=254)
    # The account behind the address, when there is one.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Why this address gets the event, said in the message's footer.
    reason = models.CharField(max_length=500)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    # Stable across retries, so a receiver can drop a duplicate.
    message_id = models.CharField(max_length=255)
    # The id an email-service provider gave the message when it accepted it, as anymail
    # reports it (apps.webhooks.services.provider_message_id_normalize); its delivery
    # webhooks name the message by it. Blank for mail sent over SMTP.
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    attempt_count = models.PositiveSmallIntegerField(default=0)
    # When it entered the queue (created, or resent): retries stop DELIVERY_MAX_AGE after.
    queued_at = models.DateTimeField(default=timezone.now)
    # When it may be tried (again); null means now.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker that claimed it holds it until then; after, it returns to the queue.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Which claim holds it, so only that worker records its outcome.
    lease_token = models.CharField(max_length=32, blank=True)
    # Claims since its last recorded outcome: past DELIVERY_MAX_CLAIMS it fails
    # (a message that kills its worker is not claimed forever).
    claim_count = models.PositiveSmallIntegerField(default=0)
    last_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_reply = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "address"], name="delivery_unique_address"),
            # A constraint, not unique=True: no extra LIKE index on PostgreSQL.
            models.UniqueConstraint(fields=["message_id"], name="delivery_unique_message_id"),
        ]
        indexes = [
            # The log's pages (apps.core.keyset): newest first, all or of one status.
            models.Index(fields=["tenant", "-created_at", "-id"], name="delivery_recent"),
            models.Index(
                fields=["tenant", "status", "-created_at", "-id"], name="delivery_status_recent"
            ),
            # The log's recipient search, any part of the address in any case (icontains is
            # UPPER(address) LIKE UPPER('%…%')): a trigram index, PostgreSQL only.
            GinIndex(OpClass(Upper("address"), name="gin_trgm_ops"), name="delivery_address_trgm"),
            models.Index(
                fields=["tenant", "next_attempt_at"],
                condition=Q(status__in=["queued", "sending"]),
                name="delivery_due",
            ),
            # Partial: SMTP mail (no provider id) costs nothing. The id leads, so the host's
            # webhook (every tenant on the host settings) uses it as well as a tenant's.
            models.Index(
                fields=["provider_message_id", "tenant"],
                condition=~Q(provider_message_id=""),
                name="delivery_provider_message",
            ),
            # What finished when: today's live counts on the dashboard, and the daily
            # roll-up (DeliveryDay) of each day that is over.
            models.Index(
                fields=["tenant", "finished_at"],
                condition=Q(finished_at__isnull=False),
                name="delivery_finished",
            ),
        ]

    def __str__(self):
        return f"{self.address} ({self.status})"


class DeliveryAttempt(models.Model):
    # Indexed with the delivery, below.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    # An apps.connections.smtp.Outcome.
    outcome = models.CharField(max_length=40)
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    reply = models.CharField(max_length=1000, blank=True)
    # Which connection carried it: "own" or "host" SMTP settings.
    via = models.CharField(max_length=20, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["attempted_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "delivery"], name="delivery_attempt_delivery"),
            # The failure-alert check reads the last minutes' attempts of every tenant.
            models.Index(fields=["attempted_at"], name="delivery_attempt_time"),
        ]

    def __str__(self):
        return f"{self.outcome} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"


class DeliveryDay(models.Model):
    """One tenant's deliveries that finished on one day: the dashboard's chart.

    Written once the day is over (apps.delivery.lifecycle.delivery_days_roll_up)
    and kept after the deliveries themselves are deleted (retention). Only days
    with some mail have a row. A provider's later report (a bounce) does not
    move a day already rolled up.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    # In the portal's time zone (settings.TIME_ZONE), like the chart's days.
    day = models.DateField()
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "day"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day"], name="delivery_day_unique"),
        ]

    def __str__(self):
        return f"{self.day}: {self.sent} sent, {self.failed} failed"


ROLLUP_ID = 1


class DeliveryRollup(models.Model):
    """How far the daily roll-up has come: one row (id 1).

    Every day up to `rolled_through` is in DeliveryDay (for every tenant);
    later days are counted from the deliveries.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=ROLLUP_ID, editable=False)
    rolled_through = models.DateField(null=True, blank=True)
    # Midnight after it (in the portal's time zone): the dashboard counts live from here.
    rolled_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=ROLLUP_ID), name="delivery_rollup_one_row"),
        ]

    def __str__(self):
        return f"Deliveries rolled up through {self.rolled_through}"
