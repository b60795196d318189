"""Every write of the delivery webhooks: endpoints, refusals, and what providers report.

`tracking_events_apply` turns anymail's normalized events into delivery
statuses and suppression-list entries, in a bounded number of queries for a
whole post (SendGrid and Mailjet post events in batches).

For the sending side: a provider's message id is stored on the delivery with
`deliveries_record_provider_message_ids` (or, when writing it yourself, passed
through `provider_message_id_normalize`), so that the provider's reports find it.
"""

import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from anymail.signals import AnymailTrackingEvent, EventType
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.models import WEBHOOK_REFUSED_ACTION
from apps.audit.services import audit_record
from apps.core.fields import Secret
from apps.delivery.models import Delivery, DeliveryStatus
from apps.preferences.models import SuppressionReason
from apps.preferences.suppression import suppressions_add_reported
from apps.tenancy.models import Tenant
from apps.webhooks.models import Provider, WebhookEndpoint
from apps.webhooks.providers import PROVIDERS

logger = logging.getLogger(__name__)

# A refused post is audited at most once per endpoint in this many seconds; the entry
# after says how many were not, so a flood of bad posts cannot fill the audit log.
REFUSAL_AUDIT_WINDOW = 600
# An endpoint's "last event" is rewritten at most this often.
LAST_EVENT_PRECISION = timedelta(minutes=1)

# The anymail events that change a delivery, and the status each gives it.
REPORTED_STATUS = {
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.BOUNCED: DeliveryStatus.BOUNCED,
    EventType.REJECTED: DeliveryStatus.REJECTED,
    EventType.COMPLAINED: DeliveryStatus.COMPLAINED,
    EventType.UNSUBSCRIBED: DeliveryStatus.UNSUBSCRIBED,
}
# Reports arrive out of order: a status only gives way to a later stage of the message's
# life (a late "delivered" never hides a bounce or a complaint).
STATUS_RANK = {
    DeliveryStatus.SENT: 0,
    DeliveryStatus.DELIVERED: 1,
    DeliveryStatus.REJECTED: 2,
    DeliveryStatus.BOUNCED: 2,
    DeliveryStatus.UNSUBSCRIBED: 3,
    DeliveryStatus.COMPLAINED: 4,
}
REPLY_LENGTH = Delivery._meta.get_field("last_reply").max_length
PROVIDER_ID_LENGTH = Delivery._meta.get_field("provider_message_id").max_length


# Provider message ids --------------------------------------------------------------------


def provider_message_id_normalize(message_id: str | None) -> str:
    """One spelling for a provider's message id: Mailgun and Brevo wrap theirs in <>."""
    return (message_id or "").strip().strip("<>").strip()[:PROVIDER_ID_LENGTH]


def deliveries_record_provider_message_ids(*, tenant_id: int, message_ids: Mapping[int, str]):
    """Store the ids a provider gave the messages it accepted, {delivery id: its message id}.

    One query for a whole batch; for the sender, right after the provider answered.
    """
    deliveries = [
        Delivery(pk=pk, provider_message_id=provider_message_id_normalize(message_id))
        for pk, message_id in message_ids.items()
    ]
    with transaction.atomic():
        # Only the tenant's own deliveries: ids of another tenant's are skipped.
        ours = set(
            Delivery.objects.for_tenant(tenant_id)
            .filter(pk__in=[d.pk for d in deliveries])
            .values_list("pk", flat=True)
        )
        Delivery.objects.bulk_update(
            [d for d in deliveries if d.pk in ours], ["provider_message_id"], batch_size=500
        )


# Endpoints -------------------------------------------------------------------------------


