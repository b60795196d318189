"""The isolation matrix, generated from the URL configuration.

Every pattern whose route contains `<slug:tenant_slug>` must have a recipe
here (how to fill its path and a POST that would succeed for someone
allowed). For each one: a user of another tenant gets 404; a tenant admin
pointing at another tenant's object gets 404; a member without the role
gets 403; and none of them changes anything in the database or sends mail.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.urls import URLResolver, get_resolver, reverse

from apps.accounts.models import User
from apps.audit.models import AuditEntry
from apps.connections.models import OAuthGrant, ProviderSettings, SmtpSettings
from apps.core.fields import Secret
from apps.delivery.models import Delivery, DeliveryStatus, Event
from apps.groups.models import UserGroup, UserGroupMember
from apps.pipelines.models import (
    NotificationDefaults,
    NotificationRule,
    NotificationRuleGroup,
    Pipeline,
    ProjectApiToken,
)
from apps.preferences.models import NotificationPreference, Suppression, SuppressionReason
from apps.tenancy.models import Membership, Organization, Project, Role, Tenant
from apps.webhooks.models import WebhookEndpoint
from apps.webhooks.services import webhook_endpoint_create
from tests.connections.providers.factories import ProviderSettingsFactory
from tests.connections.smtp.factories import SmtpSettingsFactory, smtp_form_data
from tests.delivery.log_records import make_deliveries, make_event
from tests.factories import (
    MembershipFactory,
    NotificationRuleFactory,
    OrganizationFactory,
    PipelineFactory,
    ProjectApiTokenFactory,
    ProjectFactory,
    UserFactory,
    UserGroupFactory,
)

ADMIN, MEMBER = Role.TENANT_ADMIN, Role.MEMBER


@dataclass
class World:
    """One tenant's things, with short names that differ between tenants."""

    tenant: Tenant
    admin: User
    member: User
    org_admin: User
    invited: Membership
    organization: Organization
    project: Project
    group: UserGroup
    group_member: User
    smtp_settings: SmtpSettings
    pipeline: Pipeline
    rule: NotificationRule
    token: ProjectApiToken
    event: Event
    failed_delivery: Delivery
    suppression: Suppression
    webhook: WebhookEndpoint
    provider: ProviderSettings

    @classmethod
    def build(cls, tenant: Tenant) -> "World":
        key = tenant.slug
        organization = OrganizationFactory(tenant=tenant, slug=f"{key}-sales")
        project = ProjectFactory(organization=organization, slug=f"{key}-web")
        people = {}
        for name, role, scope in [
            ("admin", Role.TENANT_ADMIN, {}),
            ("member", Role.MEMBER, {}),
            ("org_admin", Role.ORG_ADMIN, {"organization": organization}),
            ("group_member", Role.MEMBER, {}),
        ]:
            people[name] = UserFactory(email=f"{name}@{key}.example")
            MembershipFactory(tenant=tenant, user=people[name], role=role, **scope)
        invited_user = User.objects.create_user(email=f"invited@{key}.example", is_active=False)
        invited = MembershipFactory(tenant=tenant, user=invited_user)
        group = UserGroupFactory(tenant=tenant, organization=organization)
        UserGroupMember.objects.create(tenant=tenant, group=group, user=people["group_member"])
        smtp_settings = SmtpSettingsFactory(tenant=tenant, host=f"smtp.{key}.example", secret=key)
        OAuthGrant.objects.create(
            smtp_settings=smtp_settings,
            tenant=tenant,
            provider="microsoft365",
            directory_id=f"{key}.onmicrosoft.com",
            client_id=_OAUTH["client_id"],
            client_secret=Secret(f"{key}-client-secret"),
        )
        pipeline = PipelineFactory(project=project, slug=f"{key}-deploy")
        event = make_event(pipeline, run_id=f"{key}-4711")
        failed = make_deliveries(event, DeliveryStatus.FAILED, 1, prefix=f"oncall-{key}")[0]
        ProviderSettingsFactory(tenant=tenant, role="secondary", provider="brevo")
        # Both failover kinds (the services keep one; the pages of each need a row).
        SmtpSettingsFactory(
            tenant=tenant, role="secondary", host=f"smtp.{key}.example", secret=f"{key}-2"
        )
        return cls(
            tenant=tenant,
            pipeline=pipeline,
            event=event,
            failed_delivery=failed,
            suppression=Suppression.objects.create(
                tenant=tenant, address=f"bounced@{key}.example", reason=SuppressionReason.REFUSED
            ),
            rule=NotificationRuleFactory(pipeline=pipeline, groups=[group]),
            webhook=webhook_endpoint_create(tenant=tenant, provider="postmark", actor=None)[0],
            token=ProjectApiTokenFactory(project=project),
            provider=ProviderSettingsFactory(tenant=tenant, provider="postmark"),
            smtp_settings=smtp_settings,
            invited=invited,
            organization=organization,
            project=project,
            group=group,
            **people,
        )


