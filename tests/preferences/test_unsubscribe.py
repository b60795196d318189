"""The unsubscribe link: GET asks, POST (the Confirm button or a mail program's one-click) acts."""

import re
import time
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.delivery.models import DeliveryStatus
from apps.delivery.selectors import event_progress
from apps.preferences.models import (
    NotificationPreference,
    PreferenceLevel,
    Suppression,
    SuppressionReason,
)
from apps.preferences.unsubscribe import SALT, UnsubscribeScope, unsubscribe_token
from tests.delivery.engine import add_members, deliver, make_event, make_pipeline
from tests.factories import NotificationRuleFactory, UserFactory, UserGroupFactory

pytestmark = pytest.mark.django_db

INVALID = (
    "This unsubscribe link is not valid or has expired. Sign in and use My notifications instead."
)
ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def ann(db):
    return UserFactory(email="ann@payments.example")


@pytest.fixture
def mail_client():
    """A mail program: no session, no CSRF cookie, and CSRF checks on as in production."""
    return Client(enforce_csrf_checks=True)


def link(pipeline, *, user=None, address=None, scope=UnsubscribeScope.PIPELINE) -> str:
    target = {
        UnsubscribeScope.PIPELINE: pipeline.pk,
        UnsubscribeScope.PROJECT: pipeline.project_id,
        UnsubscribeScope.TENANT: None,
    }[scope]
    token = unsubscribe_token(
        address=address or user.email,
        user_id=user.pk if user else None,
        tenant_id=pipeline.tenant_id,
        scope=scope,
        target_id=target,
    )
    return reverse("unsubscribe:link", args=[token])


def one_click(client, url):
    """The POST of RFC 8058, as a mail program sends it."""
    return client.post(url, ONE_CLICK, content_type="application/x-www-form-urlencoded")


def state() -> dict:
    return {
        "preferences": list(NotificationPreference.objects.values()),
        "suppressions": list(Suppression.objects.values()),
        "audit": AuditEntry.objects.count(),
    }


def text(response) -> str:
    """The page's words, without its tags."""
    return " ".join(re.sub(r"<[^>]+>", "", response.content.decode()).split())


# GET changes nothing ------------------------------------------------------------------------


def test_opening_the_link_only_asks_to_confirm(mail_client, ann, deploy_prod):
    before = state()

    response = mail_client.get(link(deploy_prod, user=ann))

    assert response.status_code == 200
    page = text(response)
    assert "Unsubscribe from pipeline “Deploy prod” of project “Payments”?" in page
    assert "ann@payments.example" in page
    assert "marked mandatory, such as production failures, still reach you" in page
    html = response.content.decode()
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in html
    assert ">Confirm</button>" in html
    assert state() == before
    assert response["Cache-Control"].startswith("max-age=0")


def test_opening_the_link_of_an_address_without_an_account_changes_nothing(
    mail_client, deploy_prod
):
    before = state()

    response = mail_client.get(link(deploy_prod, address="ops@x.example"))

    assert response.status_code == 200
    assert "Acme will send no more notifications to ops@x.example" in text(response)
    assert state() == before


# POST unsubscribes --------------------------------------------------------------------------


def test_one_click_sets_none_at_the_pipeline_naming_its_project_and_is_audited(
    mail_client, tenant, ann, deploy_prod
):
    response = one_click(mail_client, link(deploy_prod, user=ann))

    assert response.status_code == 200
    assert "You are unsubscribed" in text(response)
    assert "ann@payments.example no longer receives the notifications of pipeline" in text(response)
    preference = NotificationPreference.objects.get()
    assert (preference.tenant, preference.user, preference.level) == (tenant, ann, "none")
    assert (preference.pipeline, preference.project) == (deploy_prod, deploy_prod.project)
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.tenant, entry.action) == (
        None,
        tenant,
        "notification_preference.unsubscribed",
    )
    assert entry.target_repr == "ann@payments.example"
    assert entry.changes == {
        "unsubscribed from": "pipeline “Deploy prod” of project “Payments”",
        "level": ["Inherit", "None"],
    }
    assert entry.ip_address == "127.0.0.1"


