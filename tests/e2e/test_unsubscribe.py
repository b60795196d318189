"""Someone opens a notification from the catcher, follows its unsubscribe link and confirms.

The event goes through the real engine (tasks inline) to the in-process mail
catcher; the next event reaches the rest of the group, not them.
"""

import pytest
from playwright.sync_api import expect

from apps.connections.selectors import host_smtp_settings_forget
from apps.delivery.intake import event_accept
from apps.mailcatcher.models import CaughtMessage
from apps.pipelines.models import EventType, Level
from apps.preferences.models import NotificationPreference
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.conftest import eager  # noqa: F401 (a fixture)
from tests.delivery.engine import add_members, make_pipeline
from tests.factories import (
    MembershipFactory,
    NotificationRuleFactory,
    ProjectFactory,
    UserGroupFactory,
)

SHOTS = "/tmp"
SUBJECT = "[Payments / deploy-prod] Pipeline failed"


@pytest.fixture
def deploy_prod(tenant, mail_catcher, live_server, settings):
    """A pipeline whose failures go to a group of two, through the host settings to the catcher."""
    settings.SITE_URL = live_server.url
    SmtpSettingsFactory(
        port=mail_catcher.port, from_email="alerts@acme.example", from_name="Acme Alerts"
    )
    host_smtp_settings_forget()
    payments = ProjectFactory(organization__tenant=tenant, name="Payments", slug="payments")
    pipeline = make_pipeline(payments, "Deploy prod", "deploy-prod")
    group = UserGroupFactory(
        tenant=tenant, name="Release managers", alias_addresses=[], notify_all_members=True
    )
    for user in add_members(group, "ann@acme.example", "bob@acme.example"):
        MembershipFactory(tenant=tenant, user=user)
    NotificationRuleFactory(pipeline=pipeline, groups=[group], addresses=[])
    return pipeline


def fail(pipeline, run_id: str) -> None:
    event_accept(
        pipeline=pipeline,
        event_type=EventType.PIPELINE_FAILED,
        level=Level.ERROR,
        run_id=run_id,
        run_url=f"https://ci.example.com/runs/{run_id}",
        message="Migration 0042 failed.",
    )


def caught_to() -> list[str]:
    return sorted(CaughtMessage.objects.values_list("to_header", flat=True))


@pytest.mark.usefixtures("eager")
def test_ann_unsubscribes_from_a_notification_and_only_bob_gets_the_next(
    admin_page, browser, live_server, deploy_prod
):
    fail(deploy_prod, "4711")
    assert caught_to() == ["ann@acme.example", "bob@acme.example"]

    # Ann's notification, as the catcher shows it.
    page = admin_page
    page.goto("/mail/")
    page.get_by_role("row", name="ann@acme.example").get_by_role("link", name=SUBJECT).click()
    expect(page.get_by_role("heading", name=SUBJECT)).to_be_visible()
    html = page.frame_locator("iframe.mail-html")
    expect(html.get_by_text("You receive this because you are in the group")).to_be_visible()
    link = html.get_by_role("link", name="Unsubscribe from this pipeline")
    href = link.get_attribute("href")
    assert href.startswith(f"{live_server.url}/unsubscribe/")
    page.screenshot(path=f"{SHOTS}/unsubscribe-notification.png", full_page=True)

    # Ann follows it in her own browser, not signed in.
    context = browser.new_context(reduced_motion="reduce")
    # Generous: a busy 2-core machine (CI next to another run) can be slow to paint a page.
    context.set_default_timeout(30_000)
    ann = context.new_page()
    ann.goto(href)
    expect(
        ann.get_by_role(
            "heading", name="Unsubscribe from pipeline “Deploy prod” of project “Payments”?"
        )
    ).to_be_visible()
    expect(ann.get_by_text("still reach you")).to_be_visible()
    ann.screenshot(path=f"{SHOTS}/unsubscribe-confirm.png", full_page=True)
    assert not NotificationPreference.objects.exists()  # Opening the link changed nothing.
    ann.get_by_role("button", name="Confirm").click()
    expect(ann.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    expect(ann.get_by_role("link", name="My notifications")).to_be_visible()
    ann.screenshot(path=f"{SHOTS}/unsubscribe-done.png", full_page=True)
    context.close()

    CaughtMessage.objects.all().delete()
    fail(deploy_prod, "4712")
    assert caught_to() == ["bob@acme.example"]
