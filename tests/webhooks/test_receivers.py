"""Providers' posts to a tenant's webhook: effects, refusals, and isolation between tenants."""

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache

from apps.audit.models import AuditEntry
from apps.delivery.models import Delivery, DeliveryStatus
from apps.operations.services import maintenance_update
from apps.preferences.models import Suppression, SuppressionReason
from apps.webhooks import receivers
from apps.webhooks.models import Provider
from apps.webhooks.services import webhook_endpoint_revoke
from tests.connections.smtp.factories import allow_private_network
from tests.webhooks import payloads as p
from tests.webhooks.conftest import MAILGUN_SIGNING_KEY, SAMPLES, make_hook, sent_delivery

pytestmark = [
    pytest.mark.django_db,
    # Anymail warns that it no longer tests SendGrid (the app silences it outside tests).
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]
WITH_SOFT_BOUNCES = [p for p, s in SAMPLES.items() if s.soft_bounce is not None]
WITH_UNSUBSCRIBES = [p for p, s in SAMPLES.items() if s.unsubscribed is not None]

ADDRESS = "jane@example.com"


def refusals():
    return list(AuditEntry.objects.filter(action="webhook.refused"))


def suppression(tenant, address=ADDRESS):
    return Suppression.objects.for_tenant(tenant).filter(address=address).first()


@pytest.fixture
def hook(client, tenant, provider):
    return make_hook(client, tenant, provider)


@pytest.fixture
def sample(provider):
    return SAMPLES[provider]


@pytest.fixture
def delivery(tenant, sample):
    return sent_delivery(tenant, sample.message_id, ADDRESS)


# What a report changes -------------------------------------------------------------------------


def test_delivered_marks_the_delivery_delivered(hook, sample, delivery, tenant):
    response = hook.post(sample.delivered(sample.message_id, ADDRESS))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_reply.startswith(f"{hook.endpoint.get_provider_display()}: delivered")
    assert suppression(tenant) is None
    hook.endpoint.refresh_from_db()
    assert hook.endpoint.last_event_at is not None


def test_a_hard_bounce_marks_it_bounced_and_suppresses_the_address(hook, sample, delivery, tenant):
    response = hook.post(sample.bounced(sample.message_id, ADDRESS))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED
    assert "hard bounce" in delivery.last_reply
    entry = suppression(tenant)
    assert entry.reason == SuppressionReason.BOUNCED
    assert entry.detail.startswith(f"{hook.endpoint.get_provider_display()} reported a hard bounce")
    audit = AuditEntry.objects.get(action="suppression.reported")
    assert audit.tenant == tenant
    assert audit.changes["addresses"] == {ADDRESS: "Bounced (hard bounce)"}


@pytest.mark.parametrize("provider", WITH_SOFT_BOUNCES)
def test_a_soft_bounce_marks_it_bounced_but_suppresses_nothing(hook, sample, delivery, tenant):
    assert hook.post(sample.soft_bounce(sample.message_id, ADDRESS)).status_code == 200

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED
    assert "soft bounce" in delivery.last_reply
    assert suppression(tenant) is None


def test_a_complaint_marks_it_and_suppresses_the_address(hook, sample, delivery, tenant):
    assert hook.post(sample.complained(sample.message_id, ADDRESS)).status_code == 200

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.COMPLAINED
    assert suppression(tenant).reason == SuppressionReason.COMPLAINED


@pytest.mark.parametrize("provider", WITH_UNSUBSCRIBES)
def test_an_unsubscribe_marks_it_and_suppresses_the_address(hook, sample, delivery, tenant):
    assert hook.post(sample.unsubscribed(sample.message_id, ADDRESS)).status_code == 200

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.UNSUBSCRIBED
    entry = suppression(tenant)
    assert entry.reason == SuppressionReason.UNSUBSCRIBED
    assert entry.detail == f"Unsubscribed through {hook.endpoint.get_provider_display()}"


def test_reports_are_taken_during_maintenance(hook, sample, delivery, system_admin):
    """Providers do not wait for maintenance to end: their reports still count."""
    maintenance_update(actor=system_admin, is_on=True, message="Upgrading.")

    response = hook.post(sample.delivered(sample.message_id, ADDRESS))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_a_late_delivered_report_never_hides_a_bounce(hook, sample, delivery):
    hook.post(sample.bounced(sample.message_id, ADDRESS))
    assert hook.post(sample.delivered(sample.message_id, ADDRESS)).status_code == 200

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED


def test_an_unknown_message_is_acknowledged_and_ignored(hook, sample, delivery, tenant):
    unknown = "1111111111111111" if hook.endpoint.provider == Provider.MAILJET else "unknown-id"

    response = hook.post(sample.bounced(unknown, ADDRESS))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert not Suppression.objects.exists()


def test_a_report_for_another_recipient_of_the_message_leaves_this_one(hook, sample, delivery):
    assert hook.post(sample.bounced(sample.message_id, "someone@else.example")).status_code == 200

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert not Suppression.objects.exists()


# Tenants -------------------------------------------------------------------------------------


def test_another_tenants_endpoint_cannot_touch_this_tenants_deliveries(
    client, provider, sample, delivery, other_tenant
):
    theirs = make_hook(client, other_tenant, provider)

    response = theirs.post(sample.bounced(sample.message_id, ADDRESS))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_reply) == (DeliveryStatus.SENT, "250 Accepted")
    assert not Suppression.objects.exists()


def test_the_same_message_id_at_two_tenants_changes_only_the_posting_endpoints(
    hook, sample, delivery, other_tenant
):
    theirs = sent_delivery(other_tenant, sample.message_id, ADDRESS)

    hook.post(sample.complained(sample.message_id, ADDRESS))

    delivery.refresh_from_db()
    theirs.refresh_from_db()
    assert delivery.status == DeliveryStatus.COMPLAINED
    assert theirs.status == DeliveryStatus.SENT
    assert not Suppression.objects.for_tenant(other_tenant).exists()


# Refusals ------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_401_and_audited(hook, sample, delivery, tenant):
    response = hook.post(sample.bounced(sample.message_id, ADDRESS), auth="guessed")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert not Suppression.objects.exists()
    (entry,) = refusals()
    assert entry.tenant == tenant
    assert entry.target_id == str(hook.endpoint.pk)
    assert entry.changes["reason"] == "Wrong user name or password."
    assert "guessed" not in json.dumps(entry.changes)