@dataclass(frozen=True)
class Recipe:
    role: Role
    kwargs: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] = lambda w: {}
    post_only: bool = False
    # What a POST by someone allowed returns.
    allowed_post: int = field(default=302)


def _org(w):
    return {"org_slug": w.organization.slug}


def _project(w):
    return {"project_slug": w.project.slug}


def _membership(w):
    return {"pk": w.invited.pk}


def _group(w):
    return {"pk": w.group.pk}


def _event(w):
    return {"pk": w.event.pk}


def _delivery(w):
    return {"pk": w.failed_delivery.pk}


def _pipeline(w):
    return {"pk": w.pipeline.pk}


def _rule(w):
    return {"pk": w.rule.pk}


_NAME = {"name": "Renamed", "slug": ""}
_RULE = {
    "name": "On call",
    "event_types": ["pipeline_failed", "stage_failed"],
    "addresses": "oncall@example.com",
    "enabled": "on",
}
_GROUP = {"name": "On call", "alias_addresses": "oncall@example.com", "scope": ""}
# Blank secret: keep the stored one.
_OAUTH = {
    "provider": "microsoft365",
    "directory_id": "renamed.onmicrosoft.com",
    "client_id": "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901",
    "client_secret": "",
}

# Blank key: keep the stored one (apps/connections).
_PROVIDER = {"provider": "postmark", "postmark_secret": "", "from_email": "n@example.com"}
_SECONDARY = {"provider": "brevo", "brevo_secret": "", "from_email": "n@example.com"}

