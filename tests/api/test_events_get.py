"""GET /api/v1/events/{id}: the event, its deliveries counted by status, one page of them."""

import pytest
from django.utils import timezone

from apps.delivery.models import Delivery, DeliveryStatus
from apps.pipelines.models import EventType
from tests.api.conftest import EVENTS_URL, make_deliveries, make_event

pytestmark = pytest.mark.django_db


def test_event_with_each_deliverys_status(api, pipeline):
    sent_at = timezone.now()
    event = make_event(
        pipeline,
        event_type=EventType.STAGE_FAILED,
        stage="migrate",
        message="Boom",
        dispatched_at=sent_at,
    )
    sent, failed, queued = make_deliveries(event, 3)
    Delivery.objects.filter(pk=sent.pk).update(
        status=DeliveryStatus.SENT,
        attempt_count=1,
        last_code=250,
        last_reply="2.0.0 Ok: queued as 4F2A",
        finished_at=sent_at,
    )
    Delivery.objects.filter(pk=failed.pk).update(
        status=DeliveryStatus.FAILED,
        attempt_count=1,
        last_code=550,
        last_reply="5.1.1 No such user",
        finished_at=sent_at,
    )
    Delivery.objects.filter(pk=queued.pk).update(attempt_count=2, last_code=451)

    response = api.get(f"{EVENTS_URL}/{event.pk}")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("id", "pipeline", "event_type", "level", "stage")} == {
        "id": event.pk,
        "pipeline": "deploy-prod",
        "event_type": "stage_failed",
        "level": "error",
        "stage": "migrate",
    }
    assert (body["run_id"], body["message"]) == ("4711", "Boom")
    assert body["dispatched_at"] is not None
    assert body["summary"] == "1 of 3 sent, 1 failed, 1 to go"
    assert body["running"] is True
    assert body["counts"] == {
        "total": 3,
        "queued": 1,
        "sending": 0,
        "sent": 1,
        "failed": 1,
        "suppressed": 0,
        "opted_out": 0,
        "delivered": 0,
        "bounced": 0,
        "rejected": 0,
        "complained": 0,
        "unsubscribed": 0,
    }
    items = body["deliveries"]["items"]
    assert [(i["address"], i["status"], i["attempts"], i["last_code"]) for i in items] == [
        ("person0@example.com", "sent", 1, 250),
        ("person1@example.com", "failed", 1, 550),
        ("person2@example.com", "queued", 2, 451),
    ]
    assert items[0]["last_reply"] == "2.0.0 Ok: queued as 4F2A"
    assert items[1]["last_reply"] == "5.1.1 No such user"
    # Only a sent delivery has a sent time.
    assert items[0]["sent_at"] is not None
    assert (items[1]["sent_at"], items[2]["sent_at"]) == (None, None)


def test_a_providers_reports_are_counted_and_keep_the_sent_time(api, pipeline):
    sent_at = timezone.now()
    event = make_event(pipeline, dispatched_at=sent_at)
    delivered, bounced = make_deliveries(event, 2)
    for delivery, status in [(delivered, "delivered"), (bounced, "bounced")]:
        Delivery.objects.filter(pk=delivery.pk).update(status=status, finished_at=sent_at)

    body = api.get(f"{EVENTS_URL}/{event.pk}").json()

    assert (body["counts"]["delivered"], body["counts"]["bounced"]) == (1, 1)
    assert [item["sent_at"] is not None for item in body["deliveries"]["items"]] == [True, True]


def test_deliveries_are_paginated_with_counts_over_all(api, pipeline):
    event = make_event(pipeline)
    make_deliveries(event, 12)

    page = api.get(f"{EVENTS_URL}/{event.pk}", {"limit": 5, "offset": 10}).json()

    assert page["counts"]["total"] == page["counts"]["queued"] == 12
    assert page["deliveries"]["limit"] == 5
    assert page["deliveries"]["offset"] == 10
    assert [i["address"] for i in page["deliveries"]["items"]] == [
        "person10@example.com",
        "person11@example.com",
    ]


def test_an_event_without_deliveries_yet(api, pipeline):
    event = make_event(pipeline)

    body = api.get(f"{EVENTS_URL}/{event.pk}").json()

    assert body["counts"]["total"] == 0
    assert body["deliveries"]["items"] == []
    assert (body["summary"], body["running"]) == ("Finding the recipients…", True)


@pytest.mark.parametrize("event_id", [999_999, 2**63 - 1])
def test_unknown_event_is_404(api, pipeline, event_id):
    response = api.get(f"{EVENTS_URL}/{event_id}")

    assert response.status_code == 404
    assert response.json() == {"detail": f"No event {event_id} in project “Payments”."}


@pytest.mark.parametrize(
    ("path", "field", "phrase"),
    [
        ("0", "event_id", "must be at least 1"),
        (str(2**63), "event_id", "must be at most 9223372036854775807"),
        ("abc", "event_id", "must be a whole number"),
        ("1?limit=0", "limit", "must be at least 1"),
        ("1?limit=501", "limit", "must be at most 500"),
        ("1?offset=-1", "offset", "must be at least 0"),
    ],
)
def test_invalid_id_or_page_is_422(api, pipeline, path, field, phrase):
    response = api.get(f"{EVENTS_URL}/{path}")

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "message": f"{field} {phrase}."}]


@pytest.mark.parametrize("count", [5, 500])
def test_reading_an_event_is_a_bounded_number_of_queries(
    api, pipeline, count, django_assert_max_num_queries
):
    event = make_event(pipeline)
    make_deliveries(event, count)
    api.get(f"{EVENTS_URL}/{event.pk}")  # the token's last use is recorded; not measured

    # Token, event with its pipeline, counts, one page.
    with django_assert_max_num_queries(4):
        response = api.get(f"{EVENTS_URL}/{event.pk}", {"limit": 500})

    assert len(response.json()["deliveries"]["items"]) == count