def test_missing_credentials_get_the_challenge_without_an_audit_entry(hook, sample, delivery):
    # Amazon SNS always asks once without credentials, and again with them after this 401.
    response = hook.post(sample.delivered(sample.message_id, ADDRESS), auth=None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="Postmaster delivery webhook"'
    assert refusals() == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_a_flood_of_bad_posts_writes_one_audit_entry_per_window(hook, sample):
    for _ in range(5):
        assert hook.post(sample.delivered(sample.message_id, ADDRESS), auth="x").status_code == 401
    assert len(refusals()) == 1

    cache.delete(f"webhooks:refusal-window:{hook.endpoint.pk}")  # the window is over
    hook.post(sample.delivered(sample.message_id, ADDRESS), auth="x")

    latest = refusals()[0]
    assert len(refusals()) == 2
    assert latest.changes["earlier refusals not logged"] == 4


@pytest.mark.parametrize("provider", [Provider.MAILGUN])
def test_a_bad_mailgun_signature_is_refused_and_audited(hook, delivery, tenant):
    payload = p.mailgun_sign(p.mailgun_bounced(SAMPLES[Provider.MAILGUN].message_id, ADDRESS), "x")

    response = hook.post(payload)

    assert response.status_code == 400
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert not Suppression.objects.exists()
    (entry,) = refusals()
    assert "signature" in entry.changes["reason"]
    assert entry.tenant == tenant


@pytest.mark.parametrize("provider", [Provider.MAILGUN])
def test_a_mailgun_post_without_signature_is_refused(hook, delivery):
    payload = {**p.mailgun_bounced(SAMPLES[Provider.MAILGUN].message_id, ADDRESS)}
    payload["signature"] = {}

    assert hook.post(payload).status_code == 400
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


@pytest.mark.parametrize("provider", [Provider.SENDGRID])
def test_a_signed_sendgrid_webhook_checks_every_posts_signature(client, tenant, delivery):
    private, verification_key = p.sendgrid_key_pair()
    hook = make_hook(client, tenant, Provider.SENDGRID, signing_key=verification_key)
    message_id = SAMPLES[Provider.SENDGRID].message_id
    body = json.dumps([p.sendgrid_bounced(message_id, ADDRESS)])

    unsigned = hook.post(json.loads(body))
    forged = hook.post(json.loads(body), headers=p.sendgrid_signature_headers(private, "[]"))
    assert (unsigned.status_code, forged.status_code) == (400, 400)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert len(refusals()) == 1  # the second within the window is counted, not logged

    signed = hook.post(json.loads(body), headers=p.sendgrid_signature_headers(private, body))
    assert signed.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED


def test_a_revoked_endpoint_is_gone(hook, sample, delivery, tenant_admin):
    webhook_endpoint_revoke(endpoint=hook.endpoint, actor=tenant_admin)

    assert hook.post(sample.bounced(sample.message_id, ADDRESS)).status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_the_url_must_name_the_endpoints_provider(client, hook, provider):
    other = Provider.POSTMARK if provider != Provider.POSTMARK else Provider.BREVO
    url = hook.url.replace(f"/{provider}/", f"/{other}/")
    assert client.post(url, data="{}", content_type="application/json").status_code == 404
    assert client.get(hook.url).status_code == 405


def test_an_unreadable_post_is_a_400_not_a_server_error(hook):
    raw = f"{hook.endpoint.username}:{hook.password}".encode()
    response = hook.client.post(
        hook.url,
        data="not json",
        content_type="application/json",
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )
    assert response.status_code == 400


# Batches -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", [Provider.SENDGRID, Provider.MAILJET])
@pytest.mark.parametrize("size", [2, 40])
def test_a_batch_costs_the_same_queries_whatever_its_size(
    hook, provider, size, tenant, django_assert_max_num_queries
):
    sample = SAMPLES[provider]
    reports = []
    for n in range(size):
        message_id = str(19421777835146490 + n) if provider == Provider.MAILJET else f"id-{n}"
        address = f"person{n}@example.com"
        sent_delivery(tenant, message_id, address)
        report = sample.bounced if n % 2 else sample.complained
        reports.append(report(message_id, address))
    reports.append(sample.delivered("unknown" if provider != Provider.MAILJET else "1", ADDRESS))

    # Endpoint, deliveries, their update, suppressions read and written, one audit
    # entry, the endpoint's last event, and the transaction's savepoints.
    with django_assert_max_num_queries(12):
        assert hook.post(reports).status_code == 200

    statuses = set(Delivery.objects.for_tenant(tenant).values_list("status", flat=True))
    assert statuses == {DeliveryStatus.BOUNCED, DeliveryStatus.COMPLAINED}
    assert Suppression.objects.for_tenant(tenant).count() == size


# Amazon SNS subscriptions ------------------------------------------------------------------------


class _SnsStandIn(BaseHTTPRequestHandler):
    """Amazon SNS's confirmation URL, on 127.0.0.1."""

    def do_GET(self):
        self.server.requested.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<ConfirmSubscriptionResponse/>")

    def log_message(self, *args):
        pass


@pytest.fixture
def sns_stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SnsStandIn)
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _confirmation(url: str) -> dict:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": url,
        "Timestamp": "2012-04-26T20:45:04.751Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQ",
    }


@pytest.mark.parametrize("provider", [Provider.AMAZON_SES])
def test_an_sns_subscription_is_confirmed_through_its_subscribe_url(
    hook, sns_stand_in, monkeypatch, tenant
):
    base = f"http://127.0.0.1:{sns_stand_in.server_port}/"
    # Only Amazon's own HTTPS endpoints are opened; here, the stand-in's address,
    # which the network guard lets through for a tenant allowed private addresses.
    monkeypatch.setattr(receivers, "SNS_SUBSCRIBE_URL", receivers.re.compile("^" + base))
    allow_private_network(tenant)

    response = hook.post(_confirmation(base + "?Action=ConfirmSubscription&Token=2336412f"))

    assert response.status_code == 200
    assert sns_stand_in.requested == ["/?Action=ConfirmSubscription&Token=2336412f"]
    entry = AuditEntry.objects.get(action="webhook_endpoint.sns_confirmed")
    assert entry.tenant == tenant
    assert entry.changes == {"topic": "arn:aws:sns:us-west-2:123456789012:MyTopic"}


@pytest.mark.parametrize("provider", [Provider.AMAZON_SES])
def test_a_subscribe_url_resolving_to_an_internal_address_is_never_opened(
    hook, sns_stand_in, monkeypatch
):
    # A name under Amazon's pattern that resolves to 127.0.0.1, for a tenant
    # not allowed private addresses: the network guard refuses it.
    base = f"http://sns.evil.amazonaws.com:{sns_stand_in.server_port}/"
    monkeypatch.setattr(receivers, "SNS_SUBSCRIBE_URL", receivers.re.compile("^" + base))
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "sns.evil.amazonaws.com":
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    response = hook.post(_confirmation(base + "?Action=ConfirmSubscription&Token=2336412f"))

    assert response.status_code == 502
    assert sns_stand_in.requested == []
    assert not AuditEntry.objects.filter(action="webhook_endpoint.sns_confirmed").exists()


