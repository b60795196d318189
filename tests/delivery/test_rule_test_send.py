"""A rule's Test button: a sample event to the rule's real recipients, now, said in plain words."""

import email
import email.policy

import pytest

from apps.audit.models import AuditEntry
from apps.connections.models import SmtpSettings
from apps.connections.services import TestEmailLimitError, smtp_test_email_limit_check
from apps.delivery.models import Delivery, Event
from apps.delivery.services import rule_test_send
from apps.pipelines.models import EventType
from apps.preferences.models import NotificationPreference, Suppression
from tests.delivery.engine import add_members
from tests.factories import NotificationRuleFactory, UserGroupFactory
from tests.smtp_servers import QUEUED_REPLY, closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def rule(tenant, deploy_prod):
    group = UserGroupFactory(
        tenant=tenant, name="Release managers", alias_addresses=[], notify_all_members=True
    )
    (ann,) = add_members(group, "ann@payments.example")
    NotificationPreference.objects.create(tenant=tenant, user=ann, level="none")
    add_members(group, "bob@payments.example")
    Suppression.objects.create(tenant=tenant, address="gone@payments.example", reason="refused")
    return NotificationRuleFactory(
        pipeline=deploy_prod,
        name="Prod failures",
        addresses=["oncall@payments.example", "unknown@payments.example", "gone@payments.example"],
        groups=[group],
        event_types=[EventType.STAGE_FAILED, EventType.PIPELINE_FAILED],
    )


def test_the_sample_goes_to_each_real_recipient_and_says_what_happened(
    tenant_admin, rule, mail_server, sink
):
    sink.refuse = {"unknown@payments.example": "550 5.1.1 User unknown"}

    result = rule_test_send(rule=rule, actor=tenant_admin)

    assert result.message == "The test was sent to 2 of 5 recipients."
    assert not result.ok
    assert {r.address: (r.sent, r.message) for r in result.addresses} == {
        "oncall@payments.example": (True, f"Sent: 127.0.0.1 answered “{QUEUED_REPLY}”."),
        "unknown@payments.example": (
            False,
            "The server refused the recipient unknown@payments.example. "
            "The server answered: 550 5.1.1 User unknown",
        ),
        "gone@payments.example": (
            False,
            "Not sent: the address is on the suppression list (Refused permanently).",
        ),
        "ann@payments.example": (False, "Not sent: this person turned these notifications off."),
        "bob@payments.example": (True, f"Sent: 127.0.0.1 answered “{QUEUED_REPLY}”."),
    }
    message = email.message_from_bytes(sink.accepted[0], policy=email.policy.default)
    assert message["Subject"] == "[Test] [Payments / deploy-prod] Stage failed: Sample stage"
    assert "This is a test of a notification rule" in message.get_body(("plain",)).get_content()
    assert sink.connections == 1
    # A sample, not a pipeline's event: nothing stored but the audit entry.
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()
    entry = AuditEntry.objects.get(action="notification_rule.test_sent")
    assert (entry.actor, entry.target_id, entry.changes) == (
        tenant_admin,
        str(rule.pk),
        {"sent": 2, "not sent": 3},
    )


def test_all_sent(tenant_admin, deploy_prod, mail_server):
    rule = NotificationRuleFactory(pipeline=deploy_prod, addresses=["a@x.example"])

    result = rule_test_send(rule=rule, actor=tenant_admin)

    assert (result.ok, result.message) == (True, "The test was sent.")


def test_a_server_that_cannot_be_reached_is_explained_with_the_fix(tenant_admin, rule, mail_server):
    SmtpSettings.objects.filter(tenant=None).update(port=(port := closed_port()))

    result = rule_test_send(rule=rule, actor=tenant_admin)

    sent_ones = [r for r in result.addresses if r.address.startswith(("oncall", "bob", "unknown"))]
    assert {r.sent for r in sent_ones} == {False}
    assert sent_ones[0].message.startswith(
        f"Not sent: 127.0.0.1 refused the connection on port {port}"
    )
    assert "Check the SMTP host and port" in sent_ones[0].message


def test_a_rule_without_recipients_or_without_settings_sends_nothing(
    tenant_admin, deploy_prod, rule
):
    empty = NotificationRuleFactory(pipeline=deploy_prod, addresses=[])

    assert rule_test_send(rule=empty, actor=tenant_admin).message == (
        "Nothing was sent: this rule has no recipients."
    )
    no_settings = rule_test_send(rule=rule, actor=tenant_admin)
    assert no_settings.message.startswith("Nothing was sent. No SMTP settings")
    assert AuditEntry.objects.filter(action="notification_rule.test_sent").count() == 2


