"""The README example, end to end: the demo token posts an event, the mail reaches the catcher."""

import email
import email.policy

import pytest
from django.core.management import call_command

from apps.delivery.models import Delivery, DeliveryStatus
from apps.demo.management.commands.seed_demo import DEMO_API_TOKEN
from apps.mailcatcher.models import CaughtMessage
from tests.mailcatcher.fixtures import mail_catcher  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager")]

README_EVENT = {
    "pipeline": "deploy-prod",
    "event_type": "pipeline_failed",
    "level": "error",
    "run_id": "4711",
    "run_url": "https://ci.example.com/checkout/deploy-prod/runs/4711",
    "message": "Migration 0042 failed.",
    "idempotency_key": "deploy-prod-4711-failed",
}


def test_the_readme_curl_example_reaches_the_mail_catcher(client, settings, mail_catcher):  # noqa: F811
    settings.MAILCATCHER_PORT = mail_catcher.port
    call_command("seed_demo")

    response = client.post(
        "/api/v1/events",
        README_EVENT,
        content_type="application/json",
        headers={"Authorization": f"Bearer {DEMO_API_TOKEN}"},
    )

    assert response.status_code == 202, response.content
    # The rule "Production failures" reaches the groups Release managers and On-call.
    expected = {"releases@acme.test", "bob@acme.test", "oncall@acme.test"}
    deliveries = Delivery.objects.filter(event_id=response.json()["id"])
    assert {d.address for d in deliveries} == expected
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    caught = CaughtMessage.objects.all()
    assert {address for m in caught for address in m.envelope_recipients} == expected
    message = email.message_from_bytes(bytes(caught[0].raw), policy=email.policy.default)
    assert "Pipeline failed" in message["Subject"]
    assert message["From"].addresses[0].display_name == "Postmaster"
    # One-click unsubscribe (RFC 8058) and both parts, as the catcher received them.
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"]
    assert link.startswith(f"<{settings.SITE_URL}/unsubscribe/")
    assert link.endswith("/>")
    assert client.get(link[len(settings.SITE_URL) + 1 : -1]).status_code == 200  # the confirm page
    assert message.get_body(("plain",)).get_content().strip()
    assert "<html" in message.get_body(("html",)).get_content().lower()

    status = client.get(
        f"/api/v1/events/{response.json()['id']}",
        headers={"Authorization": f"Bearer {DEMO_API_TOKEN}"},
    )
    assert status.json()["counts"]["sent"] == 3
