"""The webhook services the sender and the host use directly."""

import pytest
from anymail.signals import AnymailTrackingEvent, EventType

from apps.delivery.models import Delivery, DeliveryStatus
from apps.preferences.models import Suppression, SuppressionReason
from apps.webhooks.services import (
    deliveries_record_provider_message_ids,
    provider_message_id_normalize,
    tracking_events_apply,
    webhook_endpoint_create,
)
from tests.webhooks.conftest import sent_delivery

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (
            "<20180812211713.1.DF5966851B4BAA99@example.org>",
            "20180812211713.1.DF5966851B4BAA99@example.org",
        ),
        (" 883953f4-6105-42a2-a16a-77a8eac79483 ", "883953f4-6105-42a2-a16a-77a8eac79483"),
        ("19421777835146490", "19421777835146490"),
        (None, ""),
    ],
)
def test_provider_message_ids_have_one_spelling(raw, stored):
    assert provider_message_id_normalize(raw) == stored


def test_the_sender_records_ids_only_on_its_tenants_deliveries(tenant, other_tenant):
    ours = sent_delivery(tenant, "a", "a@example.com")
    theirs = sent_delivery(other_tenant, "b", "b@example.com")

    deliveries_record_provider_message_ids(
        tenant_id=tenant.pk, message_ids={ours.pk: "<new@mailgun>", theirs.pk: "<stolen@x>"}
    )

    assert Delivery.objects.get(pk=ours.pk).provider_message_id == "new@mailgun"
    assert Delivery.objects.get(pk=theirs.pk).provider_message_id == "b"


def _event(event_type, message_id, recipient, **extra):
    return AnymailTrackingEvent(
        event_type=event_type, message_id=message_id, recipient=recipient, **extra
    )


def test_the_hosts_endpoint_reaches_every_tenant_on_the_host_settings(tenant, other_tenant):
    host, _ = webhook_endpoint_create(tenant=None, provider="postmark", actor=None)
    ours = sent_delivery(tenant, "m-1", "a@example.com")
    theirs = sent_delivery(other_tenant, "m-2", "b@example.com")

    applied = tracking_events_apply(
        endpoint=host,
        events=[
            _event(EventType.COMPLAINED, "m-1", "a@example.com"),
            _event(EventType.DELIVERED, "m-2", "b@example.com"),
            _event(EventType.OPENED, "m-2", "b@example.com"),
        ],
    )

    assert (applied.events, applied.updated, applied.suppressed) == (3, 2, 1)
    assert Delivery.objects.get(pk=ours.pk).status == DeliveryStatus.COMPLAINED
    assert Delivery.objects.get(pk=theirs.pk).status == DeliveryStatus.DELIVERED
    (entry,) = Suppression.objects.all()
    assert (entry.tenant, entry.reason) == (tenant, SuppressionReason.COMPLAINED)


def test_mail_not_yet_sent_is_left_to_the_engine(tenant):
    delivery = sent_delivery(tenant, "m-1", "a@example.com")
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENDING)
    endpoint, _ = webhook_endpoint_create(tenant=tenant, provider="postmark", actor=None)

    tracking_events_apply(endpoint=endpoint, events=[_event(EventType.DELIVERED, "m-1", "")])

    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENDING


def test_an_address_already_listed_keeps_its_entry(tenant):
    Suppression.objects.create(tenant=tenant, address="a@example.com", reason="added")
    sent_delivery(tenant, "m-1", "A@example.com")
    endpoint, _ = webhook_endpoint_create(tenant=tenant, provider="postmark", actor=None)

    applied = tracking_events_apply(
        endpoint=endpoint, events=[_event(EventType.UNSUBSCRIBED, "m-1", "a@EXAMPLE.com")]
    )

    assert applied.suppressed == 0
    assert Suppression.objects.get().reason == SuppressionReason.ADDED