@transaction.atomic
def webhook_endpoint_create(
    *, tenant: Tenant | None, provider: str, signing_key: str = "", actor, request=None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint: (the endpoint, its password). The password is shown this once."""
    if provider not in Provider.values:
        raise ValidationError({"provider": "Choose one of the providers in the list."})
    password = secrets.token_urlsafe(24)
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant,
        provider=provider,
        username=f"pm-{secrets.token_hex(4)}",
        password=Secret(password),
        signing_key=Secret(signing_key) if signing_key else None,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        actor=actor,
        action="webhook_endpoint.created",
        target=endpoint,
        changes={
            "provider": endpoint.get_provider_display(),
            "user name": endpoint.username,
            "signing key": "set" if signing_key else "none",
        },
        tenant=tenant,
        request=request,
    )
    return endpoint, password


@transaction.atomic
def webhook_endpoint_revoke(*, endpoint: WebhookEndpoint, actor, request=None) -> None:
    """The URL stops working at once (404); the endpoint stays listed as revoked."""
    if not endpoint.is_active:
        raise ValidationError(f"The {endpoint} was already revoked.")
    endpoint.revoked_at = timezone.now()
    endpoint.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="webhook_endpoint.revoked",
        target=endpoint,
        changes={"provider": endpoint.get_provider_display(), "user name": endpoint.username},
        tenant=endpoint.tenant,
        request=request,
    )


# The audit entries of refused posts; kept WEBHOOK_REFUSAL_RETENTION_DAYS (data retention).
REFUSED_ACTION = WEBHOOK_REFUSED_ACTION


def webhook_refusal_record(*, endpoint: WebhookEndpoint, reason: str, request=None) -> bool:
    """Audit a refused post (bad credentials or signature); True if this one was written.

    At most one entry per endpoint every REFUSAL_AUDIT_WINDOW seconds; the
    next entry counts the refusals in between.
    """
    logger.warning("Refused a %s webhook post to %s: %s", endpoint.provider, endpoint.pk, reason)
    window_key = f"webhooks:refusal-window:{endpoint.pk}"
    count_key = f"webhooks:refusals-not-audited:{endpoint.pk}"
    if not cache.add(window_key, True, REFUSAL_AUDIT_WINDOW):
        if not cache.add(count_key, 1, 7 * 24 * 3600):
            try:
                cache.incr(count_key)
            except ValueError:  # expired in between: this one is lost, the entry says "about"
                cache.add(count_key, 1, 7 * 24 * 3600)
        return False
    not_audited = cache.get(count_key) or 0
    cache.delete(count_key)
    audit_record(
        actor=None,
        action=REFUSED_ACTION,
        target=endpoint,
        changes={
            "provider": endpoint.get_provider_display(),
            "reason": reason[:500],
            "earlier refusals not logged": not_audited,
        },
        tenant=endpoint.tenant,
        request=request,
    )
    return True


# What providers report -------------------------------------------------------------------


@dataclass(frozen=True)
class _Report:
    message_id: str
    recipient: str
    status: str
    reply: str
    suppress: tuple[str, str] | None  # (SuppressionReason, detail)


@dataclass(frozen=True)
class Applied:
    """What a post changed: deliveries whose status changed, addresses newly suppressed."""

    events: int
    updated: int
    suppressed: int


def _report(endpoint: WebhookEndpoint, event: AnymailTrackingEvent) -> _Report | None:
    status = REPORTED_STATUS.get(event.event_type)
    message_id = provider_message_id_normalize(event.message_id)
    if status is None or not message_id:
        return None
    provider = endpoint.get_provider_display()
    said = " — ".join(str(x).strip() for x in (event.description, event.mta_response) if x)
    suppress = None
    if status == DeliveryStatus.BOUNCED:
        hard = PROVIDERS[endpoint.provider].is_hard_bounce(event.esp_event or {})
        kind = "hard bounce" if hard else "soft bounce"
        said = f"{kind}: {said}" if said else kind
        if hard:
            suppress = (SuppressionReason.BOUNCED, f"{provider} reported a {said}")
    elif status == DeliveryStatus.COMPLAINED:
        suppress = (SuppressionReason.COMPLAINED, f"{provider}: the recipient marked it as spam")
    elif status == DeliveryStatus.UNSUBSCRIBED:
        suppress = (SuppressionReason.UNSUBSCRIBED, f"Unsubscribed through {provider}")
    reply = f"{provider}: {DeliveryStatus(status).label.lower()}" + (f" ({said})" if said else "")
    return _Report(
        message_id=message_id,
        recipient=(event.recipient or "").strip().lower(),
        status=status,
        reply=reply[:REPLY_LENGTH],
        suppress=suppress,
    )


def tracking_events_apply(
    *, endpoint: WebhookEndpoint, events: Iterable[AnymailTrackingEvent]
) -> Applied:
    """Apply one post's events to the endpoint's tenant's mail, in a bounded number of queries.

    An event finds its delivery by the provider's message id (and recipient)
    among the endpoint's tenant's mail that was sent; any other (an unknown
    message, another tenant's, an open or a click) is ignored. Hard bounces,
    spam complaints and unsubscribes put the delivery's address on its
    tenant's suppression list.
    """
    events = list(events)
    reports = [r for r in (_report(endpoint, e) for e in events) if r is not None]
    updated, suppressed = 0, 0
    if reports:
        with transaction.atomic():
            deliveries = Delivery.objects.filter(
                provider_message_id__in={r.message_id for r in reports},
                status__in=list(STATUS_RANK),
            )
            if endpoint.tenant_id is not None:
                deliveries = deliveries.filter(tenant_id=endpoint.tenant_id)
            by_message = defaultdict(list)
            for delivery in (
                deliveries.select_for_update()
                .only("id", "tenant_id", "address", "status", "provider_message_id")
                .order_by("pk")
            ):
                by_message[delivery.provider_message_id].append(delivery)
            changed = {}
            to_suppress = defaultdict(dict)
            for report in reports:
                for delivery in by_message.get(report.message_id, ()):
                    if report.recipient and delivery.address.lower() != report.recipient:
                        continue
                    if STATUS_RANK[report.status] > STATUS_RANK[delivery.status]:
                        delivery.status, delivery.last_reply = report.status, report.reply
                        changed[delivery.pk] = delivery
                    if report.suppress:
                        to_suppress[delivery.tenant_id].setdefault(
                            delivery.address.lower(), report.suppress
                        )
            Delivery.objects.bulk_update(
                list(changed.values()), ["status", "last_reply"], batch_size=500
            )
            for tenant_id, reported in to_suppress.items():
                suppressed += len(
                    suppressions_add_reported(
                        tenant_id=tenant_id,
                        reported=reported,
                        provider=endpoint.get_provider_display(),
                    )
                )
            updated = len(changed)
    _mark_used(endpoint)
    return Applied(events=len(events), updated=updated, suppressed=suppressed)


def _mark_used(endpoint: WebhookEndpoint) -> None:
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).filter(
        Q(last_event_at__isnull=True) | Q(last_event_at__lt=now - LAST_EVENT_PRECISION)
    ).update(last_event_at=now)
