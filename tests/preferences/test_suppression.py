"""Addresses refused for good go on the suppression list; the engine then skips them."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.delivery.models import DeliveryStatus
from apps.delivery.sending import refuses_address
from apps.delivery.services import rule_test_send
from apps.preferences.models import Suppression, SuppressionReason
from apps.preferences.suppression import suppressions_add_refused
from tests.delivery.engine import deliver, make_event
from tests.factories import NotificationRuleFactory

pytestmark = pytest.mark.django_db

UNKNOWN = "550 5.1.1 Recipient address rejected: User unknown"


@pytest.fixture
def rule(deploy_prod):
    return NotificationRuleFactory(
        pipeline=deploy_prod, addresses=["ann@x.example", "gone@x.example", "old@x.example"]
    )


def test_a_5xx_to_rcpt_lists_the_address_with_the_servers_reply(
    mail_server, sink, tenant, deploy_prod, rule
):
    sink.refuse = {"gone@x.example": UNKNOWN, "old@x.example": "553 Mailbox name not allowed"}

    deliveries = deliver(make_event(deploy_prod))

    assert {d.address: d.status for d in deliveries} == {
        "ann@x.example": DeliveryStatus.SENT,
        "gone@x.example": DeliveryStatus.FAILED,
        "old@x.example": DeliveryStatus.FAILED,
    }
    listed = {s.address: s for s in Suppression.objects.for_tenant(tenant)}
    assert sorted(listed) == ["gone@x.example", "old@x.example"]
    assert listed["gone@x.example"].reason == SuppressionReason.REFUSED
    assert listed["gone@x.example"].detail == f"The mail server answered: {UNKNOWN}"
    assert listed["old@x.example"].detail.endswith(": 553 Mailbox name not allowed")
    # The batch's refusals at once, in one audit entry.
    (entry,) = AuditEntry.objects.filter(action="suppression.refused")
    assert (entry.actor, entry.tenant) == (None, tenant)
    assert entry.changes == {"addresses": ["gone@x.example", "old@x.example"]}


def test_the_next_event_skips_the_address_and_the_log_shows_it_suppressed(
    mail_server, sink, client, tenant, tenant_admin, deploy_prod, rule
):
    sink.refuse = {"gone@x.example": UNKNOWN}
    deliver(make_event(deploy_prod))
    sink.refuse = {}

    deliveries = deliver(make_event(deploy_prod, run_id="4712"))

    gone = next(d for d in deliveries if d.address == "gone@x.example")
    assert gone.status == DeliveryStatus.SUPPRESSED
    assert gone.last_reply == (
        "Not sent: the address is on the suppression list (Refused permanently)."
    )
    assert b"To: gone@x.example" not in b"".join(sink.offered[-2:])
    client.force_login(tenant_admin)
    log = client.get(
        reverse("tenancy:delivery:log", args=[tenant.slug]),
        {"recipient": "gone@", "status": "suppressed"},
    )
    assert [d.pk for d in log.context["page"]] == [gone.pk]


def test_a_refusal_that_blames_the_settings_lists_nobody(
    mail_server, sink, tenant, deploy_prod, rule
):
    sink.refuse = {
        "gone@x.example": "554 5.7.1 Relay access denied",
        "old@x.example": "550 5.7.1 Relay access denied",
    }

    deliver(make_event(deploy_prod))

    assert not Suppression.objects.exists()


def test_an_address_already_listed_keeps_its_entry(mail_server, sink, tenant, deploy_prod, rule):
    Suppression.objects.create(
        tenant=tenant, address="gone@x.example", reason=SuppressionReason.UNSUBSCRIBED
    )
    sink.refuse = {"gone@x.example": UNKNOWN}

    deliver(make_event(deploy_prod))

    assert Suppression.objects.get().reason == SuppressionReason.UNSUBSCRIBED


def test_a_rule_test_lists_nobody(mail_server, sink, tenant, tenant_admin, rule):
    """An administrator's test may go to a mistyped address: fixing the rule is the answer."""
    sink.refuse = {"gone@x.example": UNKNOWN}

    rule_test_send(rule=rule, actor=tenant_admin)

    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("code", "text", "refused"),
    [
        (550, "5.1.1 User unknown", True),
        (550, "No such user here", True),
        (550, "5.2.1 Mailbox disabled", True),
        (552, "5.2.2 Mailbox full", False),
        (553, "5.1.3 Bad address syntax", True),
        (554, "5.7.1 Relay access denied", False),
        (550, "5.7.1 Sender not authorised", False),
        (550, "5.4.1 Recipient address rejected: Access denied", False),
        (451, "4.1.1 Try later", False),
    ],
)
def test_which_refusals_are_the_addresses_fault(code, text, refused):
    assert refuses_address(code, text) is refused


def test_listing_refusals_in_bulk_takes_three_statements(tenant, django_assert_num_queries):
    refused = {f"p{i}@X.example": UNKNOWN for i in range(200)}
    # Read the listed, insert the new, audit; in a savepoint (the test's transaction is open).
    with django_assert_num_queries(5):
        new = suppressions_add_refused(tenant_id=tenant.pk, refused=refused)
    assert len(new) == Suppression.objects.count() == 200
    assert Suppression.objects.filter(address="p7@x.example").exists()