RECIPES: dict[str, Recipe] = {
    "tenancy:dashboard": Recipe(MEMBER, allowed_post=405),
    "tenancy:organization_list": Recipe(MEMBER, allowed_post=405),
    "tenancy:organization_create": Recipe(ADMIN, data=lambda w: _NAME),
    "tenancy:organization_detail": Recipe(MEMBER, _org, allowed_post=405),
    "tenancy:organization_update": Recipe(ADMIN, _org, lambda w: _NAME),
    "tenancy:organization_delete": Recipe(ADMIN, _org),
    "tenancy:project_create": Recipe(ADMIN, _org, lambda w: _NAME),
    "tenancy:project_list": Recipe(MEMBER, allowed_post=405),
    "tenancy:project_update": Recipe(ADMIN, _project, lambda w: _NAME),
    "tenancy:project_delete": Recipe(ADMIN, _project),
    "tenancy:membership_list": Recipe(ADMIN, allowed_post=405),
    "tenancy:membership_invite": Recipe(
        ADMIN, data=lambda w: {"email": "new@example.com", "role": MEMBER, "scope": ""}
    ),
    "tenancy:membership_update": Recipe(ADMIN, _membership, lambda w: {"role": ADMIN, "scope": ""}),
    "tenancy:membership_remove": Recipe(ADMIN, _membership),
    "tenancy:membership_resend": Recipe(ADMIN, _membership, post_only=True),
    "tenancy:audit_log": Recipe(ADMIN, allowed_post=405),
    "tenancy:groups:list": Recipe(MEMBER, allowed_post=405),
    "tenancy:groups:create": Recipe(ADMIN, data=lambda w: _GROUP),
    "tenancy:groups:detail": Recipe(MEMBER, _group, allowed_post=405),
    "tenancy:groups:update": Recipe(ADMIN, _group, lambda w: _GROUP),
    "tenancy:groups:delete": Recipe(ADMIN, _group),
    "tenancy:groups:member_add": Recipe(
        ADMIN, _group, lambda w: {"user": w.member.pk}, post_only=True
    ),
    "tenancy:groups:member_remove": Recipe(
        ADMIN, lambda w: {"pk": w.group.pk, "user_pk": w.group_member.pk}, post_only=True
    ),
    "tenancy:mailsettings:edit": Recipe(
        ADMIN, data=lambda w: smtp_form_data(host=w.smtp_settings.host, from_name="Renamed")
    ),
    "tenancy:mailsettings:use_host": Recipe(ADMIN),
    # OAuth2 sign-in for the tenant's own SMTP server (apps/connections).
    "mailsettings_oauth:setup": Recipe(ADMIN, data=lambda w: _OAUTH),
    "mailsettings_oauth:test": Recipe(ADMIN, post_only=True, allowed_post=200),
    "mailsettings_oauth:disconnect": Recipe(ADMIN),
    "tenancy:delivery:log": Recipe(ADMIN, allowed_post=405),
    "tenancy:delivery:event_detail": Recipe(ADMIN, _event, allowed_post=405),
    "tenancy:delivery:event_progress": Recipe(ADMIN, _event, allowed_post=405),
    "tenancy:delivery:resend": Recipe(ADMIN, _delivery, post_only=True),
    "tenancy:delivery:event_resend_failed": Recipe(ADMIN, _event, post_only=True),
    "tenancy:suppressions:list": Recipe(ADMIN, allowed_post=405),
    "tenancy:suppressions:add": Recipe(ADMIN, data=lambda w: {"address": "new@example.com"}),
    "tenancy:suppressions:remove": Recipe(ADMIN, lambda w: {"pk": w.suppression.pk}),
    "tenancy:pipelines:list": Recipe(MEMBER, allowed_post=405),
    "tenancy:pipelines:defaults": Recipe(
        ADMIN, data=lambda w: {"enabled": "on", "levels": ["warning", "error"]}
    ),
    "tenancy:pipelines:project": Recipe(MEMBER, _project, allowed_post=405),
    "tenancy:pipelines:create": Recipe(ADMIN, _project, lambda w: _NAME),
    "tenancy:pipelines:rule_create_for_project": Recipe(ADMIN, _project, lambda w: _RULE),
    "tenancy:pipelines:token_list": Recipe(ADMIN, _project, allowed_post=405),
    "tenancy:pipelines:token_create": Recipe(
        ADMIN, _project, lambda w: {"name": "CI"}, post_only=True, allowed_post=200
    ),
    "tenancy:pipelines:token_revoke": Recipe(ADMIN, lambda w: {"pk": w.token.pk}),
    "tenancy:pipelines:detail": Recipe(MEMBER, _pipeline, allowed_post=405),
    "tenancy:pipelines:update": Recipe(ADMIN, _pipeline, lambda w: _NAME),
    "tenancy:pipelines:delete": Recipe(ADMIN, _pipeline),
    "tenancy:pipelines:notifications": Recipe(
        ADMIN, _pipeline, lambda w: {"notifications": "on", "levels": ["error"]}
    ),
    "tenancy:pipelines:rule_create": Recipe(ADMIN, _pipeline, lambda w: _RULE),
    "tenancy:pipelines:rule_update": Recipe(
        ADMIN, _rule, lambda w: {**_RULE, "groups": [w.group.pk]}
    ),
    "tenancy:pipelines:rule_delete": Recipe(ADMIN, _rule),
    "tenancy:pipelines:rule_set_enabled": Recipe(ADMIN, _rule, post_only=True),
    "tenancy:pipelines:rule_test": Recipe(ADMIN, _rule, post_only=True, allowed_post=200),
    # Email-service providers, primary and failover (apps/connections).
    "mailsettings_providers:edit": Recipe(ADMIN, data=lambda w: _PROVIDER),
    "mailsettings_providers:remove": Recipe(ADMIN),
    "mailsettings_providers:secondary": Recipe(ADMIN, data=lambda w: _SECONDARY),
    "mailsettings_providers:secondary_remove": Recipe(ADMIN),
    "mailsettings_providers:secondary_smtp": Recipe(
        ADMIN, data=lambda w: smtp_form_data(host=w.smtp_settings.host)
    ),
    "mailsettings_providers:secondary_smtp_remove": Recipe(ADMIN),
    # Delivery webhooks (apps.webhooks).
    "webhooks:list": Recipe(ADMIN, allowed_post=405),
    "webhooks:create": Recipe(
        ADMIN, data=lambda w: {"provider": "postmark"}, post_only=True, allowed_post=200
    ),
    "webhooks:revoke": Recipe(ADMIN, lambda w: {"pk": w.webhook.pk}),
    # My notifications: each member's own settings in the tenant (apps.preferences).
    "preferences:my_tenant": Recipe(MEMBER, data=lambda w: {"level": "failures"}),
    "preferences:my_project": Recipe(MEMBER, _project, lambda w: {"level": "none"}),
}


def tenant_scoped_patterns() -> dict[str, object]:
    """Every URL pattern below a route that captures the tenant, by full name."""
    found = {}

    def walk(patterns, namespace: str, route: str):
        for pattern in patterns:
            full_route = route + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, ns, full_route)
            elif "<slug:tenant_slug>" in full_route:
                assert pattern.name, f"The tenant page {full_route} needs a URL name."
                found[namespace + pattern.name] = pattern

    walk(get_resolver().url_patterns, "", "")
    return found


