"""The delivery log's reads: filters, tenant scoping, an event's progress, the daily counts."""

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from apps.delivery.charts import daily_chart
from apps.delivery.models import DeliveryStatus
from apps.delivery.selectors import (
    CHART_DAYS,
    DayCount,
    delivery_daily_counts,
    delivery_get,
    delivery_list,
    event_deliveries,
    event_get,
    event_progress,
)
from apps.pipelines.models import EventType
from tests.delivery.log_records import make_attempts, make_deliveries, make_event, make_pipeline

SENT, FAILED, QUEUED = DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.QUEUED


@pytest.fixture
def event(deploy_prod):
    """Payments / Deploy prod failed (the pipeline comes from tests/delivery/conftest.py)."""
    return make_event(deploy_prod)


@pytest.fixture
def theirs(other_tenant):
    """The other tenant's twin: same pipeline name, same addresses, failed deliveries."""
    event = make_event(make_pipeline(other_tenant))
    make_deliveries(event, FAILED, 3)
    return event


def _addresses(deliveries):
    return [d.address for d in deliveries]


def test_the_log_is_newest_first_and_holds_only_the_tenants_deliveries(tenant, event, theirs):
    now = timezone.now()
    make_deliveries(event, SENT, 1, prefix="old", created_at=now - timedelta(hours=2))
    make_deliveries(event, SENT, 1, prefix="new", created_at=now)
    make_deliveries(event, QUEUED, 1, prefix="mid", created_at=now - timedelta(hours=1))

    assert _addresses(delivery_list(tenant=tenant)) == [
        "new0@example.com",
        "mid0@example.com",
        "old0@example.com",
    ]


def test_filter_by_status_pipeline_and_event(tenant, deploy_prod, event, theirs):
    make_deliveries(event, SENT, 2, prefix="sent")
    make_deliveries(event, FAILED, 1, prefix="failed")
    other_pipeline = make_pipeline(tenant, name="Nightly", project="Website")
    other_event = make_event(other_pipeline, event_type=EventType.PIPELINE_SUCCEEDED)
    make_deliveries(other_event, SENT, 1, prefix="nightly")

    assert _addresses(delivery_list(tenant=tenant, status=FAILED)) == ["failed0@example.com"]
    assert set(_addresses(delivery_list(tenant=tenant, pipeline=other_pipeline))) == {
        "nightly0@example.com"
    }
    assert len(delivery_list(tenant=tenant, pipeline=deploy_prod)) == 3
    assert len(delivery_list(tenant=tenant, event_id=event.pk, status=SENT)) == 2
    # The other tenant's event number finds nothing here, however it is asked.
    assert not delivery_list(tenant=tenant, event_id=theirs.pk).exists()
    assert not delivery_list(tenant=tenant, pipeline=theirs.pipeline).exists()


def test_filter_by_part_of_the_recipient_in_any_case(tenant, event):
    make_deliveries(event, SENT, 1, prefix="Alice.Ops")
    make_deliveries(event, SENT, 1, prefix="bob")

    assert _addresses(delivery_list(tenant=tenant, recipient=" alice.OPS ")) == [
        "Alice.Ops0@example.com"
    ]


def test_filter_by_dates_takes_whole_days_both_included(tenant, event):
    today = timezone.localdate()
    for days_ago in (0, 1, 2, 3):
        make_deliveries(
            event,
            SENT,
            1,
            prefix=f"d{days_ago}-",
            created_at=timezone.now() - timedelta(days=days_ago),
        )

    found = delivery_list(
        tenant=tenant, date_from=today - timedelta(days=2), date_to=today - timedelta(days=1)
    )
    assert _addresses(found) == ["d1-0@example.com", "d2-0@example.com"]
    assert len(delivery_list(tenant=tenant, date_from=today)) == 1
    assert len(delivery_list(tenant=tenant, date_to=today - timedelta(days=3))) == 1


def test_another_tenants_event_and_delivery_are_404(tenant, other_tenant, event, theirs):
    ours = make_deliveries(event, FAILED, 1)[0]

    assert event_get(tenant=tenant, pk=event.pk) == event
    assert delivery_get(tenant=tenant, pk=ours.pk) == ours
    with pytest.raises(Http404):
        event_get(tenant=tenant, pk=theirs.pk)
    with pytest.raises(Http404):
        delivery_get(tenant=tenant, pk=theirs.deliveries.first().pk)
    with pytest.raises(Http404):
        delivery_get(tenant=other_tenant, pk=ours.pk)