@pytest.mark.parametrize("provider", [Provider.AMAZON_SES])
def test_a_subscribe_url_that_is_not_amazons_is_never_opened(hook, sns_stand_in):
    url = f"http://127.0.0.1:{sns_stand_in.server_port}/?Action=ConfirmSubscription"

    response = hook.post(_confirmation(url))

    assert response.status_code == 400
    assert sns_stand_in.requested == []
    assert "SubscribeURL" in refusals()[0].changes["reason"]


@pytest.mark.parametrize("provider", [Provider.AMAZON_SES])
def test_a_confirmation_without_credentials_is_challenged_and_not_opened(hook, sns_stand_in):
    url = f"http://127.0.0.1:{sns_stand_in.server_port}/"
    assert hook.post(_confirmation(url), auth=None).status_code == 401
    assert sns_stand_in.requested == []


# Bodies that break parsers, and stale or replayed Mailgun signatures ------------------------


def _deeply_nested(depth: int = 100_000) -> str:
    return '{"signature": {}, "event-data": ' + "[" * depth + "]" * depth + "}"


def test_a_deeply_nested_body_with_valid_credentials_is_a_400_in_words(hook, delivery):
    raw = f"{hook.endpoint.username}:{hook.password}".encode()
    response = hook.client.post(
        hook.url,
        data=_deeply_nested(),
        content_type="application/json",
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )

    assert response.status_code == 400
    text = response.content.decode()
    assert "could not be read" in text
    assert "Traceback" not in text
    assert "Recursion" not in text
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


@pytest.mark.parametrize("provider", [Provider.MAILGUN])
def test_a_correctly_signed_deeply_nested_mailgun_post_is_a_400(hook, delivery):
    # Valid credentials and a valid signature: only the depth is wrong.
    payload = p.mailgun_sign({}, MAILGUN_SIGNING_KEY)
    body = json.dumps(payload)[:-1] + ', "event-data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    raw = f"{hook.endpoint.username}:{hook.password}".encode()
    response = hook.client.post(
        hook.url,
        data=body,
        content_type="application/json",
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.content.decode()


@pytest.mark.parametrize("provider", [Provider.MAILGUN])
@pytest.mark.parametrize("age", [30 * 24 * 3600, 16 * 60, -16 * 60])
def test_a_correctly_signed_mailgun_post_with_a_stale_timestamp_is_refused_and_audited(
    hook, delivery, tenant, age
):
    message_id = SAMPLES[Provider.MAILGUN].message_id
    signed_then = int(time.time()) - age
    payload = p.mailgun_sign(
        p.mailgun_bounced(message_id, ADDRESS), MAILGUN_SIGNING_KEY, timestamp=signed_then
    )

    response = hook.post(payload)

    assert response.status_code == 400
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert not Suppression.objects.exists()
    (entry,) = refusals()
    assert "stale" in entry.changes["reason"]
    assert entry.tenant == tenant


@pytest.mark.parametrize("provider", [Provider.MAILGUN])
def test_a_mailgun_post_signed_minutes_ago_is_taken(hook, delivery):
    payload = p.mailgun_sign(
        p.mailgun_bounced(SAMPLES[Provider.MAILGUN].message_id, ADDRESS),
        MAILGUN_SIGNING_KEY,
        timestamp=int(time.time()) - 10 * 60,
    )
    assert hook.post(payload).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.BOUNCED


@pytest.mark.parametrize("provider", [Provider.MAILGUN])
def test_a_replayed_mailgun_post_is_refused_and_audited(hook, delivery, tenant):
    message_id = SAMPLES[Provider.MAILGUN].message_id
    delivered = p.mailgun_sign(p.mailgun_delivered(message_id, ADDRESS), MAILGUN_SIGNING_KEY)
    assert hook.post(delivered).status_code == 200
    # The same signature (timestamp and token) on another report, seconds later.
    bounced = {**p.mailgun_bounced(message_id, ADDRESS), "signature": delivered["signature"]}

    assert hook.post(bounced).status_code == 400
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    (entry,) = refusals()
    assert "already used" in entry.changes["reason"]
