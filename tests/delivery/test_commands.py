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
