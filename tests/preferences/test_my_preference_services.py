"""The services behind My notifications refuse what is not the user's to set."""

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEntry
from apps.preferences.models import NotificationPreference
from apps.preferences.services import (
    notification_preference_set,
    notification_switch_set,
    project_notification_preferences_set,
)
from tests.factories import MembershipFactory, PipelineFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(tenant):
    user = UserFactory(email="ann@acme.example")
    MembershipFactory(tenant=tenant, user=user)
    return user


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        ("stranger", "stranger@x.example is not a member of Acme."),
        ("their_project", "The project Secret is not part of Acme."),
        ("their_pipeline", "The pipeline Other is not part of the project Website."),
        ("bad_level", "“loud” is not a level: choose one from the list."),
        ("bad_type", "Unknown event types: pipeline_exploded."),
    ],
)
def test_what_is_not_the_users_to_set_is_refused_and_nothing_written(
    tenant, other_tenant, project, ann, scope, error
):
    theirs = ProjectFactory(organization__tenant=other_tenant, name="Secret")
    kwargs = {"user": ann, "tenant": tenant, "level": "none"}
    kwargs |= {
        "stranger": {"user": UserFactory(email="stranger@x.example")},
        "their_project": {"project": theirs},
        "their_pipeline": {"project": project, "pipeline": PipelineFactory(name="Other")},
        "bad_level": {"level": "loud"},
        "bad_type": {"muted_event_types": ["pipeline_exploded"]},
    }[scope]

    with pytest.raises(ValidationError) as exc:
        notification_preference_set(**kwargs)

    assert exc.value.messages == [error]
    assert not NotificationPreference.objects.exists()
    assert not AuditEntry.objects.exists()


def test_saving_the_same_choice_again_writes_no_audit_entry(tenant, ann):
    for _ in range(2):
        notification_preference_set(user=ann, tenant=tenant, level="failures")
    notification_switch_set(user=ann, enabled=True)

    assert AuditEntry.objects.count() == 1


def test_a_pipeline_keeps_its_muted_events_when_its_level_changes(tenant, project, ann):
    pipeline = PipelineFactory(project=project)
    NotificationPreference.objects.create(
        tenant=tenant,
        user=ann,
        project=project,
        pipeline=pipeline,
        muted_event_types=["stage_started"],
    )

    project_notification_preferences_set(
        user=ann,
        tenant=tenant,
        project=project,
        level="inherit",
        pipeline_levels={pipeline.pk: "failures"},
    )

    row = NotificationPreference.objects.get()
    assert (row.pipeline, row.level, row.muted_event_types) == (
        pipeline,
        "failures",
        ["stage_started"],
    )


def test_pipelines_of_another_project_are_refused_as_a_whole(tenant, project, ann):
    other = PipelineFactory(project=ProjectFactory(organization=project.organization))

    with pytest.raises(ValidationError):
        project_notification_preferences_set(
            user=ann,
            tenant=tenant,
            project=project,
            level="none",
            pipeline_levels={other.pk: "none"},
        )

    assert not NotificationPreference.objects.exists()
