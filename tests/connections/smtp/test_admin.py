"""The host SMTP settings page in the Django admin, for system administrators only."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections.forms import SERVER_MOVED, TEST_BUTTON
from apps.connections.models import SmtpSettings
from apps.connections.presets import GMAIL_APP_PASSWORD, MICROSOFT365_BASIC_AUTH
from tests.connections.smtp.factories import SmtpSettingsFactory, smtp_form_data
from tests.factories import UserFactory
from tests.smtp_servers import QUEUED_REPLY, smtp_server

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:connections_smtpsettings_changelist")
ADD = reverse("admin:connections_smtpsettings_add")


def change_url(row):
    return reverse("admin:connections_smtpsettings_change", args=[row.pk])


post_data = smtp_form_data


def send_test_data(**overrides) -> dict:
    """The form as posted by the "Send test email" button."""
    return post_data(**{"test_to": "ops@example.com", TEST_BUTTON: "Send test email"} | overrides)


@pytest.fixture
def staff_user(db):
    """Staff, but not a superuser: not a system administrator."""
    return UserFactory(email="staff@example.com", is_staff=True)


class TestAccess:
    @pytest.mark.parametrize("url", [CHANGELIST, ADD])
    def test_anonymous_is_sent_to_sign_in(self, client, url):
        response = client.get(url)

        assert response.status_code == 302
        assert "/login/" in response["Location"]

    def test_anonymous_visitors_get_no_permission_and_no_error(self, rf):
        # The admin's sign-in page asks every ModelAdmin, for an AnonymousUser.
        request = rf.get("/")
        request.user = AnonymousUser()
        model_admin = admin.site.get_model_admin(SmtpSettings)

        assert model_admin.has_module_permission(request) is False
        assert model_admin.has_add_permission(request) is False

    def test_a_member_is_sent_to_sign_in(self, client, member):
        client.force_login(member)

        response = client.get(CHANGELIST)

        assert response.status_code == 302
        assert "/login/" in response["Location"]

    def test_staff_who_are_not_system_admins_are_refused(self, client, staff_user):
        row = SmtpSettingsFactory()
        client.force_login(staff_user)

        # The admin site lets in system administrators only: others are sent to sign in.
        responses = [client.get(url) for url in (CHANGELIST, ADD, change_url(row))]
        responses += [
            client.post(change_url(row), post_data(host="evil.example")),
            client.post(change_url(row), send_test_data()),
        ]
        for response in responses:
            assert response.status_code == 302
            assert response["Location"].startswith("/admin/login/")
        row.refresh_from_db()
        assert row.host == "127.0.0.1"

    def test_staff_do_not_see_it_on_the_admin_index(self, client, staff_user):
        client.force_login(staff_user)

        assert "SMTP settings" not in client.get(reverse("admin:index")).text

    def test_system_admins_see_it_on_the_admin_index(self, admin_client):
        response = admin_client.get(reverse("admin:index"))

        assert "Email settings" in response.text
        assert "SMTP settings" in response.text


class TestOneRow:
    def test_the_list_opens_the_add_page_when_there_is_no_row(self, admin_client):
        response = admin_client.get(CHANGELIST)

        assert response.status_code == 302
        assert response["Location"] == ADD

    def test_the_list_opens_the_row(self, admin_client):
        row = SmtpSettingsFactory()

        response = admin_client.get(CHANGELIST)

        assert response["Location"] == change_url(row)

    def test_no_second_row_can_be_added(self, admin_client):
        SmtpSettingsFactory()

        assert admin_client.get(ADD).status_code == 403
        assert admin_client.post(ADD, post_data(_save="Save")).status_code == 403
        assert SmtpSettings.objects.count() == 1

    def test_it_cannot_be_deleted(self, admin_client):
        row = SmtpSettingsFactory()
        delete = reverse("admin:connections_smtpsettings_delete", args=[row.pk])

        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        assert SmtpSettings.objects.filter(pk=row.pk).exists()
        assert delete not in admin_client.get(change_url(row)).text

    def test_tenant_rows_are_not_edited_here(self, admin_client, tenant):
        row = SmtpSettingsFactory(tenant=tenant)

        response = admin_client.get(change_url(row))

        assert response.status_code == 302  # "does not exist", back to the admin
        assert admin_client.get(CHANGELIST)["Location"] == ADD


class TestSave:
    def test_add_saves_encrypts_and_audits(self, admin_client, system_admin):
        response = admin_client.post(
            ADD,
            post_data(
                username="ann", new_password="Pw-Add-1", confirm_unencrypted="on", _save="Save"
            ),
        )

        assert response.status_code == 302
        row = SmtpSettings.objects.get()
        assert row.tenant is None
        assert row.password.reveal() == "Pw-Add-1"
        entry = AuditEntry.objects.get(action="smtp_settings.create")
        assert entry.actor == system_admin
        assert entry.changes["password"] == "changed"
        assert entry.changes["host"] == [None, "127.0.0.1"]

    def test_change_with_a_blank_password_keeps_it_and_audits_the_rest(self, admin_client):
        row = SmtpSettingsFactory(username="ann", secret="Pw-Keep")

        response = admin_client.post(
            change_url(row), post_data(username="ann", from_name="New Name", _save="Save")
        )

        assert response.status_code == 302
        row.refresh_from_db()
        assert row.password.reveal() == "Pw-Keep"
        assert row.from_name == "New Name"
        assert AuditEntry.objects.get().changes == {"from_name": ["Postmaster Alerts", "New Name"]}

    def test_clearing_the_password_is_audited_as_changed(self, admin_client):
        row = SmtpSettingsFactory(username="ann", secret="Pw-Keep")

        # A server that needs no login any more: no username, no password.
        admin_client.post(
            change_url(row), post_data(username="", clear_password="on", _save="Save")
        )

        row.refresh_from_db()
        assert row.password is None
        assert AuditEntry.objects.get().changes == {"password": "changed", "username": ["ann", ""]}

    def test_a_changed_server_without_the_password_is_not_saved(self, admin_client):
        row = SmtpSettingsFactory(username="ann", secret="Pw-Keep")

        response = admin_client.post(
            change_url(row), post_data(username="ann", host="smtp.other.example", _save="Save")
        )

        assert response.status_code == 200
        assert SERVER_MOVED in response.text
        row.refresh_from_db()
        assert row.host == "127.0.0.1"
        assert not AuditEntry.objects.exists()

    def test_a_port_and_mode_mismatch_saves_with_a_warning(self, admin_client):
        response = admin_client.post(
            ADD, post_data(port="465", security="starttls", _save="Save"), follow=True
        )

        assert SmtpSettings.objects.get().port == 465
        assert "Port 465 normally uses implicit TLS/SSL, not STARTTLS." in response.text

    def test_the_history_names_fields_but_not_the_test_email(self, admin_client):
        row = SmtpSettingsFactory()
        admin_client.post(
            change_url(row),
            post_data(from_name="Other", test_to="ops@example.com", _save="Save"),
        )

        history = admin_client.get(
            reverse("admin:connections_smtpsettings_history", args=[row.pk])
        ).text

        assert "Changed Default From display name." in history
        assert "Changed To" not in history


class TestPage:
    def test_shows_the_presets_and_their_notes(self, admin_client):
        response = admin_client.get(ADD)

        assert 'id="smtp-presets"' in response.text
        assert "smtp.gmail.com" in response.text
        assert "connections/smtp/presets.js" in response.text
        assert GMAIL_APP_PASSWORD.split(":")[0] in response.text
        assert "at the end of December 2026" in MICROSOFT365_BASIC_AUTH
        assert "at the end of December 2026" in response.text

    def test_shows_the_test_email_fields_and_button(self, admin_client):
        text = admin_client.get(ADD).text

        assert f'name="{TEST_BUTTON}"' in text
        assert 'value="Send test email"' in text
        assert 'name="test_to"' in text
        assert "Clear the stored password" not in text  # nothing stored yet
        stored = SmtpSettingsFactory(username="ann", secret="Pw-Keep")
        assert "Clear the stored password" in admin_client.get(change_url(stored)).text
        # Save comes first, so Enter in any field saves.
        assert text.index('name="_save"') < text.index(f'name="{TEST_BUTTON}"')

    def test_the_change_page_takes_a_bounded_number_of_queries(
        self, admin_client, django_assert_max_num_queries
    ):
        row = SmtpSettingsFactory()
        with django_assert_max_num_queries(8):
            assert admin_client.get(change_url(row)).status_code == 200


class TestSendTestEmail:
    def test_sends_unsaved_values_and_saves_nothing(self, admin_client):
        with smtp_server() as server:
            response = admin_client.post(ADD, send_test_data(port=str(server.port)))

        assert response.status_code == 200
        assert "The test email was accepted by 127.0.0.1." in response.text
        assert QUEUED_REPLY in response.text
        assert 'class="success"' in response.text
        assert len(server.messages) == 1
        assert not SmtpSettings.objects.exists()
        # Only the test email itself is audited.
        [entry] = AuditEntry.objects.all()
        assert (entry.action, entry.tenant, entry.target_id) == (
            "smtp_settings.test_sent",
            None,
            "",
        )
        assert entry.changes == {
            "to": "ops@example.com",
            "server": f"127.0.0.1:{server.port}",
            "outcome": "sent",
        }
        # The typed values are kept in the form.
        assert f'value="{server.port}"' in response.text
        assert 'value="ops@example.com"' in response.text

    def test_a_failure_is_shown_in_red_with_its_fix(self, admin_client):
        with smtp_server(reject="rcpt") as server:
            response = admin_client.post(ADD, send_test_data(port=str(server.port)))

        assert 'class="error"' in response.text
        assert "The server refused the recipient ops@example.com." in response.text
        assert "Check the To address." in response.text

    def test_uses_the_stored_password_when_nothing_changed(self, admin_client, trusted_ca):
        with smtp_server(tls="starttls", users={"ann": "Pw-Stored"}) as server:
            row = SmtpSettingsFactory(**server.connection, username="ann", secret="Pw-Stored")
            response = admin_client.post(
                change_url(row),
                send_test_data(port=str(server.port), security="starttls", username="ann"),
            )

        assert "The test email was accepted" in response.text
        assert server.logins == ["ann"]
        assert "Pw-Stored" not in response.text

    def test_uses_a_typed_password_without_saving_it(self, admin_client, trusted_ca):
        with smtp_server(tls="starttls", users={"ann": "Pw-Typed"}) as server:
            row = SmtpSettingsFactory(**server.connection, username="ann", secret="Pw-Old")
            response = admin_client.post(
                change_url(row),
                send_test_data(
                    port=str(server.port),
                    security="starttls",
                    username="ann",
                    new_password="Pw-Typed",
                ),
            )

        assert "The test email was accepted" in response.text
        assert "Pw-Typed" not in response.text
        row.refresh_from_db()
        assert row.password.reveal() == "Pw-Old"

    def test_never_sends_the_stored_password_to_a_changed_server(self, admin_client):
        with (
            smtp_server(users={"ann": "Pw-Stored"}, auth_over_plain=True) as old,
            smtp_server(users={"ann": "Pw-Stored"}, auth_over_plain=True) as new,
        ):
            row = SmtpSettingsFactory(**old.connection, username="ann", secret="Pw-Stored")
            response = admin_client.post(
                change_url(row), send_test_data(port=str(new.port), username="ann")
            )

        assert SERVER_MOVED in response.text
        assert new.greetings == 0
        assert new.auth_mechanisms == []
        assert "smtp-test-result" not in response.text

    def test_missing_test_fields_are_errors_on_the_page(self, admin_client):
        response = admin_client.post(ADD, send_test_data(test_to=""))

        assert response.status_code == 200
        assert "Enter the address to send the test email to." in response.text

    def test_implicit_tls_against_a_plain_server_is_explained(self, admin_client):
        with smtp_server() as server:
            response = admin_client.post(ADD, send_test_data(port=str(server.port), security="tls"))

        assert "The encrypted (TLS) connection to 127.0.0.1 could not be set up" in response.text
