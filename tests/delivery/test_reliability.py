"""Nothing lost, nothing sent twice: against servers that defer, refuse, hang up and stall."""

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from apps.delivery.services import event_dispatch
from tests.delivery.engine import make_event, send_all
from tests.factories import NotificationRuleFactory
from tests.smtp_servers import ACCEPT, DROP, STALL, message_id

pytestmark = pytest.mark.django_db

FINAL = {DeliveryStatus.SENT, DeliveryStatus.FAILED}
# What a try that never reached the server's answer to DATA records (no reply code).
UNANSWERED = {"timed_out", "disconnected", "connection_refused"}


def assert_every_offer_recorded(event, sink, replies: int) -> None:
    """Each message the server was offered has its attempt, and no attempt claims a reply
    the server did not give (`replies`: the DATA it answered).

    Not "one attempt per message offered": a try can also fail before the server
    has the message (a timeout at the greeting, MAIL or RCPT on a busy machine),
    and that attempt is true too; it has no reply code, only what went wrong.
    """
    offered = Counter(message_id(content) for content in sink.offered)
    attempts = DeliveryAttempt.objects.filter(delivery__event=event)
    for delivery in event.deliveries.all():
        assert delivery.attempts.count() >= offered[delivery.message_id]
    assert attempts.filter(code__isnull=False).count() <= replies
    assert set(attempts.filter(code__isnull=True).values_list("outcome", flat=True)) <= UNANSWERED


def test_a_flaky_server_gets_every_message_exactly_once(settings, deploy_prod, mail_server, sink):
    """451 to 30 % of messages, 5 % of connections dropped: all 1,000 end sent, each once."""
    chance = random.Random(4711)
    dropped = []

    def flaky(number, content):
        roll = chance.random()
        if roll < 0.05:
            dropped.append(number)
            return DROP
        return "451 4.3.0 Try again later" if roll < 0.35 else ACCEPT

    sink.script = flaky
    NotificationRuleFactory(
        pipeline=deploy_prod, addresses=[f"person{n}@x.example" for n in range(1000)]
    )
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)

    send_all(event.tenant_id, rounds=200)

    deliveries = event.deliveries.all()
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    assert sink.accepted_ids == {d.message_id: 1 for d in deliveries}
    # Every try was recorded: an attempt for each message the server saw.
    assert_every_offer_recorded(event, sink, replies=len(sink.offered) - len(dropped))
    assert len(sink.offered) > 1300  # the server really did defer and drop


# Property: whatever the server does, each delivery ends in one final state, truthfully.

ANSWERS = {
    "success": ACCEPT,
    "4xx": "451 4.3.0 Temporary failure",
    "5xx": "554 5.7.1 Rejected",
    "disconnect": DROP,
    "timeout": STALL,
}


@hypothesis_settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    recipients=st.integers(min_value=1, max_value=4),
    answers=st.lists(st.sampled_from(sorted(ANSWERS)), max_size=10),
)
def test_every_delivery_ends_in_one_true_final_state(
    settings, deploy_prod, mail_server, sink, recipients, answers
):
    # A stall outlasts the timeout by far; an answer, even on a busy machine, does not.
    settings.CONNECTION_TIMEOUT = 0.25
    sink.stall_seconds = 0.75
    sink.offered.clear()
    sink.accepted.clear()
    # The n-th message the server sees gets the n-th answer; then all are accepted.
    sink.script = lambda number, content: (
        ANSWERS[answers[number]] if number < len(answers) else ACCEPT
    )
    rule = NotificationRuleFactory(
        pipeline=deploy_prod, addresses=[f"p{n}@x.example" for n in range(recipients)]
    )
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)

    # A busy machine may add tries that time out before DATA: more rounds, never fewer.
    send_all(event.tenant_id, rounds=len(answers) + 20)

    deliveries = list(event.deliveries.all())
    accepted = sink.accepted_ids
    assert len(deliveries) == recipients
    for d in deliveries:
        assert d.status in FINAL
        assert d.finished_at is not None
        assert d.lease_token == ""
        if d.status == DeliveryStatus.SENT:
            # Marked sent only when the server accepted it; and accepted once.
            assert accepted[d.message_id] == 1
            assert d.last_code == 250
        else:
            # Failed only on a permanent refusal, and never accepted.
            assert d.message_id not in accepted
            assert d.last_code == 554
    assert sum(accepted.values()) == sum(d.status == DeliveryStatus.SENT for d in deliveries)
    unanswered = [DROP, STALL]
    replies = sum(
        number >= len(answers) or ANSWERS[answers[number]] not in unanswered
        for number in range(len(sink.offered))
    )
    assert_every_offer_recorded(event, sink, replies)
    rule.delete()