def test_the_confirm_button_does_the_same(client, ann, deploy_prod):
    response = client.post(link(deploy_prod, user=ann), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert NotificationPreference.objects.get().level == PreferenceLevel.NONE


@pytest.mark.parametrize(
    ("scope", "project", "pipeline", "what"),
    [
        (UnsubscribeScope.PROJECT, True, False, "project “Payments”"),
        (UnsubscribeScope.TENANT, False, False, "everything from Acme"),
    ],
)
def test_a_project_or_tenant_link_sets_none_at_its_scope(
    mail_client, ann, deploy_prod, scope, project, pipeline, what
):
    url = link(deploy_prod, user=ann, scope=scope)
    assert f"Unsubscribe from {what}?" in text(mail_client.get(url))

    one_click(mail_client, url)

    preference = NotificationPreference.objects.get()
    assert preference.level == PreferenceLevel.NONE
    assert (preference.project is not None, preference.pipeline is not None) == (project, pipeline)


def test_an_existing_choice_at_the_scope_becomes_none_and_keeps_its_muted_events(
    mail_client, tenant, ann, deploy_prod
):
    NotificationPreference.objects.create(
        tenant=tenant,
        user=ann,
        project=deploy_prod.project,
        level=PreferenceLevel.FAILURES,
        muted_event_types=["stage_failed"],
    )

    one_click(mail_client, link(deploy_prod, user=ann, scope=UnsubscribeScope.PROJECT))

    preference = NotificationPreference.objects.get()
    assert (preference.level, preference.muted_event_types) == ("none", ["stage_failed"])
    assert AuditEntry.objects.get().changes["level"] == ["Failures only", "None"]


def test_an_address_without_an_account_goes_on_the_suppression_list(
    mail_client, tenant, deploy_prod
):
    response = one_click(mail_client, link(deploy_prod, address="Ops@X.example"))

    assert response.status_code == 200
    assert "Ops@X.example is on the suppression list of Acme" in text(response)
    suppression = Suppression.objects.get()
    assert (suppression.tenant, suppression.address, suppression.reason) == (
        tenant,
        "ops@x.example",
        SuppressionReason.UNSUBSCRIBED,
    )
    assert "pipeline “Deploy prod”" in suppression.detail
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.tenant, entry.action) == (None, tenant, "suppression.unsubscribed")
    assert not NotificationPreference.objects.exists()


def test_a_deleted_accounts_address_is_still_unsubscribed(mail_client, ann, deploy_prod):
    url = link(deploy_prod, user=ann)
    ann.delete()

    assert one_click(mail_client, url).status_code == 200

    assert Suppression.objects.get().address == "ann@payments.example"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(lambda p, u: link(p, user=u), id="account"),
        pytest.param(lambda p, u: link(p, address="ops@x.example"), id="no-account"),
    ],
)
def test_unsubscribing_again_changes_nothing(mail_client, ann, deploy_prod, url):
    url = url(deploy_prod, ann)
    one_click(mail_client, url)
    after_first = state()

    response = one_click(mail_client, url)

    assert response.status_code == 200
    assert "You were already unsubscribed" in text(response)
    assert state() == after_first


# Refused links -----------------------------------------------------------------------------


def _refused(client, url, status):
    before = state()
    for response in (client.get(url), one_click(client, url)):
        assert response.status_code == status
        assert INVALID in text(response)
    assert state() == before


def test_a_tampered_link_is_refused_with_a_clear_page(mail_client, ann, deploy_prod):
    url = link(deploy_prod, user=ann)
    payload, stamp, signature = url.split("/")[-2].split(":")
    other = link(deploy_prod, address="mallory@x.example").split("/")[-2].split(":")[0]

    for token in (f"{other}:{stamp}:{signature}", f"{payload}:{stamp}:{signature[:-2]}xx", "x"):
        _refused(mail_client, reverse("unsubscribe:link", args=[token]), 400)


def test_a_token_signed_for_something_else_or_of_the_wrong_shape_is_refused(
    mail_client, ann, deploy_prod
):
    payload = [ann.email, ann.pk, deploy_prod.tenant_id, "p", deploy_prod.pk]
    for token in (
        signing.dumps(payload),  # the default salt: another feature's signature
        signing.dumps({"address": ann.email}, salt=SALT),
        signing.dumps([*payload[:3], "everything", None], salt=SALT),
    ):
        _refused(mail_client, reverse("unsubscribe:link", args=[token]), 400)


def test_an_expired_link_is_refused(mail_client, ann, deploy_prod, settings, monkeypatch):
    settings.UNSUBSCRIBE_LINK_DAYS = 60
    signed_at = time.time() - timedelta(days=60, minutes=1).total_seconds()
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: signed_at)
        url = link(deploy_prod, user=ann)

    _refused(mail_client, url, 410)


def test_a_link_to_a_deleted_pipeline_is_refused(mail_client, ann, deploy_prod):
    url = link(deploy_prod, user=ann)
    deploy_prod.delete()

    _refused(mail_client, url, 410)


def test_only_get_and_post(mail_client, ann, deploy_prod):
    assert mail_client.put(link(deploy_prod, user=ann)).status_code == 405


# What the engine does next -----------------------------------------------------------------


@pytest.fixture
def release_managers(tenant, deploy_prod):
    group = UserGroupFactory(tenant=tenant, alias_addresses=[], notify_all_members=True)
    NotificationRuleFactory(
        pipeline=None, project=deploy_prod.project, groups=[group], addresses=["ops@x.example"]
    )
    return add_members(group, "ann@payments.example", "bob@payments.example")


