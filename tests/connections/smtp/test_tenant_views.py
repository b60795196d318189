"""The tenant portal's Email settings page: host settings or our own server, test email, going back.

Who may reach these pages (tenant admins; members 403, other tenants 404) is
checked by the isolation matrix in tests/tenancy/test_isolation.py.
"""

import logging

import pytest
from django.db import connection
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections.forms import TEST_BUTTON
from apps.connections.models import SmtpSettings
from apps.connections.selectors import SmtpSource, effective_smtp_settings
from apps.core import crypto
from tests.connections.smtp.factories import (
    SmtpSettingsFactory,
    allow_private_network,
    smtp_form_data,
)
from tests.smtp_servers import closed_port, smtp_server

pytestmark = pytest.mark.django_db

CANARY = "canary-Tenant-Q7-PLEASE-NEVER-SHOW"
# The host's settings: none of this may reach a tenant's page.
HOST_SECRETS = {
    "host": "smtp.host-only.example",
    "username": "host-login-name",
    "from_email": "noreply@host-only.example",
    "from_name": "Host Sender Name",
    "name": "Host relay settings",
    "secret": "host-password-Q7",
}


def url(name: str, tenant: str = "acme") -> str:
    return reverse(f"tenancy:mailsettings:{name}", args=[tenant])


def dashboard(tenant: str = "acme") -> str:
    return reverse("tenancy:dashboard", args=[tenant])


def own_data(server=None, **overrides) -> dict:
    """What the page posts for a tenant's own server (a real one when `server` is given)."""
    values = {"name": "Acme mail", "host": "smtp.acme.example", "from_email": "alerts@acme.example"}
    if server is not None:
        values |= server.connection
    return smtp_form_data(**values | overrides)


def send_test_data(server=None, **overrides) -> dict:
    """The form as posted by the "Send test email" button."""
    return own_data(server, **{"test_to": "ops@acme.example", TEST_BUTTON: "1"} | overrides)


@pytest.fixture
def admin(client, tenant, tenant_admin):
    # The test servers are on 127.0.0.1 (tests/connections/smtp/test_ssrf.py checks the refusal).
    allow_private_network(tenant)
    client.force_login(tenant_admin)
    return client


@pytest.fixture
def host_settings(db):
    return SmtpSettingsFactory(**HOST_SECRETS)


def page_of(response) -> str:
    assert response.status_code == 200, response
    return response.content.decode()


def stored_token(row) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM connections_smtpsettings WHERE id = %s", [row.pk])
        return cursor.fetchone()[0]


# The page -------------------------------------------------------------------------


