"""People and things for the events API: the Payments project, its pipeline and tokens."""

import secrets

import pytest
from django.test import Client
from django.utils import timezone

from apps.delivery.models import Delivery, Event
from apps.pipelines.models import EventType, Level, Pipeline, ProjectApiToken, token_hash
from tests.factories import OrganizationFactory, ProjectFactory

EVENTS_URL = "/api/v1/events"


def make_token(project, *, revoked=False) -> str:
    """A project API token stored as the portal stores it; the raw secret is returned."""
    raw = "pm_" + secrets.token_urlsafe(32)
    ProjectApiToken.objects.create(
        tenant=project.tenant,
        project=project,
        name="CI",
        prefix=raw[:10],
        hash=token_hash(raw),
        revoked_at=timezone.now() if revoked else None,
    )
    return raw


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def event_body(**changes) -> dict:
    body = {
        "pipeline": "deploy-prod",
        "event_type": EventType.PIPELINE_FAILED.value,
        "level": Level.ERROR.value,
        "run_id": "4711",
        "run_url": "https://ci.example.com/payments/deploy-prod/runs/4711",
        "message": "Migration 0042 failed.",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def make_event(pipeline, **fields) -> Event:
    return Event.objects.create(
        tenant=pipeline.tenant,
        project=pipeline.project,
        pipeline=pipeline,
        event_type=fields.pop("event_type", EventType.PIPELINE_FAILED),
        level=fields.pop("level", Level.ERROR),
        run_id=fields.pop("run_id", "4711"),
        run_url=fields.pop("run_url", "https://ci.example.com/runs/4711"),
        **fields,
    )


def make_deliveries(event, count, **fields) -> list[Delivery]:
    return Delivery.objects.bulk_create(
        Delivery(
            tenant=event.tenant,
            event=event,
            address=f"person{n}@example.com",
            reason="You are on the rule “On call”.",
            message_id=f"<{event.pk}.{n}@postmaster.test>",
            **fields,
        )
        for n in range(count)
    )


@pytest.fixture
def payments(tenant):
    organization = OrganizationFactory(tenant=tenant, name="Finance", slug="finance")
    return ProjectFactory(organization=organization, name="Payments", slug="payments")


@pytest.fixture
def pipeline(payments):
    return Pipeline.objects.create(
        tenant=payments.tenant, project=payments, name="Deploy prod", slug="deploy-prod"
    )


@pytest.fixture
def token(payments):
    return make_token(payments)


@pytest.fixture
def api(token):
    """A client sending the Payments token on every request."""
    return Client(headers=bearer(token))


@pytest.fixture
def other_project_token(tenant):
    """A token of another project of the same tenant."""
    return make_token(ProjectFactory(organization__tenant=tenant, name="Website", slug="website"))


@pytest.fixture
def other_tenant_token(other_tenant):
    project = ProjectFactory(organization__tenant=other_tenant, name="Payments", slug="payments")
    Pipeline.objects.create(
        tenant=other_tenant, project=project, name="Deploy prod", slug="deploy-prod"
    )
    return make_token(project)


def post_event(client, body, **headers):
    return client.post(EVENTS_URL, body, content_type="application/json", headers=headers)