PATTERNS = tenant_scoped_patterns()


def test_every_tenant_page_has_a_recipe():
    patterns = PATTERNS
    missing = sorted(set(patterns) - set(RECIPES))
    assert not missing, f"Add isolation recipes for: {missing}"
    assert sorted(set(RECIPES) - set(patterns)) == [], "Recipes for pages that no longer exist"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_tenant_page_goes_through_tenant_view_with_the_recipe_role(name):
    callback = PATTERNS[name].callback
    assert getattr(callback, "tenant_role", None) == RECIPES[name].role


def _snapshot() -> dict:
    models = [
        Tenant,
        Organization,
        Project,
        Membership,
        UserGroup,
        UserGroupMember,
        User,
        SmtpSettings,
        OAuthGrant,
        NotificationDefaults,
        Pipeline,
        NotificationRule,
        NotificationRuleGroup,
        ProjectApiToken,
        Event,
        Delivery,
        Suppression,
        NotificationPreference,
        WebhookEndpoint,
        ProviderSettings,
    ]
    state = {m.__name__: list(m.objects.order_by("pk").values()) for m in models}
    state["AuditEntry"] = AuditEntry.objects.count()
    return state


@pytest.fixture
def worlds(tenant, other_tenant):
    return World.build(tenant), World.build(other_tenant)


def _url(name: str, tenant: Tenant, objects: World) -> str:
    return reverse(name, kwargs={"tenant_slug": tenant.slug, **RECIPES[name].kwargs(objects)})


def _assert_refused(client, user, url, data, status, mailoutbox, *, get=None, post=None):
    client.force_login(user)
    before = _snapshot()
    assert client.get(url).status_code == (get or status)
    assert client.post(url, data).status_code == (post or status)
    assert _snapshot() == before
    assert mailoutbox == []


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_someone_from_another_tenant_gets_404(client, worlds, name, mailoutbox):
    ours, theirs = worlds
    url = _url(name, ours.tenant, ours)
    _assert_refused(client, theirs.admin, url, RECIPES[name].data(ours), 404, mailoutbox)


@pytest.mark.parametrize("name", sorted(n for n, p in PATTERNS.items() if p.pattern.converters))
def test_another_tenants_object_in_our_tenant_url_gets_404(client, worlds, name, mailoutbox):
    """The method check comes before the object lookup: 405 says nothing about the object."""
    ours, theirs = worlds
    recipe = RECIPES[name]
    url = _url(name, ours.tenant, theirs)
    _assert_refused(
        client,
        ours.admin,
        url,
        recipe.data(theirs),
        404,
        mailoutbox,
        get=405 if recipe.post_only else None,
        post=405 if recipe.allowed_post == 405 else None,
    )


@pytest.mark.parametrize("name", sorted(n for n in RECIPES if RECIPES[n].role == ADMIN))
@pytest.mark.parametrize("persona", ["member", "org_admin"])
def test_a_member_without_the_role_gets_403(client, worlds, name, persona, mailoutbox):
    ours, _ = worlds
    url = _url(name, ours.tenant, ours)
    user = getattr(ours, persona)
    _assert_refused(client, user, url, RECIPES[name].data(ours), 403, mailoutbox)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_system_administrator_is_not_a_tenant_member(
    client, worlds, system_admin, name, mailoutbox
):
    ours, _ = worlds
    url = _url(name, ours.tenant, ours)
    _assert_refused(client, system_admin, url, RECIPES[name].data(ours), 404, mailoutbox)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_someone_allowed_gets_the_page_and_the_action(
    client, worlds, name, django_capture_on_commit_callbacks
):
    """The positive twin: the recipes are real, so the refusals above mean something."""
    ours, _ = worlds
    recipe = RECIPES[name]
    client.force_login(ours.admin if recipe.role == ADMIN else ours.member)
    url = _url(name, ours.tenant, ours)
    assert client.get(url).status_code == (405 if recipe.post_only else 200)
    before = _snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, recipe.data(ours))
    assert response.status_code == recipe.allowed_post, getattr(response, "context", None) and (
        response.context.get("form") and response.context["form"].errors
    )
    if recipe.allowed_post == 302:
        assert _snapshot() != before


def test_anonymous_visitors_are_sent_to_sign_in(client, worlds):
    ours, _ = worlds
    for name in RECIPES:
        response = client.get(_url(name, ours.tenant, ours))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
