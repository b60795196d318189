"""Colours and words for deliveries, the same on every page."""

from django import template

from apps.connections.smtp import Outcome
from apps.delivery.models import DeliveryStatus
from apps.pipelines.models import Level

register = template.Library()

# Bootstrap colour names: badges, the progress bar, the chart.
STATUS_COLOURS = {
    DeliveryStatus.QUEUED: "secondary",
    DeliveryStatus.SENDING: "info",
    DeliveryStatus.SENT: "success",
    DeliveryStatus.FAILED: "danger",
    DeliveryStatus.SUPPRESSED: "warning",
    DeliveryStatus.OPTED_OUT: "dark",
    DeliveryStatus.DELIVERED: "success",
    DeliveryStatus.BOUNCED: "danger",
    DeliveryStatus.REJECTED: "danger",
    DeliveryStatus.COMPLAINED: "danger",
    DeliveryStatus.UNSUBSCRIBED: "dark",
}
LEVEL_COLOURS = {Level.SUCCESS: "success", Level.WARNING: "warning", Level.ERROR: "danger"}


@register.filter
def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "secondary")


@register.filter
def level_colour(level: str) -> str:
    return LEVEL_COLOURS.get(level, "secondary")


@register.filter
def outcome_label(outcome: str) -> str:
    """ "recipient_rejected" → "Recipient rejected"; an unknown outcome as it is."""
    if outcome in Outcome:
        return outcome.replace("_", " ").capitalize()
    return outcome
