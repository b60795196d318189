"""Each sensitive action (apps.accounts.reauth) with a fresh and a stale confirmation.

Stale: a GET is sent to "Confirm your password", a POST is not carried out
(the confirm page, 403, "Your changes were not saved"), and nothing changes:
no audit entry, and for the actions with a `done` check, not that either.
Fresh: the action is carried out. A new entry in the list without a case
here fails `test_every_sensitive_action_has_a_case`.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import NoReverseMatch, resolve, reverse

from apps.accounts.models import User
from apps.accounts.reauth import SENSITIVE_ACTIONS, SESSION_KEY, sensitive_action
from apps.audit.models import AuditEntry
from apps.pipelines.models import ProjectApiToken
from apps.tenancy.models import Membership, Role, Tenant
from apps.webhooks.models import WebhookEndpoint
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.factories import MembershipFactory, SystemAdminFactory, UserFactory

pytestmark = pytest.mark.django_db

CONFIRM = reverse("account:reauth")
NEW_PASSWORD = "Taken-over-Passw0rd-42"


@dataclass
class World:
    tenant: Tenant
    project: object
    victim: User  # another system administrator
    member: User  # a user who is not one
    smtp_row: object
    membership: Membership  # the member's, in the tenant

    def url(self, view: str) -> str:
        """`view`'s address, its arguments filled from this world."""
        candidates = {
            "tenant_slug": self.tenant.slug,
            "project_slug": self.project.slug,
            "object_id": self.smtp_row.pk,
            "id": self.victim.pk,
        }
        if view == "admin:accounts_user_change":
            candidates["object_id"] = self.victim.pk
        if view == "admin:tenancy_tenant_change":
            candidates["object_id"] = self.tenant.pk
        candidates["pk"] = self.tenant.pk if view.startswith("admin:") else self.membership.pk
        for needed in (
            [],
            ["tenant_slug"],
            ["tenant_slug", "project_slug"],
            ["tenant_slug", "pk"],
            ["object_id"],
            ["id"],
            ["pk"],
        ):
            try:
                return reverse(view, kwargs={name: candidates[name] for name in needed})
            except NoReverseMatch:
                continue
        raise AssertionError(f"no arguments found for {view}")


@dataclass
class Case:
    """How to carry out one action, and how to see it was (None: any answer but confirm)."""

    data: Callable[[World], dict] = field(default=lambda w: {})
    done: Callable[[World], bool] | None = None


def _user_form(w: World, **changes) -> dict:
    return {"email": w.victim.email, "full_name": w.victim.full_name, "_save": "Save", **changes}


def _tenant_form(w: World, **changes) -> dict:
    data = {"name": w.tenant.name, "is_active": "on", "smtp_extra_ports": "", "_save": "Save"}
    return {**data, **changes}


def _fresh(obj):
    obj.refresh_from_db()
    return obj


