"""POST /api/v1/events: accepted, stored, dispatched on commit; idempotent; plain errors."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.api import schemas
from apps.delivery import intake
from apps.delivery.models import Event
from tests.api.conftest import EVENTS_URL, event_body, post_event

pytestmark = pytest.mark.django_db


def test_accepted_event_is_stored_and_dispatched_after_commit(
    api, pipeline, monkeypatch, django_capture_on_commit_callbacks
):
    dispatched = []
    monkeypatch.setattr(intake, "_dispatch_later", dispatched.append)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_event(api, event_body(stage="migrate"))

    assert response.status_code == 202
    answer = response.json()
    event = Event.objects.get()
    assert answer == {
        "id": event.pk,
        "status_url": f"http://testserver/api/v1/events/{event.pk}",
        "repeat": False,
    }
    assert (event.pipeline, event.tenant, event.project) == (
        pipeline,
        pipeline.tenant,
        pipeline.project,
    )
    assert (event.event_type, event.level, event.run_id, event.stage) == (
        "pipeline_failed",
        "error",
        "4711",
        "migrate",
    )
    assert event.message == "Migration 0042 failed."
    assert len(callbacks) == 1
    assert dispatched == [event.tenant_id]


def test_only_the_required_fields(api, pipeline):
    body = event_body(message=None)
    response = post_event(api, body)

    assert response.status_code == 202
    event = Event.objects.get()
    assert (event.message, event.stage, event.idempotency_key) == ("", "", None)


def test_values_are_stored_as_sent(api, pipeline):
    response = post_event(api, event_body(run_id=" 4711 ", message="Line one\nLine two\n"))

    assert response.status_code == 202
    event = Event.objects.get()
    assert (event.run_id, event.message) == (" 4711 ", "Line one\nLine two\n")


def test_same_idempotency_key_answers_the_same_event_and_creates_nothing(
    api, pipeline, django_capture_on_commit_callbacks
):
    first = post_event(api, event_body(idempotency_key="deploy-4711"))
    with django_capture_on_commit_callbacks() as callbacks:
        again = post_event(api, event_body(idempotency_key="deploy-4711", message="Retried."))

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert (first.json()["repeat"], again.json()["repeat"]) == (False, True)
    assert Event.objects.count() == 1
    assert Event.objects.get().message == "Migration 0042 failed."
    assert callbacks == []


def test_idempotency_key_is_free_again_after_24_hours(api, pipeline):
    first = post_event(api, event_body(idempotency_key="deploy-4711")).json()
    Event.objects.filter(pk=first["id"]).update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )

    again = post_event(api, event_body(idempotency_key="deploy-4711"))

    assert again.status_code == 202
    assert again.json()["id"] != first["id"]
    assert again.json()["repeat"] is False
    assert Event.objects.count() == 2


def test_different_keys_are_different_events(api, pipeline):
    one = post_event(api, event_body(idempotency_key="a")).json()
    two = post_event(api, event_body(idempotency_key="b")).json()

    assert one["id"] != two["id"]
    assert Event.objects.count() == 2


def test_a_disabled_tenants_events_are_still_accepted(api, pipeline):
    pipeline.tenant.is_active = False
    pipeline.tenant.save(update_fields=["is_active"])

    response = post_event(api, event_body())

    assert response.status_code == 202
    assert Event.objects.count() == 1


def test_unknown_pipeline_is_404_naming_it_and_the_project(api, pipeline):
    response = post_event(api, event_body(pipeline="deploy-staging"))

    assert response.status_code == 404
    assert response.json() == {"detail": "No pipeline “deploy-staging” in project “Payments”."}
    assert not Event.objects.exists()


INVALID = [
    (
        "pipeline",
        "deploy prod",
        "must be a pipeline slug: letters, digits, hyphens and underscores",
    ),
    ("pipeline", "x" * 51, "must be at most 50 characters"),
    ("event_type", "pipeline_exploded", "must be one of 'pipeline_started', "),
    ("level", "fatal", "must be one of 'success', 'warning' or 'error'"),
    ("run_id", "", "must not be empty"),
    ("run_id", "   ", "must be one line with something other than spaces"),
    ("run_id", "x" * 201, "must be at most 200 characters"),
    ("run_id", "4711\r\nBcc: everyone@example.com", "must be one line with"),
    ("run_id", "47\x0011", "must be one line with"),
    ("run_id", 4711, "must be text (a JSON string)"),
    ("run_url", "ftp://ci.example.com/runs/1", "must be an http:// or https:// link"),
    ("run_url", "javascript:alert(1)", "must be an http:// or https:// link"),
    ("run_url", "https://", "must be an http:// or https:// link"),
    ("run_url", "https://not a host/", "must be an http:// or https:// link"),
    ("run_url", "https:///runs/1", "must be an http:// or https:// link"),
    ("run_url", "https://ci.example.com/" + "r" * 2000, "must be at most 2000 characters"),
    ("message", "x" * 1001, "must be at most 1000 characters"),
    ("message", "nul \x00 byte", "must not contain NUL characters"),
    ("stage", "migrate\nrollback", "must be one line, without line breaks"),
    ("stage", "x" * 201, "must be at most 200 characters"),
    ("idempotency_key", "x" * 201, "must be at most 200 characters"),
    ("idempotency_key", "", "must not be empty"),
    ("idempotency_key", "key\n2", "must be one line with"),
    ("idempotency_key", " ", "must be one line with"),
]


@pytest.mark.parametrize(
    ("field", "value", "phrase"), INVALID, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(INVALID)]
)
def test_invalid_field_is_422_naming_it_and_why(api, pipeline, field, value, phrase):
    response = post_event(api, event_body(**{field: value}))

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    assert errors[0]["message"].startswith(f"{field} {phrase}")
    assert phrase in response.json()["detail"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("event_type", ["stage_started", "stage_succeeded", "stage_failed"])
def test_stage_events_need_a_stage(api, pipeline, event_type):
    response = post_event(api, event_body(event_type=event_type, stage=" "))

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "stage", "message": "stage is required for stage events: name the stage."}
    ]
    assert post_event(api, event_body(event_type=event_type, stage="migrate")).status_code == 202


def test_missing_fields_and_unknown_fields_are_each_listed(api, pipeline):
    body = event_body(run_id=None, level=None)
    body["runid"] = "4711"

    response = post_event(api, body)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "level", "message": "level is required."},
        {"field": "run_id", "message": "run_id is required."},
        {"field": "runid", "message": "runid is not a field of this API: check its spelling."},
    ]


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ("{not json", "body is not valid JSON"),
        ("[1, 2]", "body must be a JSON object."),
        ('"event"', "body must be a JSON object."),
        ("", "body is required."),
    ],
)
def test_a_body_that_is_not_an_event_object_is_422(api, pipeline, body, phrase):
    response = api.post(EVENTS_URL, body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    assert response.json()["errors"][0]["message"].startswith(phrase)


def test_lone_surrogates_are_refused_not_stored(api, pipeline):
    # json.dumps escapes it as \ud800: valid JSON, but no database can store it.
    body = json.dumps(event_body(message="half \ud800 a character"))

    response = api.post(EVENTS_URL, body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "message",
        "message": "message must be valid Unicode text.",
    }


def test_an_oversized_body_is_413_not_a_server_error(api, pipeline):
    body = json.dumps(event_body(message="x" * 3_000_000))

    response = api.post(EVENTS_URL, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": "The request body is too large: an event takes a few kilobytes at most."
    }
    assert not Event.objects.exists()


@pytest.mark.parametrize("url", ["https://a\u0085b.example/", "https://a.example/x\u0085"])
def test_the_link_pattern_refuses_a_next_line_character_in_any_regex_dialect(url):
    # \s differs between dialects: NEL is white space to Python, not to the schema's
    # ECMAScript. The pattern must refuse NEL without counting on \s.
    assert re.fullmatch(schemas.URL.replace(r"\s", " "), url) is None
