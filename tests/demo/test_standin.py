"""The stand-in relays to SMTP for the demo, and the demo's Initech is on Postmark through it."""

import socket

import pytest
from django.core.mail import EmailMessage
from django.core.management import call_command

from apps.connections.catalog import Provider
from apps.connections.models import ProviderSettings
from apps.connections.providers import (
    ProviderConnection,
    ProviderSendError,
    send_provider_test_email,
)
from apps.connections.selectors import provider_settings_for
from apps.demo.standin import ProviderStandin
from apps.tenancy.models import Membership, Role
from tests.connections.providers.factories import ProviderSettingsFactory
from tests.smtp_servers import smtp_server


@pytest.mark.parametrize("provider", list(Provider.values))
def test_the_standin_relays_each_accepted_message_to_an_smtp_server(provider):
    with smtp_server() as server, ProviderStandin(relay=(server.host, server.port)) as standin:
        settings = ProviderSettingsFactory.build(provider=provider, api_url=standin.url)
        result = send_provider_test_email(
            settings, to="ops@example.org", subject="Relayed", body="Through the stand-in."
        )
        assert result.ok
    [message] = server.messages
    assert message.rcpt_tos == ["ops@example.org"]
    assert message.mail_from == "notify@example.com"
    assert b"Subject: Relayed" in message.content
    assert b"Through the stand-in." in message.content


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nobody listens there


@pytest.mark.parametrize("provider", list(Provider.values))
def test_the_standin_answers_a_failure_when_it_cannot_relay(provider):
    with ProviderStandin(relay=("127.0.0.1", _unused_port())) as standin:
        settings = ProviderSettingsFactory.build(provider=provider, api_url=standin.url)
        result = send_provider_test_email(
            settings, to="ops@example.org", subject="Relayed", body="Through the stand-in."
        )
        assert not result.ok
        # As the provider's own failure: not sent, worth trying again (a delivery is retried).
        message = EmailMessage("Hi", "Body", settings.from_header, ["ops@example.org"])
        with ProviderConnection(settings) as connection, pytest.raises(ProviderSendError) as caught:
            connection.send(message)
    assert caught.value.classification.transient
    assert caught.value.classification.status == 503


def test_the_demo_puts_initech_on_postmark_through_the_standin(db):
    call_command("seed_demo")
    call_command("seed_demo")
    row = ProviderSettings.objects.get()
    assert (row.tenant.slug, row.provider, row.api_url) == (
        "initech",
        "postmark",
        "http://127.0.0.1:8025/",
    )
    assert provider_settings_for(tenant_id=row.tenant_id) == row
    assert Membership.objects.filter(
        tenant=row.tenant, user__email="ivy@initech.test", role=Role.TENANT_ADMIN
    ).exists()
    with ProviderStandin() as standin:
        row.api_url = standin.url
        assert send_provider_test_email(row, to="ivy@initech.test", subject="s", body="b").ok