def test_by_default_the_page_says_the_host_settings_are_used(
    admin, host_settings, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        page = page_of(admin.get(url("edit")))

    assert "Host settings" in page
    assert "Use the host settings" in page
    assert "Use our own SMTP server" in page
    assert "Save and use our own server" in page
    assert "Send test email" in page
    # Presets with their notes, filled in by the static script.
    assert 'id="smtp-presets"' in page
    assert "connections/smtp/presets.js" in page
    assert "Gmail needs an app password" in page
    assert "<script>" not in page  # no inline script: CSP-friendly
    assert "not set up yet" not in page


def test_the_page_says_when_the_host_has_no_settings_yet(admin):
    page = page_of(admin.get(url("edit")))

    assert "The host's SMTP server is not set up yet" in page


def test_a_tenant_admin_switches_to_their_own_server(
    admin, tenant, tenant_admin, host_settings, django_capture_on_commit_callbacks
):
    data = own_data(
        username="acme-mailer", new_password="Acme-pw-1", confirm_unencrypted="on", _save="1"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(url("edit"), data)

    assert response.status_code == 302
    assert response["Location"] == url("edit")
    row = SmtpSettings.objects.get(tenant=tenant)
    assert (row.host, row.username, row.from_email) == (
        "smtp.acme.example",
        "acme-mailer",
        "alerts@acme.example",
    )
    assert row.password.reveal() == "Acme-pw-1"
    token = stored_token(row)
    assert "Acme-pw-1" not in token
    assert crypto.decrypt(token) == "Acme-pw-1"
    entry = AuditEntry.objects.get()
    assert entry.action == "smtp_settings.create"
    assert (entry.tenant, entry.actor) == (tenant, tenant_admin)
    assert entry.changes["password"] == "changed"
    assert effective_smtp_settings(tenant) == (row, SmtpSource.OWN)
    assert SmtpSettings.objects.get(tenant=None) == host_settings  # the host's row is untouched

    page = page_of(admin.get(url("edit")))
    assert "now goes through your own SMTP server" in page
    assert "Your own SMTP server" in page
    assert "smtp.acme.example:25" in page
    assert "Postmaster Alerts &lt;alerts@acme.example&gt;" in page
    assert "Stored, encrypted (never shown)" in page
    assert "Leave blank to keep the current password" in page
    assert "Clear the stored password" in page
    assert "Switch to the host settings" in page
    assert "Acme-pw-1" not in page


def test_saving_again_keeps_the_password_left_blank(admin, tenant):
    row = SmtpSettingsFactory(tenant=tenant, secret="Acme-pw-1", from_email="alerts@acme.example")

    response = admin.post(
        url("edit"), own_data(name=row.name, host=row.host, from_name="Acme Ops", _save="1")
    )

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.from_name, row.password.reveal()) == ("Acme Ops", "Acme-pw-1")
    assert AuditEntry.objects.get().changes == {"from_name": ["Postmaster Alerts", "Acme Ops"]}


def test_an_invalid_form_saves_nothing_and_says_what_to_fix(admin, tenant):
    page = page_of(admin.post(url("edit"), own_data(host="smtp://mail.acme.example", _save="1")))

    assert "Enter only the host name, like smtp.example.com: no smtp://." in page
    assert "is-invalid" in page
    assert not SmtpSettings.objects.exists()
    assert not AuditEntry.objects.exists()


# The test email -------------------------------------------------------------------


def test_a_test_email_with_unsaved_values_arrives(admin, tenant, tenant_admin, trusted_ca):
    admin_user = tenant_admin
    with smtp_server(tls="starttls", users={"acme-mailer": "Acme-pw-1"}) as server:
        data = send_test_data(server, username="acme-mailer", new_password="Acme-pw-1")
        page = page_of(admin.post(url("edit"), data))

    assert "The test email was accepted by 127.0.0.1." in page
    assert "alert-success" in page
    assert "250 2.0.0 Ok: queued as TEST123" in page
    [message] = server.messages
    assert message.rcpt_tos == ["ops@acme.example"]
    assert message.mail_from == "alerts@acme.example"
    assert b"Subject: Postmaster test email" in message.content
    assert server.logins == ["acme-mailer"]
    # Sending a test saves nothing (but is audited); the form keeps the typed values,
    # not the password.
    assert not SmtpSettings.objects.exists()
    [entry] = AuditEntry.objects.all()
    assert (entry.action, entry.tenant, entry.actor) == (
        "smtp_settings.test_sent",
        tenant,
        admin_user,
    )
    assert entry.changes["to"] == "ops@acme.example"
    assert entry.changes["outcome"] == "sent"
    assert "Acme-pw-1" not in str(entry.changes)
    assert f'value="{server.port}"' in page
    assert "Acme-pw-1" not in page


def test_a_test_email_uses_the_stored_password_when_left_blank(admin, tenant, trusted_ca):
    with smtp_server(tls="starttls", users={"acme-mailer": "Acme-pw-1"}) as server:
        SmtpSettingsFactory(
            tenant=tenant, **server.connection, username="acme-mailer", secret="Acme-pw-1"
        )
        # A changed display name, not saved: the test goes out with it.
        page = page_of(
            admin.post(
                url("edit"), send_test_data(server, username="acme-mailer", from_name="Unsaved")
            )
        )

    assert "The test email was accepted" in page
    [message] = server.messages
    assert b"From: Unsaved <alerts@acme.example>" in message.content
    assert SmtpSettings.objects.get(tenant=tenant).from_name == "Postmaster Alerts"


def test_a_failing_test_email_says_in_plain_words_what_to_fix(admin, tenant):
    port = closed_port()

    page = page_of(admin.post(url("edit"), send_test_data(host="127.0.0.1", port=str(port))))

    # One answer for every connection failure of a tenant's settings (see test_ssrf.py).
    assert "alert-danger" in page
    assert f"Postmaster could not connect to a mail server at 127.0.0.1 on port {port}." in page
    assert "Check the SMTP host and port" in page
    assert "refused" not in page
    assert not SmtpSettings.objects.exists()


def test_a_test_email_needs_an_address(admin):
    page = page_of(admin.post(url("edit"), send_test_data(test_to="")))

    assert "Enter the address to send the test email to." in page
    assert "smtp-test-result" not in page


def test_nobody_outside_the_tenants_admins_can_send_a_test_email(
    client, tenant, tenant_member, other_tenant_admin
):
    with smtp_server() as server:
        client.force_login(tenant_member)
        assert client.post(url("edit"), send_test_data(server)).status_code == 403
        client.force_login(other_tenant_admin)
        assert client.post(url("edit"), send_test_data(server)).status_code == 404

    assert server.messages == []
    assert server.greetings == 0


# Back to the host settings --------------------------------------------------------


def test_switching_back_to_the_host_settings_deletes_the_row_after_a_confirmation(
    admin, tenant, tenant_admin, other_tenant
):
    row = SmtpSettingsFactory(tenant=tenant, name="Acme mail", secret="Acme-pw-1")
    theirs = SmtpSettingsFactory(tenant=other_tenant)

    page = page_of(admin.get(url("use_host")))
    assert "Switch to the host settings?" in page
    assert "Your stored server settings" in page
    assert "and their password will be removed" in page
    assert "Remove our settings and use the host's" in page
    assert SmtpSettings.objects.filter(pk=row.pk).exists()

    response = admin.post(url("use_host"))

    assert response.status_code == 302
    assert response["Location"] == url("edit")
    assert list(SmtpSettings.objects.all()) == [theirs]
    entry = AuditEntry.objects.get()
    assert entry.action == "smtp_settings.delete"
    assert (entry.tenant, entry.actor) == (tenant, tenant_admin)
    assert effective_smtp_settings(tenant) == (None, SmtpSource.HOST)
    page = page_of(admin.get(url("edit")))
    assert "now goes through the host settings" in page
    assert "Set up your own SMTP server" in page
    assert "Stored, encrypted" not in page


def test_switching_back_without_own_settings_changes_nothing(admin):
    response = admin.get(url("use_host"), follow=True)

    assert response.redirect_chain == [(url("edit"), 302)]
    assert "Acme already uses the host settings." in page_of(response)
    assert not AuditEntry.objects.exists()


# The dashboard ----------------------------------------------------------------


def test_the_dashboard_shows_the_effective_source_and_links_admins_to_the_page(
    admin, client, tenant, tenant_member, other_tenant
):
    SmtpSettingsFactory(tenant=other_tenant)  # the neighbour's own server changes nothing here
    page = page_of(admin.get(dashboard()))
    assert "Host settings" in page
    assert f'href="{url("edit")}"' in page

    SmtpSettingsFactory(tenant=tenant)
    page = page_of(admin.get(dashboard()))
    assert "Your own SMTP server" in page

    client.force_login(tenant_member)
    page = page_of(client.get(dashboard()))
    assert "Your own SMTP server" in page
    assert url("edit") not in page  # members may not open the page


# Secrets --------------------------------------------------------------------------


def test_the_hosts_settings_never_reach_a_tenants_pages(admin, tenant, host_settings):
    pages = [page_of(admin.get(url("edit"))), page_of(admin.get(dashboard()))]
    pages.append(page_of(admin.post(url("edit"), send_test_data(port=str(closed_port())))))
    admin.post(url("edit"), own_data(_save="1"))
    pages.append(page_of(admin.get(url("edit"))))
    pages.append(page_of(admin.get(url("use_host"))))
    pages.append(page_of(admin.post(url("use_host"), follow=True)))
    pages.append(page_of(admin.get(reverse("tenancy:audit_log", args=["acme"]))))

    assert sum("Host settings" in page for page in pages) >= 3
    for page in pages:
        for value in HOST_SECRETS.values():
            assert value not in page


def test_the_canary_password_never_appears_on_a_tenant_page(
    admin, tenant, caplog, trusted_ca, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    pages = []

    def keep(response):
        pages.append(page_of(response))

    # The server knows another password, so every login with the canary fails.
    with smtp_server(tls="starttls", users={"acme-mailer": "not-the-canary"}) as server:
        settings = {**server.connection, "username": "acme-mailer"}
        admin.post(url("edit"), own_data(**settings, new_password=CANARY, _save="1"))
        row = SmtpSettings.objects.get(tenant=tenant)
        assert row.password.reveal() == CANARY
        keep(admin.get(url("edit")))
        # Authentication fails with the stored canary, then with the canary typed again.
        keep(admin.post(url("edit"), send_test_data(**settings)))
        keep(admin.post(url("edit"), send_test_data(**settings, new_password=CANARY)))
        # Refused by the form: the canary typed into an invalid form.
        invalid = settings | {"port": "0", "new_password": CANARY}
        keep(admin.post(url("edit"), own_data(**invalid, _save="1")))
        keep(admin.post(url("edit"), send_test_data(**invalid | {"host": "bad host"})))
    assert sum("rejected the username or password" in page for page in pages) == 2
    assert sum("is-invalid" in page for page in pages) == 2

    # A save that works, then every page a tenant admin can see.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(url("edit"), own_data(**settings, from_name="Ops", _save="1"))
    assert response.status_code == 302
    keep(admin.get(url("edit")))
    keep(admin.get(dashboard()))
    keep(admin.get(reverse("tenancy:audit_log", args=["acme"])))
    keep(admin.get(url("use_host")))
    keep(admin.post(url("use_host"), follow=True))
    keep(admin.get(reverse("tenancy:audit_log", args=["acme"])))

    assert "smtp_settings.delete" in pages[-1]
    for page in pages:
        assert CANARY not in page
    for entry in AuditEntry.objects.all():
        assert CANARY not in str(entry.changes)
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert "Test email to ops@acme.example" in logged  # the logs were captured
    assert CANARY not in logged
