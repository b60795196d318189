"""Bearer tokens: who may post and read, and what a refused client is told."""

import logging
from datetime import timedelta

import pytest

from apps.delivery.models import Event
from apps.pipelines.models import ProjectApiToken
from tests.api.conftest import EVENTS_URL, bearer, event_body, make_event, make_token, post_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def revoked_token(payments):
    return make_token(payments, revoked=True)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer   ", "Token {token}", "Basic {token}", "{token}"],
    ids=["none", "empty", "no-token", "blank-token", "token-scheme", "basic-scheme", "no-scheme"],
)
def test_missing_token_is_401_saying_what_to_send(client, pipeline, token, authorization):
    headers = {} if authorization is None else {"Authorization": authorization.format(token=token)}

    response = post_event(client, event_body(), **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="Postmaster events API"'
    assert response.json() == {
        "detail": "Send your project API token in the Authorization header: "
        "`Authorization: Bearer <token>`."
    }
    assert not Event.objects.exists()


@pytest.mark.parametrize("which", ["mistyped", "revoked"])
def test_bad_or_revoked_token_is_401(client, pipeline, token, revoked_token, which):
    raw = {"mistyped": token[:-1] + ("A" if token[-1] != "A" else "B"), "revoked": revoked_token}

    response = post_event(client, event_body(), **bearer(raw[which]))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'Bearer realm="Postmaster events API", error="invalid_token"'
    )
    assert "mistyped or has been revoked" in response.json()["detail"]
    assert not Event.objects.exists()


def test_reading_needs_a_token_too(client, pipeline, revoked_token):
    event = make_event(pipeline)

    assert client.get(f"{EVENTS_URL}/{event.pk}").status_code == 401
    assert client.get(f"{EVENTS_URL}/{event.pk}", headers=bearer(revoked_token)).status_code == 401


def test_scheme_is_case_insensitive(client, pipeline, token):
    response = post_event(client, event_body(), Authorization=f"bearer {token}")

    assert response.status_code == 202


def test_last_used_is_recorded_at_most_once_a_minute(api, pipeline, django_assert_num_queries):
    stored = ProjectApiToken.objects.get()
    assert stored.last_used_at is None

    post_event(api, event_body())
    first_use = ProjectApiToken.objects.get().last_used_at
    assert first_use is not None

    event_id = Event.objects.get().pk
    # Token, event, counts, deliveries: no write for the token within the minute.
    with django_assert_num_queries(4):
        api.get(f"{EVENTS_URL}/{event_id}")
    assert ProjectApiToken.objects.get().last_used_at == first_use

    ProjectApiToken.objects.update(last_used_at=first_use - timedelta(minutes=2))
    api.get(f"{EVENTS_URL}/{event_id}")
    assert ProjectApiToken.objects.get().last_used_at >= first_use


def test_another_projects_token_cannot_post_into_this_project(
    client, pipeline, other_project_token
):
    response = post_event(client, event_body(), **bearer(other_project_token))

    assert response.status_code == 404
    assert response.json() == {"detail": "No pipeline “deploy-prod” in project “Website”."}
    assert not Event.objects.exists()


def test_another_tenants_token_posts_into_its_own_project_only(
    client, pipeline, other_tenant, other_tenant_token
):
    response = post_event(client, event_body(), **bearer(other_tenant_token))

    assert response.status_code == 202
    event = Event.objects.get()
    assert event.tenant == other_tenant
    assert event.pipeline != pipeline


@pytest.mark.parametrize("other", ["other_project_token", "other_tenant_token"])
def test_another_projects_or_tenants_token_cannot_read_this_event(client, pipeline, other, request):
    event = make_event(pipeline)

    response = client.get(
        f"{EVENTS_URL}/{event.pk}", headers=bearer(request.getfixturevalue(other))
    )

    assert response.status_code == 404
    assert response.json()["detail"].startswith(f"No event {event.pk} in project")


def test_idempotency_keys_do_not_cross_projects(client, api, pipeline, other_tenant_token):
    ours = post_event(api, event_body(idempotency_key="run-1")).json()
    theirs = post_event(client, event_body(idempotency_key="run-1"), **bearer(other_tenant_token))

    assert theirs.status_code == 202
    assert theirs.json()["id"] != ours["id"]
    assert theirs.json()["repeat"] is False


def test_the_token_never_reaches_the_logs(client, pipeline, token, caplog, settings):
    # ninja's own bearer class logs an unexpected Authorization header when DEBUG is on.
    settings.DEBUG = True
    caplog.set_level(logging.DEBUG)
    event = make_event(pipeline)
    headers = [
        bearer(token),
        bearer(token + "x"),
        {"Authorization": f"Token {token}"},
        {"Authorization": token},
    ]

    for header in headers:
        post_event(client, event_body(), **header)
        post_event(client, event_body(run_id=""), **header)
        post_event(client, event_body(pipeline="nope"), **header)
        client.get(f"{EVENTS_URL}/{event.pk}", headers=header)
        client.get(f"{EVENTS_URL}/{event.pk + 1000}", headers=header)
    # The requests happened and were logged; the secret is nowhere in them.
    assert caplog.records
    assert token not in caplog.text
    assert token[10:] not in caplog.text