def test_the_next_event_reaches_the_others_but_not_who_unsubscribed(
    mail_client, mail_server, sink, deploy_prod, release_managers
):
    ann, _ = release_managers
    one_click(mail_client, link(deploy_prod, user=ann))
    one_click(mail_client, link(deploy_prod, address="ops@x.example"))

    event = make_event(deploy_prod)
    deliveries = deliver(event)

    # The log counts who was left out, and why.
    event.refresh_from_db()
    progress = event_progress(tenant=event.tenant, event=event)
    assert progress.summary == "1 of 3 sent, 1 suppressed, 1 opted out"
    statuses = {d.address: d.status for d in deliveries}
    assert statuses == {
        "ann@payments.example": DeliveryStatus.OPTED_OUT,
        "bob@payments.example": DeliveryStatus.SENT,
        "ops@x.example": DeliveryStatus.SUPPRESSED,
    }
    assert len(sink.accepted) == 1


def test_a_project_link_silences_every_pipeline_of_the_project(
    mail_client, mail_server, sink, deploy_prod, release_managers
):
    ann, _ = release_managers
    one_click(mail_client, link(deploy_prod, user=ann, scope=UnsubscribeScope.PROJECT))

    staging = make_pipeline(deploy_prod.project, "Deploy staging", "deploy-staging")
    deliveries = deliver(make_event(staging))

    assert {d.address: d.status for d in deliveries} == {
        "ann@payments.example": DeliveryStatus.OPTED_OUT,
        "bob@payments.example": DeliveryStatus.SENT,
        "ops@x.example": DeliveryStatus.SENT,
    }


# A shared address: what one reader may stop for everyone --------------------------------------

SHARED = "This address is shared: stopping it stops it for everyone who reads ops@x.example."


def test_the_confirmation_of_an_address_without_an_account_says_it_is_shared(
    mail_client, deploy_prod
):
    page = text(mail_client.get(link(deploy_prod, address="ops@x.example")))

    assert SHARED in page
    assert "except those of rules its administrators made mandatory" in page
    assert "Nobody can stop a mandatory rule with this link" in page
    assert "ask a tenant administrator of Acme" in page


def test_the_done_page_of_a_shared_address_says_mandatory_rules_still_reach_it(
    mail_client, deploy_prod
):
    page = text(one_click(mail_client, link(deploy_prod, address="ops@x.example")))

    assert "for everyone who reads it. Rules its administrators made mandatory still do." in page
    assert "To stop a mandatory rule" in page
    assert "Mandatory rules still reach it." in Suppression.objects.get().detail


@pytest.fixture
def ops_alias(tenant, deploy_prod):
    """The alias ops@x.example, named by a rule that is not mandatory and by one that is."""
    group = UserGroupFactory(
        tenant=tenant, name="Ops", alias_addresses=["ops@x.example"], notify_all_members=False
    )
    optional = NotificationRuleFactory(
        pipeline=deploy_prod, name="Deploys", groups=[group], addresses=[]
    )
    mandatory = NotificationRuleFactory(
        pipeline=None,
        project=deploy_prod.project,
        name="Production down",
        groups=[group],
        addresses=[],
        mandatory=True,
    )
    return optional, mandatory


def test_one_click_on_a_shared_address_never_silences_a_mandatory_rule(
    mail_client, mail_server, sink, deploy_prod, ops_alias
):
    assert one_click(mail_client, link(deploy_prod, address="ops@x.example")).status_code == 200

    # Both rules name the alias: the mandatory one still reaches it.
    (delivery,) = deliver(make_event(deploy_prod))
    assert (delivery.address, delivery.status) == ("ops@x.example", DeliveryStatus.SENT)
    assert "mandatory rule “Production down”" in delivery.reason
    assert len(sink.accepted) == 1


def test_one_click_on_a_shared_address_stops_the_rules_that_are_not_mandatory(
    mail_client, mail_server, sink, deploy_prod, ops_alias
):
    _, mandatory = ops_alias
    mandatory.delete()
    one_click(mail_client, link(deploy_prod, address="ops@x.example"))

    (delivery,) = deliver(make_event(deploy_prod))
    assert (delivery.address, delivery.status) == ("ops@x.example", DeliveryStatus.SUPPRESSED)
    assert sink.accepted == []


def test_a_mandatory_rule_alone_still_reaches_an_unsubscribed_shared_address(
    mail_client, mail_server, sink, deploy_prod, ops_alias
):
    optional, _ = ops_alias
    optional.delete()
    one_click(mail_client, link(deploy_prod, address="ops@x.example"))

    (delivery,) = deliver(make_event(deploy_prod))
    assert delivery.status == DeliveryStatus.SENT


def test_a_bounced_shared_address_is_never_mailed_even_by_a_mandatory_rule(
    tenant, mail_server, sink, deploy_prod, ops_alias
):
    Suppression.objects.create(tenant=tenant, address="ops@x.example", reason="refused")

    (delivery,) = deliver(make_event(deploy_prod))
    assert delivery.status == DeliveryStatus.SUPPRESSED