CASES: dict[str, Case] = {
    # People.
    "admin:accounts_user_change": Case(
        data=lambda w: _user_form(w, email="attacker@evil.example"),
        done=lambda w: _fresh(w.victim).email == "attacker@evil.example",
    ),
    "admin:accounts_user_add": Case(
        data=lambda w: {
            "email": "backdoor@evil.example",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "usable_password": "true",
        },
        done=lambda w: User.objects.filter(email="backdoor@evil.example").exists(),
    ),
    "admin:auth_user_password_change": Case(
        data=lambda w: {
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "usable_password": "true",
        },
        done=lambda w: _fresh(w.victim).check_password(NEW_PASSWORD),
    ),
    "admin:tenancy_systemadministrator_grant": Case(
        data=lambda w: {"email": w.member.email},
        done=lambda w: _fresh(w.member).is_system_admin,
    ),
    "admin:tenancy_systemadministrator_changelist": Case(
        data=lambda w: {"action": "revoke", "_selected_action": [w.victim.pk]},
        done=lambda w: not _fresh(w.victim).is_system_admin,
    ),
    # Invitations and roles in a tenant.
    "tenancy:membership_invite": Case(
        data=lambda w: {"email": "new@example.com", "role": Role.TENANT_ADMIN, "scope": ""},
        done=lambda w: Membership.objects.filter(user__email="new@example.com").exists(),
    ),
    "tenancy:membership_update": Case(
        data=lambda w: {"role": Role.TENANT_ADMIN, "scope": ""},
        done=lambda w: _fresh(w.membership).role == Role.TENANT_ADMIN,
    ),
    "admin:tenancy_tenant_invite": Case(
        data=lambda w: {"email": "boss@acme.example"},
        done=lambda w: Membership.objects.filter(
            user__email="boss@acme.example", tenant=w.tenant, role=Role.TENANT_ADMIN
        ).exists(),
    ),
    # Network allowance.
    "admin:tenancy_tenant_change": Case(
        data=lambda w: _tenant_form(w, smtp_private_network_allowed="on"),
        done=lambda w: _fresh(w.tenant).smtp_private_network_allowed,
    ),
    # Events API tokens.
    "tenancy:pipelines:token_create": Case(
        data=lambda w: {"name": "CI"},
        done=lambda w: ProjectApiToken.objects.filter(project=w.project).exists(),
    ),
    # Delivery-webhook credentials.
    "webhooks:create": Case(
        data=lambda w: {"provider": "postmark"},
        done=lambda w: WebhookEndpoint.objects.filter(tenant=w.tenant).exists(),
    ),
    "admin:webhooks_webhookendpoint_add": Case(
        data=lambda w: {"provider": "postmark"},
        done=lambda w: WebhookEndpoint.objects.filter(tenant__isnull=True).exists(),
    ),
    # SMTP, OAuth2 and provider credentials: their own tests fill the forms (signed in
    # freshly); here each is refused when stale and not refused when fresh.
    **{
        name: Case()
        for name in [
            "admin:connections_smtpsettings_add",
            "admin:connections_smtpsettings_change",
            "admin:connections_smtpsettings_delete",
            "admin:connections_smtpsettings_changelist",
            "tenancy:mailsettings:edit",
            "tenancy:mailsettings:use_host",
            "mailsettings_oauth:setup",
            "mailsettings_oauth:disconnect",
            "admin:connections_oauthgrant_changelist",
            "admin:connections_oauthgrant_disconnect",
            "mailsettings_providers:edit",
            "mailsettings_providers:remove",
            "mailsettings_providers:secondary",
            "mailsettings_providers:secondary_remove",
            "mailsettings_providers:secondary_smtp",
            "mailsettings_providers:secondary_smtp_remove",
            "admin:connections_providersettings_changelist",
            "admin:connections_providersettings_remove",
            "admin:connections_providersettings_secondary",
            "admin:connections_providersettings_secondary_remove",
            "admin:connections_providersettings_secondary_smtp",
            "admin:connections_providersettings_secondary_smtp_remove",
        ]
    },
}

VIEWS = sorted(action.view for action in SENSITIVE_ACTIONS)


def test_every_sensitive_action_has_a_case():
    assert sorted(CASES) == VIEWS


@pytest.fixture
def world(tenant, project, system_admin):
    member = UserFactory(email="someone@example.com")
    return World(
        tenant=tenant,
        project=project,
        victim=SystemAdminFactory(email="other-admin@example.com"),
        member=member,
        smtp_row=SmtpSettingsFactory(),
        membership=MembershipFactory(tenant=tenant, user=member, role=Role.MEMBER),
    )


def _client_for(view: str, tenant_admin, system_admin, stale: bool) -> Client:
    client = Client()
    client.force_login(system_admin if view.startswith("admin:") else tenant_admin)
    if stale:
        session = client.session
        session[SESSION_KEY] = time.time() - 3600
        session.save()
    return client


def _is_confirm_page(response) -> bool:
    if response.status_code == 302:
        return response["Location"].startswith(CONFIRM)
    return response.status_code == 403 and "Your changes were not saved" in response.text


