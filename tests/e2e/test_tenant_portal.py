"""A tenant admin sets up the tenant in the portal: structure, a group, its own SMTP server."""

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from apps.connections.models import SmtpSettings
from apps.groups.models import UserGroup
from apps.tenancy.models import Organization, Project
from tests.connections.smtp.factories import SmtpSettingsFactory, allow_private_network
from tests.e2e.browser import field, login
from tests.smtp_servers import QUEUED_REPLY, smtp_server, write_ca_bundle

# Planted in the form; it must never come back in a page.
CANARY_PASSWORD = "canary-5f3a-never-shown"
SMTP_LOGIN = "acme-mailer"


@pytest.fixture
def own_smtp_server(settings, tmp_path, tenant):
    """The tenant's own server: STARTTLS with a certificate Postmaster trusts, login required."""
    settings.SMTP_CA_BUNDLE = write_ca_bundle(tmp_path)
    allow_private_network(tenant)  # it is on 127.0.0.1
    with smtp_server(tls="starttls", users={SMTP_LOGIN: CANARY_PASSWORD}) as server:
        yield server


def portal_tab(page: Page, name: str) -> None:
    page.locator("main .nav-tabs").get_by_role("link", name=name, exact=True).click()


def fill_own_server(form: Locator, server) -> None:
    field(form, "Name").fill("Acme relay")
    field(form, "SMTP host").fill(server.host)
    field(form, "SMTP port").fill(str(server.port))
    field(form, "Security").select_option(label="STARTTLS (usually port 587)")
    field(form, "SMTP username").fill(SMTP_LOGIN)
    field(form, "SMTP password").fill(CANARY_PASSWORD)
    field(form, "Default From address").fill("alerts@acme.example")
    field(form, "Default From display name").fill("Acme Alerts")


