"""The delivery engine through the network guard (apps/connections/netguard.py).

What the engine records on a tenant's deliveries (the tenant's delivery log)
is what a tenant may be told: no remote body for an API URL it chose, the
same words for every failure to connect, and no connection at all where the
guard refuses. Real servers on 127.0.0.1 (tests/connections/providers/test_netguard.py).
"""

import json
import socket

import pytest

from apps.connections.catalog import Provider
from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from apps.delivery.services import deliveries_send, event_dispatch
from tests.connections.providers.factories import ProviderSettingsFactory
from tests.connections.providers.test_netguard import CANARY, listener, web_server
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import make_event
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import HOST, closed_port, greeting_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(deploy_prod):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["ann@payments.example"])
    return make_event(deploy_prod)


def _send_once(event) -> list[str]:
    event_dispatch(event_id=event.pk)
    deliveries_send(tenant_id=event.tenant_id)
    return list(DeliveryAttempt.objects.values_list("reply", flat=True))


def test_the_engine_never_connects_to_a_name_resolving_to_loopback(tenant, event, monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "evil.postmarkapp.com":
            return real(HOST, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with listener() as port:
        ProviderSettingsFactory(
            tenant=tenant,
            provider=Provider.POSTMARK,
            api_url=f"https://evil.postmarkapp.com:{port.port}/",
            private_network=False,
        )
        replies = _send_once(event)
        assert not port.reached()

    assert replies == ["The provider's API could not be reached."]


def test_the_delivery_log_never_shows_a_remote_body(tenant, event):
    body = json.dumps({"message": CANARY}).encode()
    with web_server(500, body) as port:
        ProviderSettingsFactory(
            tenant=tenant, provider=Provider.POSTMARK, api_url=f"http://{HOST}:{port}/"
        )
        replies = _send_once(event)

    assert replies
    assert all(CANARY not in reply for reply in replies)
    assert replies[0] == "HTTP 500: The provider's API answered with an error."
    delivery = event.deliveries.get()
    assert delivery.status != DeliveryStatus.SENT
    assert CANARY not in delivery.last_reply


def test_a_closed_port_is_recorded_in_the_same_words(tenant, event):
    ProviderSettingsFactory(
        tenant=tenant, provider=Provider.POSTMARK, api_url=f"http://{HOST}:{closed_port()}/"
    )

    assert _send_once(event) == ["The provider's API could not be reached."]


def test_a_foreign_service_on_a_tenants_smtp_port_is_recorded_as_unreachable(tenant, event):
    with greeting_server(b"554 5.3.2 db-master-7 says go away\r\n") as port:
        SmtpSettingsFactory(tenant=tenant, host=HOST, port=port, security="none")
        replies = _send_once(event)

    assert replies
    assert all("db-master" not in reply and reply != "None" for reply in replies)
    assert replies[0].startswith("Postmaster could not connect to a mail server at 127.0.0.1")
