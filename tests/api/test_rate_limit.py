"""The events API's limit per token: 429 with Retry-After past it, nothing stored."""

import threading

import pytest
from django.core.cache import caches
from django.test import Client

from apps.api.ratelimit import api_rate_take
from apps.delivery.models import Event
from apps.pipelines.models import ProjectApiToken
from tests.api.conftest import EVENTS_URL, bearer, event_body, make_token, post_event
from tests.smtp_servers import closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_limit(settings):
    # One request a minute, and a burst of three: the fourth in a row is refused.
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    settings.API_RATE_LIMIT_BURST = 3


def test_past_the_limit_answers_429_with_retry_after_and_stores_nothing(api, pipeline, small_limit):
    for run in range(3):
        assert post_event(api, event_body(run_id=str(run))).status_code == 202

    refused = post_event(api, event_body(run_id="refused"))

    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("application/json")
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 60
    detail = refused.json()["detail"]
    assert detail.startswith("Too many requests with this API token: try again in")
    assert "1 requests a minute" in detail or "1 request" in detail
    assert not Event.objects.filter(run_id="refused").exists()
    assert Event.objects.count() == 3


def test_reads_count_too(api, pipeline, small_limit):
    for _ in range(3):
        assert api.get(f"{EVENTS_URL}/1").status_code == 404
    assert api.get(f"{EVENTS_URL}/1").status_code == 429


def test_another_token_is_not_affected(api, pipeline, payments, small_limit):
    for run in range(4):
        post_event(api, event_body(run_id=str(run)))
    assert post_event(api, event_body(run_id="x")).status_code == 429

    other = Client(headers=bearer(make_token(payments)))
    assert post_event(other, event_body(run_id="other")).status_code == 202
    assert Event.objects.filter(run_id="other").exists()


def test_a_refused_request_does_not_mark_the_token_used(api, pipeline, small_limit):
    for run in range(3):
        post_event(api, event_body(run_id=str(run)))
    ProjectApiToken.objects.update(last_used_at=None)

    assert post_event(api, event_body(run_id="refused")).status_code == 429
    assert ProjectApiToken.objects.get().last_used_at is None


def test_the_default_is_generous(api, pipeline):
    for run in range(50):
        assert post_event(api, event_body(run_id=str(run))).status_code == 202


def test_zero_turns_the_limit_off(settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    assert all(api_rate_take(token_id=1).allowed for _ in range(1000))


def test_the_answer_is_documented(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert "429" in schema["paths"]["/api/v1/events"]["post"]["responses"]


@pytest.mark.services
def test_two_clients_share_the_count_through_redis(settings, small_limit):
    """Threads, each with its own Redis connection (as processes have): one count for all."""
    assert type(caches["default"]).__name__ == "PostmasterRedisCache"
    results, barrier = [], threading.Barrier(4)

    def client():
        barrier.wait(timeout=30)
        for _ in range(3):
            results.append(api_rate_take(token_id=424242).allowed)
        caches["default"].close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 12
    assert results.count(True) == 3
    refused = api_rate_take(token_id=424242)
    assert not refused.allowed
    assert 1 <= refused.retry_after <= 60
    assert api_rate_take(token_id=424243).allowed


def test_a_cache_server_that_is_down_lets_requests_through(api, pipeline, settings, small_limit):
    settings.CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.PostmasterRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    for run in range(5):
        assert post_event(api, event_body(run_id=str(run))).status_code == 202