def test_a_tenant_admin_sets_up_the_tenant_and_its_own_smtp_server(
    page, tenant, tenant_admin, tenant_member, own_smtp_server
):
    SmtpSettingsFactory()  # the host's settings
    login(page, tenant_admin)
    page.locator("#your-tenants").get_by_role("link", name="Acme").click()
    main = page.get_by_role("main")
    email_card = page.locator("#email-settings")
    expect(email_card).to_contain_text("Host settings")

    # An organisation, and a project in it.
    portal_tab(page, "Organisations")
    main.get_by_role("link", name="New organisation").click()
    field(main, "Name").fill("Payments")
    main.get_by_role("button", name="Save").click()
    expect(main.get_by_text("The organisation “Payments” was created.")).to_be_visible()
    main.get_by_role("link", name="New project").click()
    field(main, "Name").fill("Checkout")
    main.get_by_role("button", name="Save").click()
    expect(main.get_by_text("The project “Checkout” was created.")).to_be_visible()
    expect(main.get_by_role("cell", name="Checkout", exact=True)).to_be_visible()

    # A group on that project, reaching an alias and all its members.
    portal_tab(page, "User groups")
    main.get_by_role("link", name="New group").click()
    field(main, "Name").fill("Release managers")
    field(main, "Scope").select_option(label="Project Payments / Checkout")
    field(main, "Email/Alias").fill("releases@acme.example")
    main.get_by_label("Send email to all members of this group").check()
    main.get_by_label(tenant_member.email).check()
    main.get_by_role("button", name="Save").click()
    expect(main.get_by_text("The group “Release managers” was created.")).to_be_visible()
    portal_tab(page, "User groups")
    row = main.get_by_role("row", name="Release managers")
    expect(row).to_contain_text("Project Payments / Checkout")
    expect(row).to_contain_text("releases@acme.example")
    expect(row).to_contain_text("All members")
    expect(row.get_by_role("cell").nth(2)).to_have_text("1")
    expect(main.get_by_text("No recipients")).to_have_count(0)

    # Its own SMTP server: a test email that arrives, then save.
    portal_tab(page, "Email settings")
    form = main.locator("form").filter(has=page.get_by_role("button", name="Send test email"))
    fill_own_server(form, own_smtp_server)
    field(form, "To").fill("ops@acme.example")
    field(form, "Subject").fill("Acme relay check")
    form.get_by_role("button", name="Send test email").click()

    result = main.locator(".smtp-test-result")
    expect(result).to_contain_text(f"The test email was accepted by {own_smtp_server.host}.")
    expect(result).to_contain_text(f"Server reply: {QUEUED_REPLY}")
    [received] = own_smtp_server.messages
    assert received.rcpt_tos == ["ops@acme.example"]
    assert b"Subject: Acme relay check" in received.content
    assert b"From: Acme Alerts <alerts@acme.example>" in received.content
    assert own_smtp_server.logins == [SMTP_LOGIN]
    assert not SmtpSettings.objects.filter(tenant=tenant).exists()  # testing saves nothing
    assert CANARY_PASSWORD not in page.content()

    # The password is never rendered back, so it is typed again to save.
    field(form, "SMTP password").fill(CANARY_PASSWORD)
    form.get_by_role("button", name="Save and use our own server").click()
    expect(main.get_by_text("Mail for Acme now goes through your own SMTP server.")).to_be_visible()
    expect(page.locator("#effective-settings")).to_contain_text("Your own SMTP server")
    expect(page.locator("#effective-settings")).to_contain_text("Stored, encrypted (never shown)")
    assert CANARY_PASSWORD not in page.content()
    saved = SmtpSettings.objects.get(tenant=tenant)
    assert (saved.host, saved.port, saved.username) == (
        own_smtp_server.host,
        own_smtp_server.port,
        SMTP_LOGIN,
    )
    assert saved.password.reveal() == CANARY_PASSWORD

    portal_tab(page, "Dashboard")
    expect(email_card).to_contain_text("Your own SMTP server")
    expect(main.get_by_role("link", name="Release managers")).to_be_visible()
    expect(main.get_by_text("No recipients")).to_have_count(0)

    # Back to the host's settings, through the confirmation.
    email_card.get_by_role("link", name="Change").click()
    main.get_by_role("link", name="Switch to the host settings").click()
    expect(main.get_by_role("heading", name="Switch to the host settings?")).to_be_visible()
    main.get_by_role("button", name="Remove our settings and use the host's").click()
    expect(main.get_by_text("Mail for Acme now goes through the host settings.")).to_be_visible()
    portal_tab(page, "Dashboard")
    expect(email_card).to_contain_text("Host settings")

    assert not SmtpSettings.objects.filter(tenant=tenant).exists()
    organization = Organization.objects.get(tenant=tenant, name="Payments")
    project = Project.objects.get(tenant=tenant, organization=organization, name="Checkout")
    group = UserGroup.objects.get(tenant=tenant, name="Release managers")
    assert group.project == project
    assert group.alias_addresses == ["releases@acme.example"]
    assert group.notify_all_members
    assert list(group.members.all()) == [tenant_member]


def test_saving_right_after_a_test_email_never_stores_the_login_without_its_password(
    page, tenant, tenant_admin, own_smtp_server
):
    """After a test the password field is empty again: Save must not store the login without it."""
    login(page, tenant_admin)
    page.goto(f"/t/{tenant.slug}/email/")
    main = page.get_by_role("main")
    form = main.locator("form").filter(has=page.get_by_role("button", name="Send test email"))
    fill_own_server(form, own_smtp_server)
    field(form, "To").fill("ops@acme.example")
    form.get_by_role("button", name="Send test email").click()
    expect(main.locator(".smtp-test-result")).to_contain_text("The test email was accepted")

    form.get_by_role("button", name="Save and use our own server").click()
    expect(main.locator(".smtp-test-result")).to_have_count(0)  # the next page is in

    # Either the tested password is saved, or the page asks for it and saves nothing:
    # never a server with a login and no password, which fails every later email.
    saved = SmtpSettings.objects.filter(tenant=tenant).first()
    if saved is None:
        expect(form.locator("#id_new_password")).to_have_class(re.compile(r"\bis-invalid\b"))
    else:
        assert saved.password is not None
        assert saved.password.reveal() == CANARY_PASSWORD