def test_a_project_rule_without_pipelines_uses_a_sample_pipeline(
    tenant_admin, payments, mail_server, sink
):
    rule = NotificationRuleFactory(pipeline=None, project=payments, addresses=["a@x.example"])

    assert rule_test_send(rule=rule, actor=tenant_admin).ok

    message = email.message_from_bytes(sink.accepted[0], policy=email.policy.default)
    assert message["Subject"] == "[Test] [Payments / sample] Pipeline failed"


# The cap per Test, and the hourly test-email limits -----------------------------------------


def test_a_test_mails_at_most_the_cap_and_says_so(
    tenant_admin, deploy_prod, mail_server, sink, settings
):
    settings.RULE_TEST_MAX_RECIPIENTS = 3
    Suppression.objects.create(
        tenant=deploy_prod.tenant, address="gone@x.example", reason="refused"
    )
    addresses = ["gone@x.example", *(f"p{n}@x.example" for n in range(7))]
    rule = NotificationRuleFactory(pipeline=deploy_prod, addresses=addresses)

    result = rule_test_send(rule=rule, actor=tenant_admin)

    assert len(sink.accepted) == 3
    assert [r.address for r in result.addresses if r.sent] == [
        "p0@x.example",
        "p1@x.example",
        "p2@x.example",
    ]
    # The suppressed one is still listed, and costs nothing.
    assert "gone@x.example" in [r.address for r in result.addresses]
    assert result.hint == (
        "A test mails at most 3 recipients: the other 4 of this rule's recipients were not "
        "mailed. They get the rule's real notifications as usual."
    )
    entry = AuditEntry.objects.get(action="notification_rule.test_sent")
    assert entry.changes["not mailed (over the test's cap)"] == 4


def test_the_default_cap_is_fifty(settings):
    assert settings.RULE_TEST_MAX_RECIPIENTS == 50


def test_a_test_counts_against_the_users_hourly_test_email_limit(
    tenant_admin, deploy_prod, mail_server, sink, settings
):
    settings.TEST_EMAIL_LIMIT_PER_USER_HOUR = 2
    rule = NotificationRuleFactory(pipeline=deploy_prod, addresses=["a@x.example"])
    for _ in range(2):
        assert rule_test_send(rule=rule, actor=tenant_admin).ok

    refused = rule_test_send(rule=rule, actor=tenant_admin)

    assert not refused.ok
    assert refused.message.startswith("Nothing was sent. You have sent 2 test emails")
    assert "Try again in" in refused.message
    assert len(sink.accepted) == 2
    assert AuditEntry.objects.filter(action="notification_rule.test_sent").count() == 2


def test_rule_tests_and_settings_test_emails_share_the_tenants_limit(
    tenant_admin, tenant, deploy_prod, mail_server, sink, settings
):
    settings.TEST_EMAIL_LIMIT_PER_TENANT_HOUR = 2
    # Another admin's test email from the settings page counts for the tenant too.
    AuditEntry.objects.create(action="smtp_settings.test_sent", tenant=tenant, changes={})
    rule = NotificationRuleFactory(pipeline=deploy_prod, addresses=["a@x.example"])
    assert rule_test_send(rule=rule, actor=tenant_admin).ok

    refused = rule_test_send(rule=rule, actor=tenant_admin)

    assert refused.message.startswith(f"Nothing was sent. {tenant} has sent 2 test emails")
    assert len(sink.accepted) == 1
    # And a rule's Test counts against the settings pages' test emails.
    with pytest.raises(TestEmailLimitError):
        smtp_test_email_limit_check(user=tenant_admin, tenant=tenant)


def test_a_mandatory_rules_test_reaches_a_shared_address_someone_unsubscribed(
    tenant, tenant_admin, deploy_prod, mail_server, sink
):
    Suppression.objects.create(tenant=tenant, address="ops@x.example", reason="unsubscribed")
    optional = NotificationRuleFactory(pipeline=deploy_prod, addresses=["ops@x.example"])
    mandatory = NotificationRuleFactory(
        pipeline=deploy_prod, addresses=["ops@x.example"], mandatory=True
    )

    assert not rule_test_send(rule=optional, actor=tenant_admin).addresses[0].sent
    assert rule_test_send(rule=mandatory, actor=tenant_admin).addresses[0].sent
    assert len(sink.accepted) == 1
