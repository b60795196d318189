"""The demo's system administrator sets up the host SMTP settings in Host administration."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from apps.accounts.models import User
from apps.connections.models import SmtpSettings
from apps.connections.presets import GMAIL_APP_PASSWORD
from apps.demo.management.commands.seed_demo import DEMO_PASSWORD, SYSTEM_ADMIN_EMAIL
from apps.mailcatcher.models import CaughtMessage
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.e2e.browser import field, login
from tests.smtp_servers import closed_port

SUBJECT = "Checking the host SMTP settings"
BODY = "If this arrives, Postmaster can send mail."


def stored_host_row() -> dict:
    return SmtpSettings.objects.filter(tenant=None).values().get()


def open_host_email_settings(page: Page) -> None:
    """Host administration → Email settings → SMTP settings (the one row's change page)."""
    page.get_by_role("link", name="Host administration", exact=True).click()
    email_settings = page.get_by_role("table", name="Email settings")
    email_settings.get_by_role("link", name="SMTP settings").click()
    expect(page.get_by_role("heading", name="Change SMTP settings")).to_be_visible()


@pytest.mark.usefixtures("host_mailer")
def test_the_demo_admin_tests_saves_and_finds_the_host_settings_mail(page, mail_catcher, settings):
    # The demo's host settings point at this test's catcher.
    settings.MAILCATCHER_PORT = mail_catcher.port
    call_command("seed_demo")
    seeded = stored_host_row()
    login(page, User.objects.get(email=SYSTEM_ADMIN_EMAIL), password=DEMO_PASSWORD)
    open_host_email_settings(page)
    form = page.locator("#smtpsettings_form")

    # A preset fills in its provider's server and shows what people trip over.
    field(form, "Preset").select_option("Gmail")
    expect(field(form, "SMTP host")).to_have_value("smtp.gmail.com")
    expect(field(form, "SMTP port")).to_have_value("587")
    expect(field(form, "Security")).to_have_value("starttls")
    expect(form.get_by_text(GMAIL_APP_PASSWORD)).to_be_visible()

    # "Other": the administrator types the server in.
    field(form, "Preset").select_option("Other")
    expect(form.get_by_text(GMAIL_APP_PASSWORD)).to_be_hidden()
    field(form, "Name").fill("Office relay")
    field(form, "SMTP host").fill("127.0.0.1")
    field(form, "SMTP port").fill(str(mail_catcher.port))
    field(form, "Security").select_option(label="None (no encryption)")
    field(form, "Default From address").fill("alerts@postmaster.test")
    field(form, "Default From display name").fill("Postmaster Alerts")
    field(form, "To").fill("ops@postmaster.test")
    field(form, "Subject").fill(SUBJECT)
    field(form, "Body").fill(BODY)
    form.get_by_role("button", name="Send test email").click()

    result = page.locator(".smtp-test-result")
    expect(result).to_contain_text("The test email was accepted by 127.0.0.1.")
    expect(result).to_contain_text("Server reply: 250 2.0.0 Message caught")
    # Testing saved nothing; the typed values are still in the form.
    assert stored_host_row() == seeded
    expect(field(form, "Default From display name")).to_have_value("Postmaster Alerts")

    form.get_by_role("button", name="Save", exact=True).click()
    expect(
        page.get_by_text("The SMTP settings “Office relay” was changed successfully.")
    ).to_be_visible()
    saved = stored_host_row()
    assert (saved["name"], saved["host"], saved["port"], saved["security"]) == (
        "Office relay",
        "127.0.0.1",
        mail_catcher.port,
        "none",
    )
    assert (saved["from_email"], saved["from_name"]) == (
        "alerts@postmaster.test",
        "Postmaster Alerts",
    )

    # The test email is in the caught mail, from the typed sender.
    page.get_by_role("link", name="View site").click()
    page.get_by_role("link", name="Caught mail", exact=True).click()
    page.get_by_role("link", name=SUBJECT).click()
    expect(page.get_by_role("heading", name=SUBJECT)).to_be_visible()
    from_row = page.locator("#headers").get_by_role("row", name=re.compile(r"^From "))
    expect(from_row).to_contain_text("Postmaster Alerts <alerts@postmaster.test>")
    expect(page.locator("#text-part")).to_contain_text(BODY)
    assert CaughtMessage.objects.get(subject=SUBJECT).envelope_recipients == ["ops@postmaster.test"]


def test_a_closed_port_is_explained_with_the_fix_and_nothing_is_saved(admin_page):
    SmtpSettingsFactory()
    before = stored_host_row()
    port = closed_port()
    page = admin_page
    open_host_email_settings(page)
    form = page.locator("#smtpsettings_form")

    field(form, "SMTP port").fill(str(port))
    field(form, "To").fill("ops@example.com")
    form.get_by_role("button", name="Send test email").click()

    result = page.locator(".smtp-test-result")
    expect(result).to_contain_text(
        f"127.0.0.1 refused the connection on port {port}: no mail server is listening there."
    )
    expect(result).to_contain_text("Check the SMTP host and port.")
    assert stored_host_row() == before