@pytest.mark.parametrize("view", VIEWS)
def test_stale_confirmation_is_asked_again_and_nothing_changes(
    view, world, tenant_admin, system_admin
):
    action, case = sensitive_action(view), CASES[view]
    client = _client_for(view, tenant_admin, system_admin, stale=True)
    url = world.url(view)
    if not (action.post_only or action.fields):
        response = client.get(url)
        assert response.status_code == 302, view
        assert response["Location"].startswith(CONFIRM), view
    audited = AuditEntry.objects.count()

    response = client.post(url, case.data(world))

    assert response.status_code == 403, view
    assert "Your changes were not saved" in response.text, view
    assert 'name="password"' in response.text  # the confirm form
    assert AuditEntry.objects.count() == audited, view
    if case.done is not None:
        assert not case.done(world), view


@pytest.mark.parametrize("view", VIEWS)
def test_fresh_confirmation_lets_it_through(view, world, tenant_admin, system_admin):
    action, case = sensitive_action(view), CASES[view]
    client = _client_for(view, tenant_admin, system_admin, stale=False)
    url = world.url(view)
    if not (action.post_only or action.fields):
        assert not _is_confirm_page(client.get(url)), view

    response = client.post(url, case.data(world))

    assert not _is_confirm_page(response), view
    if case.done is not None:
        assert case.done(world), (view, response.status_code)


@pytest.mark.parametrize("view", VIEWS)
def test_confirming_again_opens_the_way(view, world, tenant_admin, system_admin, settings):
    """Stale, then the password typed on the confirm page: the same request goes through."""
    from tests.factories import TEST_PASSWORD

    case = CASES[view]
    client = _client_for(view, tenant_admin, system_admin, stale=True)
    url = world.url(view)
    response = client.post(CONFIRM, {"password": TEST_PASSWORD, "next": url})
    assert response.status_code == 302
    response = client.post(url, case.data(world))
    assert not _is_confirm_page(response), view
    if case.done is not None:
        assert case.done(world), view


# Admin change forms: only the listed fields need a fresh confirmation.


def test_a_stale_session_may_still_rename_a_user_and_a_tenant(world, system_admin):
    client = _client_for("admin:", None, system_admin, stale=True)
    response = client.post(
        world.url("admin:accounts_user_change"), _user_form(world, full_name="Renamed Person")
    )
    assert response.status_code == 302
    assert _fresh(world.victim).full_name == "Renamed Person"
    response = client.post(
        world.url("admin:tenancy_tenant_change"), _tenant_form(world, name="Acme 2")
    )
    assert response.status_code == 302
    assert _fresh(world.tenant).name == "Acme 2"
    assert not world.tenant.smtp_private_network_allowed


def test_a_stale_session_cannot_enable_a_disabled_user(world, system_admin):
    world.member.is_active = False
    world.member.save()
    client = _client_for("admin:", None, system_admin, stale=True)
    url = reverse("admin:accounts_user_change", args=[world.member.pk])
    data = {"email": world.member.email, "full_name": "", "is_active": "on", "_save": "Save"}
    assert client.post(url, data).status_code == 403
    assert not _fresh(world.member).is_active


def test_after_a_refused_post_the_confirm_page_leads_back_to_the_form_it_came_from(
    world, tenant_admin
):
    """ "New API token" is posted from the token list: confirming leads back there."""
    client = _client_for("tenancy:", tenant_admin, None, stale=True)
    listing = reverse("tenancy:pipelines:token_list", args=[world.tenant.slug, world.project.slug])
    response = client.post(
        world.url("tenancy:pipelines:token_create"),
        {"name": "CI"},
        headers={"referer": f"http://testserver{listing}"},
    )
    assert response.status_code == 403
    assert f'name="next" value="http://testserver{listing}"' in response.text
    forged = client.post(
        world.url("tenancy:pipelines:token_create"),
        {"name": "CI"},
        headers={"referer": "https://evil.example/x"},
    )
    assert "evil.example" not in forged.text


def test_the_fields_named_for_admin_forms_exist(world):
    """A misspelt field would silently drop its protection."""
    for action in SENSITIVE_ACTIONS:
        if not action.fields:
            continue
        model_admin = resolve(world.url(action.view)).func.model_admin
        for name in action.fields:
            model_admin.model._meta.get_field(name)  # raises FieldDoesNotExist
