import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.connections.models import Security, SmtpSettings
from apps.demo.management.commands.seed_demo import (
    DEMO_API_TOKEN,
    DEMO_PASSWORD,
    OTHER_TENANT_ADMIN_EMAIL,
    SYSTEM_ADMIN_EMAIL,
    TENANT_ADMIN_EMAIL,
)
from apps.groups.models import UserGroup
from apps.pipelines.models import NotificationRule, Pipeline
from apps.pipelines.selectors import api_token_authenticate
from apps.tenancy.models import Membership, Project, Role, Tenant


def _counts():
    models = [
        User,
        Tenant,
        Project,
        Membership,
        UserGroup,
        SmtpSettings,
        Pipeline,
        NotificationRule,
        AuditEntry,
    ]
    return {model.__name__: model.objects.count() for model in models}


def test_seed_demo_is_idempotent_and_complete(db, settings):
    call_command("seed_demo")
    first = _counts()
    call_command("seed_demo")
    assert _counts() == first

    assert first["Tenant"] == 3  # Acme, Globex, Initech
    host = SmtpSettings.objects.get(tenant=None)
    assert (host.host, host.port, host.security) == (
        settings.MAILCATCHER_HOST,
        settings.MAILCATCHER_PORT,
        Security.NONE,
    )
    # One tenant on its own SMTP settings, the other inheriting the host's.
    assert list(
        SmtpSettings.objects.exclude(tenant=None).values_list("tenant__slug", flat=True)
    ) == ["globex"]
    for tenant in Tenant.objects.all():
        assert tenant.organizations.exists()
        assert tenant.projects.exists()
        assert UserGroup.objects.for_tenant(tenant).exists()
        assert Membership.objects.for_tenant(tenant).filter(role=Role.MEMBER).exists()
    # Acme has pipelines with rules and the README's API token; every rule reaches someone.
    assert api_token_authenticate(DEMO_API_TOKEN).project.name == "Checkout"
    assert Pipeline.objects.filter(tenant__slug="acme", slug="deploy-prod").exists()
    assert NotificationRule.objects.filter(tenant__slug="acme").count() == 3
    assert all(r.addresses or r.groups.exists() for r in NotificationRule.objects.all())
    # Every demo group reaches someone: no group shows the "reaches nobody" warning.
    assert not [g for g in UserGroup.objects.all() if g.notification_warning]


def _sign_in(client, email: str) -> None:
    """Through the sign-in form, as a person (and the sign-in lockout) sees it."""
    response = client.post("/accounts/login/", {"username": email, "password": DEMO_PASSWORD})
    assert response.status_code == 302, response.content.decode()


def test_demo_logins_work(db, client):
    call_command("seed_demo")
    assert User.objects.get(email=SYSTEM_ADMIN_EMAIL).is_system_admin
    for email, tenant_slug in [(TENANT_ADMIN_EMAIL, "acme"), (OTHER_TENANT_ADMIN_EMAIL, "globex")]:
        _sign_in(client, email)
        assert client.get(f"/t/{tenant_slug}/").status_code == 200
        client.logout()
    _sign_in(client, SYSTEM_ADMIN_EMAIL)
    assert client.get("/admin/").status_code == 200


def test_seeding_again_lifts_a_demo_sign_in_lockout(db, client):
    """Someone who locked a demo account by mistyping gets it back with `make run`."""
    call_command("seed_demo")
    for _ in range(5):
        client.post("/accounts/login/", {"username": TENANT_ADMIN_EMAIL, "password": "wrong"})
    locked = client.post(
        "/accounts/login/", {"username": TENANT_ADMIN_EMAIL, "password": DEMO_PASSWORD}
    )
    assert locked.status_code == 429
    call_command("seed_demo")
    _sign_in(client, TENANT_ADMIN_EMAIL)


def test_seed_demo_refuses_and_creates_nothing_outside_development(db, settings):
    settings.DEMO_ENABLED = False  # as in production
    with pytest.raises(CommandError, match="The demo data is for development only"):
        call_command("seed_demo")
    assert set(_counts().values()) == {0}


def _post_demo_event(client, idempotency_key: str):
    return client.post(
        "/api/v1/events",
        {
            "pipeline": "deploy-prod",
            "event_type": "pipeline_failed",
            "level": "error",
            "run_id": "4711",
            "run_url": "https://ci.example.com/checkout/deploy-prod/runs/4711",
            "message": "Migration 0042 failed.",
            "idempotency_key": idempotency_key,
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {DEMO_API_TOKEN}",
    )


def test_seed_demo_repairs_what_people_renamed_or_deleted(db, client):
    """`make run` seeds every time: whatever was changed in the demo, seeding again works."""
    from apps.groups.services import user_group_delete
    from apps.pipelines.services import (
        notification_rule_delete,
        pipeline_update,
        project_api_token_revoke,
    )
    from apps.tenancy.services import organization_update, project_update

    call_command("seed_demo")
    acme = Tenant.objects.get(slug="acme")
    checkout = Project.objects.get(tenant=acme, name="Checkout")
    deploy = Pipeline.objects.get(tenant=acme, slug="deploy-prod")
    actor = User.objects.get(email=TENANT_ADMIN_EMAIL)
    # A tenant admin renames the project (its slug follows), its organisation and a pipeline,
    # deletes a group and a rule, and revokes the demo token.
    project_update(project=checkout, name="Checkout (old)", actor=actor)
    organization_update(organization=checkout.organization, name="Payments team", actor=actor)
    pipeline_update(pipeline=deploy, name="Production deploys", slug="prod-deploys", actor=actor)
    user_group_delete(group=UserGroup.objects.get(tenant=acme, name="On-call"), actor=actor)
    notification_rule_delete(
        rule=NotificationRule.objects.get(tenant=acme, name="Deploys done"), actor=actor
    )
    project_api_token_revoke(token=checkout.api_tokens.get(), actor=actor)

    call_command("seed_demo")
    call_command("seed_demo")  # and again: nothing more to repair

    token = api_token_authenticate(DEMO_API_TOKEN)
    assert token is not None
    assert token.is_active
    assert Pipeline.objects.filter(project=token.project, slug="deploy-prod").exists()
    assert UserGroup.objects.filter(tenant=acme, name="On-call").exists()
    assert NotificationRule.objects.filter(tenant=acme, name="Deploys done").exists()
    response = _post_demo_event(client, "after-renames")
    assert response.status_code == 202, response.content


def test_seed_demo_recreates_deleted_tenant_projects(db, client):
    from apps.tenancy.services import project_delete, tenant_delete

    call_command("seed_demo")
    actor = User.objects.get(email=SYSTEM_ADMIN_EMAIL)
    project_delete(project=Project.objects.get(tenant__slug="acme", name="Checkout"), actor=actor)
    tenant_delete(tenant=Tenant.objects.get(slug="initech"), actor=actor)

    call_command("seed_demo")

    assert Tenant.objects.filter(slug="initech").exists()
    assert _post_demo_event(client, "after-deletes").status_code == 202


def test_production_knows_every_account_the_demo_creates(db):
    # apps/operations/checks.py refuses a start with these (apps/core/demo_markers.py).
    from apps.core.demo_markers import DEMO_EMAILS

    call_command("seed_demo")
    assert set(User.objects.values_list("email", flat=True)) == set(DEMO_EMAILS)