def test_an_events_deliveries_by_address_with_their_attempts(tenant, event, theirs):
    failed = make_deliveries(event, FAILED, 1, prefix="b")
    sent = make_deliveries(event, SENT, 1, prefix="a")
    make_attempts(failed, ("recipient_rejected", 550, "5.1.1 User unknown"))
    make_attempts(sent, ("timed_out", None, ""), ("sent", 250, "2.0.0 OK queued"))

    rows = list(event_deliveries(tenant=tenant, event=event))
    assert _addresses(rows) == ["a0@example.com", "b0@example.com"]
    assert [a.outcome for a in rows[0].attempts.all()] == ["timed_out", "sent"]
    assert _addresses(event_deliveries(tenant=tenant, event=event, status=FAILED)) == [
        "b0@example.com"
    ]
    assert not event_deliveries(tenant=tenant, event=theirs).exists()


def test_progress_counts_each_status_and_says_it_in_words(tenant, event, theirs):
    make_deliveries(event, SENT, 812, prefix="s")
    make_deliveries(event, FAILED, 3, prefix="f")
    make_deliveries(event, DeliveryStatus.SUPPRESSED, 2, prefix="x")
    make_deliveries(event, QUEUED, 180, prefix="q")
    make_deliveries(event, DeliveryStatus.SENDING, 3, prefix="w")

    progress = event_progress(tenant=tenant, event=event)

    assert (progress.total, progress.sent, progress.failed, progress.suppressed) == (
        1000,
        812,
        3,
        2,
    )
    assert (progress.queued, progress.sending, progress.pending) == (180, 3, 183)
    assert progress.running
    assert progress.summary == "812 of 1,000 sent, 3 failed, 2 suppressed, 183 to go"
    assert progress.as_dict()["percent"] == {
        "sent": 81.2,
        "failed": 0.3,
        "suppressed": 0.2,
        "opted_out": 0.0,
    }


def test_progress_is_finished_when_nothing_is_queued_or_sending(tenant, event):
    make_deliveries(event, SENT, 4)

    progress = event_progress(tenant=tenant, event=event)

    assert not progress.running
    assert progress.summary == "4 of 4 sent"


def test_progress_runs_until_the_recipients_are_found(tenant, deploy_prod):
    event = make_event(deploy_prod, dispatched=False)

    progress = event_progress(tenant=tenant, event=event)

    assert progress.running
    assert progress.summary == "Finding the recipients…"
    assert progress.as_dict()["total"] == 0


def test_progress_counts_only_the_tenants_deliveries(tenant, theirs):
    assert event_progress(tenant=tenant, event=theirs).total == 0


def test_daily_counts_of_sent_and_failed_per_day_for_14_days(
    tenant, event, theirs, django_assert_num_queries
):
    now = timezone.now()
    today = timezone.localdate()
    make_deliveries(event, SENT, 5, prefix="today", finished_at=now)
    make_deliveries(event, FAILED, 2, prefix="today-f", finished_at=now)
    make_deliveries(event, SENT, 3, prefix="d2", finished_at=now - timedelta(days=2))
    make_deliveries(event, FAILED, 1, prefix="d13", finished_at=now - timedelta(days=13))
    # Not counted: older than the 14 days, still queued, suppressed, another tenant's.
    make_deliveries(event, SENT, 7, prefix="old", finished_at=now - timedelta(days=14))
    make_deliveries(event, QUEUED, 4, prefix="q")
    make_deliveries(event, DeliveryStatus.SUPPRESSED, 4, prefix="x", finished_at=now)

    with django_assert_num_queries(1):
        counts = delivery_daily_counts(tenant=tenant)

    assert len(counts) == CHART_DAYS
    assert counts[0].day == today - timedelta(days=13)
    assert counts[-1] == DayCount(day=today, sent=5, failed=2)
    assert counts[-3] == DayCount(day=today - timedelta(days=2), sent=3, failed=0)
    assert counts[0] == DayCount(day=today - timedelta(days=13), sent=0, failed=1)
    assert sum(c.sent for c in counts) == 8
    assert sum(c.failed for c in counts) == 3


def test_the_chart_draws_bars_in_proportion_on_a_shared_scale():
    today = timezone.localdate()
    counts = [DayCount(today - timedelta(days=2), 0, 0), DayCount(today, 10, 1)]
    chart = daily_chart(counts)

    assert chart.scale_max == 10
    quiet, busy = chart.days
    assert (quiet.sent.height, quiet.failed.height) == (0, 0)
    assert busy.sent.height == chart.baseline - chart.top
    # One failure among many sent still shows.
    assert 0 < busy.failed.height < busy.sent.height
    assert busy.sent.y + busy.sent.height == chart.baseline
    assert (chart.total_sent, chart.total_failed, chart.empty) == (10, 1, False)
    assert daily_chart([DayCount(today, 0, 0)]).empty
