"""Endpoints, sent deliveries, and posting a provider's payload the way the provider does."""

import base64
import json
from dataclasses import dataclass

import pytest
from django.urls import reverse

from apps.delivery.models import Delivery, DeliveryStatus
from apps.tenancy.models import Tenant
from apps.webhooks.models import Provider, WebhookEndpoint
from apps.webhooks.services import (
    deliveries_record_provider_message_ids,
    webhook_endpoint_create,
)
from tests.delivery.log_records import make_deliveries, make_event, make_pipeline
from tests.webhooks import payloads as p

MAILGUN_SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


@dataclass(frozen=True)
class Sample:
    """One provider's sample reports, and a message id of the kind it gives."""

    message_id: str
    delivered: object
    bounced: object
    complained: object
    unsubscribed: object | None
    soft_bounce: object


SAMPLES = {
    Provider.AMAZON_SES: Sample(
        "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        p.ses_delivered,
        p.ses_bounced,
        p.ses_complained,
        None,  # SES reports no unsubscribes
        lambda m, r: p.ses_bounced(m, r, bounce_type="Transient"),
    ),
    Provider.MAILGUN: Sample(
        "<20180812211713.1.DF5966851B4BAA99@acme.example>",
        p.mailgun_delivered,
        p.mailgun_bounced,
        p.mailgun_complained,
        p.mailgun_unsubscribed,
        None,  # anymail makes Mailgun's temporary failures "deferred", not bounces
    ),
    Provider.SENDGRID: Sample(
        "8a7c4f2e-3b1d-4e5f-9a6b-0c1d2e3f4a5b",
        p.sendgrid_delivered,
        p.sendgrid_bounced,
        p.sendgrid_complained,
        lambda m, r: {**p.sendgrid_delivered(m, r), "event": "unsubscribe"},
        lambda m, r: p.sendgrid_bounced(m, r, kind="blocked"),
    ),
    Provider.POSTMARK: Sample(
        "883953f4-6105-42a2-a16a-77a8eac79483",
        p.postmark_delivered,
        p.postmark_bounced,
        p.postmark_complained,
        p.postmark_unsubscribed,
        lambda m, r: p.postmark_bounced(m, r, kind="SoftBounce"),
    ),
    Provider.BREVO: Sample(
        "<201798300811.5787683@relay.domain.com>",
        p.brevo_delivered,
        p.brevo_bounced,
        p.brevo_complained,
        p.brevo_unsubscribed,
        lambda m, r: p.brevo_bounced(m, r, kind="soft_bounce"),
    ),
    Provider.MAILJET: Sample(
        "19421777835146490",
        p.mailjet_delivered,
        p.mailjet_bounced,
        p.mailjet_complained,
        p.mailjet_unsubscribed,
        lambda m, r: p.mailjet_bounced(m, r, hard=False),
    ),
}


@dataclass
class Hook:
    """An endpoint with its password, and a client to post to it as its provider does."""

    endpoint: WebhookEndpoint
    password: str
    client: object

    @property
    def url(self) -> str:
        return self.endpoint.path

    def post(self, payload, *, auth: str | None = "right", headers: dict | None = None):
        provider = self.endpoint.provider
        if provider == Provider.AMAZON_SES:
            kwargs = p.sns_post_kwargs(payload)
        else:
            if provider in (Provider.SENDGRID, Provider.MAILJET) and not isinstance(payload, list):
                payload = [payload]
            if provider == Provider.MAILGUN and "signature" not in payload:
                payload = p.mailgun_sign(payload, MAILGUN_SIGNING_KEY)
            kwargs = {"data": json.dumps(payload), "content_type": "application/json"}
        kwargs["headers"] = {**kwargs.get("headers", {}), **(headers or {})}
        if auth is not None:
            password = self.password if auth == "right" else auth
            credentials = f"{self.endpoint.username}:{password}".encode()
            kwargs["headers"]["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        return self.client.post(self.url, **kwargs)


def make_hook(client, tenant: Tenant | None, provider: str, signing_key: str = "") -> Hook:
    if provider == Provider.MAILGUN and not signing_key:
        signing_key = MAILGUN_SIGNING_KEY
    endpoint, password = webhook_endpoint_create(
        tenant=tenant, provider=provider, signing_key=signing_key, actor=None
    )
    return Hook(endpoint, password, client)


def sent_delivery(tenant: Tenant, provider_message_id: str, address: str) -> Delivery:
    """A delivery the engine handed to a provider, which answered with `provider_message_id`."""
    pipeline = make_pipeline(tenant, project=f"p{Delivery.objects.count()}")
    event = make_event(pipeline)
    local = address.split("@")[0]
    (delivery,) = make_deliveries(
        event, DeliveryStatus.SENT, 1, prefix=local, last_reply="250 Accepted"
    )
    # make_deliveries numbers its addresses: use the one asked for.
    Delivery.objects.filter(pk=delivery.pk).update(address=address)
    # As the sender records it, right after the provider answered.
    deliveries_record_provider_message_ids(
        tenant_id=tenant.pk, message_ids={delivery.pk: provider_message_id}
    )
    delivery.refresh_from_db()
    return delivery


def tracking_url(endpoint: WebhookEndpoint) -> str:
    return reverse(
        "webhooks_receiver:tracking",
        kwargs={"public_id": endpoint.public_id, "provider": endpoint.provider},
    )


@pytest.fixture(params=list(Provider), ids=lambda provider: provider.value)
def provider(request):
    return request.param
