"""A planted password must never show: not in a page, a form, a log line or an audit entry."""

import logging

import pytest
from django.db import connection
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections.forms import TEST_BUTTON
from apps.connections.models import SmtpSettings
from apps.core import crypto
from tests.connections.smtp.factories import smtp_form_data
from tests.smtp_servers import UNTRUSTED_CA, closed_port, smtp_server

pytestmark = pytest.mark.django_db

CANARY = "canary-Zx9-PLEASE-NEVER-SHOW"


def settings_data(server, **overrides) -> dict:
    return smtp_form_data(
        **{**server.connection, "username": "ann", "test_to": "ops@example.com"} | overrides
    )


def test_the_canary_password_appears_nowhere(admin_client, caplog, trusted_ca):
    caplog.set_level(logging.DEBUG)
    pages = []

    def keep(response):
        assert response.status_code in (200, 302), response
        pages.append(response.content.decode())
        return response

    # The server knows another password, so every login with the canary fails.
    with (
        smtp_server(tls="starttls", users={"ann": "not-the-canary"}) as auth_server,
        smtp_server(users={"ann": "x"}, auth_over_plain=True) as plain_server,
        smtp_server(tls="starttls", certificate=UNTRUSTED_CA) as untrusted_server,
    ):
        add = reverse("admin:connections_smtpsettings_add")
        keep(admin_client.post(add, settings_data(auth_server, new_password=CANARY, _save="1")))
        row = SmtpSettings.objects.get()
        change = reverse("admin:connections_smtpsettings_change", args=[row.pk])

        failing_tests = [
            # Authentication failed, with the stored canary.
            settings_data(auth_server),
            # Connection refused, the canary typed again.
            settings_data(auth_server, port=str(closed_port()), new_password=CANARY),
            # STARTTLS not offered.
            settings_data(plain_server, security="starttls", new_password=CANARY),
            # Certificate not trusted.
            settings_data(untrusted_server, new_password=CANARY),
            # Refused by the form: the server changed, no password typed.
            settings_data(plain_server),
            # Refused by the form, the canary typed into an invalid form.
            settings_data(auth_server, host="bad host", new_password=CANARY),
        ]
        for data in failing_tests:
            keep(admin_client.post(change, data | {TEST_BUTTON: "Send test email"}))
        # A save with a form error, and one that saves.
        keep(admin_client.post(change, settings_data(auth_server, port="0", _save="1")))
        keep(admin_client.post(change, settings_data(auth_server, from_name="Ops", _save="1")))

    assert sum("smtp-test-result" in page for page in pages) == 4
    assert any("rejected the username or password" in page for page in pages)
    for url in [
        change,
        reverse("admin:connections_smtpsettings_changelist"),
        reverse("admin:connections_smtpsettings_history", args=[row.pk]),
        reverse("admin:audit_auditentry_changelist"),
        reverse("admin:index"),
    ]:
        keep(admin_client.get(url, follow=True))
    for entry in AuditEntry.objects.all():
        keep(admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk])))
        assert CANARY not in str(entry.changes)

    # The saves, and each test email sent.
    assert AuditEntry.objects.exclude(action="smtp_settings.test_sent").count() == 2
    assert AuditEntry.objects.filter(action="smtp_settings.test_sent").count() == 4
    for page in pages:
        assert CANARY not in page
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert "Test email to ops@example.com" in logged  # the logs were captured
    assert CANARY not in logged
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM connections_smtpsettings")
        [(token,)] = cursor.fetchall()
    assert CANARY not in token
    assert crypto.decrypt(token) == CANARY
