"""manage.py delivery_sweep: the sweep without Celery beat (no broker: tasks run in it)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.delivery.models import DeliveryStatus, Event
from tests.delivery.engine import make_event
from tests.factories import NotificationRuleFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager")]


def test_the_sweep_sends_what_was_missed(
    deploy_prod, mail_server, sink, django_capture_on_commit_callbacks
):
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["ann@x.example"])
    event = make_event(deploy_prod)
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("delivery_sweep", stdout=out)

    assert out.getvalue() == "Swept: 1 events to dispatch, 0 tenants with mail to send.\n"
    assert event.deliveries.get().status == DeliveryStatus.SENT
    assert len(sink.accepted) == 1


def test_without_a_broker_the_sweep_wakes_up_when_a_retry_is_due(deploy_prod):
    from apps.delivery.management.commands.delivery_sweep import SWEEP_MIN_WAIT, sweep_wait
    from apps.delivery.services import event_dispatch

    assert sweep_wait(30) == 30  # nothing waits for a time
    NotificationRuleFactory(pipeline=deploy_prod, addresses=["ann@x.example"])
    event = make_event(deploy_prod)
    event_dispatch(event_id=event.pk)
    event.deliveries.update(
        status=DeliveryStatus.QUEUED, next_attempt_at=timezone.now() + timedelta(seconds=4)
    )

    assert 3 < sweep_wait(30) <= 4.1  # not the 30 seconds of the next sweep
    event.deliveries.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert sweep_wait(30) == SWEEP_MIN_WAIT
    event.deliveries.update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert sweep_wait(30) == 30
