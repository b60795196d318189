"""The notification email as a recipient's mail program sees it, received by a real server."""

import email
import email.policy

import pytest

from apps.delivery.models import DeliveryStatus
from apps.pipelines.models import EventType, Level
from tests.delivery.engine import deliver, make_event
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import ACCEPT, message_id

pytestmark = pytest.mark.django_db


def parse(content: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(content, policy=email.policy.default)


@pytest.fixture
def rule(deploy_prod):
    return NotificationRuleFactory(
        pipeline=deploy_prod,
        name="Prod failures",
        addresses=["ann@payments.example"],
        event_types=list(EventType.values),
    )


def test_a_multipart_message_that_says_what_happened_and_why(mail_server, sink, rule, deploy_prod):
    (delivery,) = deliver(make_event(deploy_prod))

    (content,) = sink.accepted
    message = parse(content)
    assert message["Subject"] == "[Payments / deploy-prod] Pipeline failed"
    assert message["From"].addresses[0].display_name == "Payments Alerts"
    assert message["From"].addresses[0].addr_spec == "alerts@payments.example"
    assert message["To"] == "ann@payments.example"
    assert message["Message-ID"] == delivery.message_id
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    run = "https://ci.example.com/payments/deploy-prod/runs/4711"
    reason = (
        "You receive this because your address is listed in the rule “Prod failures” "
        "of pipeline “deploy-prod”."
    )
    for part in (text, html):
        assert "Pipeline Deploy prod failed" in part
        assert "Migration 0042 failed." in part
        assert reason in part
    assert f"Open the run: {run}" in text
    assert f'href="{run}"' in html
    assert delivery.status == DeliveryStatus.SENT


def test_stage_events_name_the_stage_and_approvals_ask_for_action(
    mail_server, sink, rule, deploy_prod
):
    deliver(make_event(deploy_prod, event_type=EventType.STAGE_FAILED, stage="migrate"))
    deliver(make_event(deploy_prod, event_type=EventType.APPROVAL_REQUESTED, level=Level.WARNING))

    stage, approval = (parse(content) for content in sink.accepted)
    assert stage["Subject"] == "[Payments / deploy-prod] Stage failed: migrate"
    assert (
        "Stage “migrate” of pipeline Deploy prod failed" in stage.get_body(("plain",)).get_content()
    )
    assert approval["Subject"] == "[Payments / deploy-prod] Approval requested"
    assert "approve or reject" in approval.get_body(("plain",)).get_content()
    assert "Approve or reject on the run's page" in approval.get_body(("html",)).get_content()


def test_what_the_pipeline_sent_is_escaped_in_the_html(mail_server, sink, rule, deploy_prod):
    deliver(make_event(deploy_prod, message="<script>alert(1)</script> & more"))

    message = parse(sink.accepted[0])
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"
        in message.get_body(("html",)).get_content()
    )
    assert "<script>alert(1)</script> & more" in message.get_body(("plain",)).get_content()


def test_the_message_id_stays_the_same_when_a_delivery_is_retried(
    mail_server, sink, rule, deploy_prod
):
    sink.script = lambda number, content: "451 4.3.0 Try again later" if number == 0 else ACCEPT

    (delivery,) = deliver(make_event(deploy_prod))

    assert [message_id(content) for content in sink.offered] == [delivery.message_id] * 2
    assert delivery.attempt_count == 2
    assert delivery.message_id.endswith("@payments.example>")


def test_every_recipient_gets_its_own_message_id_and_reason(tenant, mail_server, sink, deploy_prod):
    NotificationRuleFactory(pipeline=deploy_prod, name="A", addresses=["a@x.example"])
    NotificationRuleFactory(
        pipeline=None, project=deploy_prod.project, name="B", addresses=["b@x.example"]
    )

    deliveries = deliver(make_event(deploy_prod))

    received = {parse(c)["To"]: parse(c) for c in sink.accepted}
    assert {d.address: d.message_id for d in deliveries} == {
        to: m["Message-ID"] for to, m in received.items()
    }
    assert (
        "rule “B” of project “Payments”"
        in received["b@x.example"].get_body(("plain",)).get_content()
    )
