import pytest
from django.db import IntegrityError, connection, transaction

from apps.audit.models import AuditEntry
from apps.connections.models import SmtpSettings
from apps.connections.selectors import host_smtp_settings
from apps.connections.services import smtp_settings_update
from apps.core import crypto
from apps.core.fields import Secret
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = pytest.mark.django_db


def stored_token(row) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM connections_smtpsettings WHERE id = %s", [row.pk])
        return cursor.fetchone()[0]


def test_create_saves_and_audits_with_the_password_only_as_changed(system_admin, rf):
    row = SmtpSettingsFactory.build(host="smtp.example.com", password=Secret("Pw-123"))
    request = rf.post("/", REMOTE_ADDR="192.0.2.7")

    smtp_settings_update(actor=system_admin, smtp_settings=row, request=request)

    entry = AuditEntry.objects.get()
    assert entry.action == "smtp_settings.create"
    assert entry.actor == system_admin
    assert entry.ip_address == "192.0.2.7"
    assert entry.target_id == str(row.pk)
    assert entry.tenant is None
    assert entry.changes["host"] == [None, "smtp.example.com"]
    assert entry.changes["password"] == "changed"
    assert "Pw-123" not in str(entry.changes)


def test_password_is_encrypted_at_rest(system_admin):
    row = SmtpSettingsFactory.build(password=Secret("Pw-123"))
    smtp_settings_update(actor=system_admin, smtp_settings=row)

    token = stored_token(row)

    assert "Pw-123" not in token
    assert crypto.decrypt(token) == "Pw-123"
    assert SmtpSettings.objects.get().password.reveal() == "Pw-123"


def test_update_records_only_what_changed(system_admin):
    row = SmtpSettingsFactory(secret="old")
    row.host, row.port = "smtp.new.example", 2525

    smtp_settings_update(actor=system_admin, smtp_settings=row)

    entry = AuditEntry.objects.get()
    assert entry.action == "smtp_settings.update"
    assert entry.changes == {"host": ["127.0.0.1", "smtp.new.example"], "port": [25, 2525]}


@pytest.mark.parametrize("new_password", [Secret("new"), None], ids=["replaced", "cleared"])
def test_password_change_or_clearing_shows_as_changed(system_admin, new_password):
    row = SmtpSettingsFactory(secret="old")
    row.password = new_password

    smtp_settings_update(actor=system_admin, smtp_settings=row)

    assert AuditEntry.objects.get().changes == {"password": "changed"}


def test_invalid_values_are_refused_and_nothing_is_saved(system_admin):
    row = SmtpSettingsFactory.build(port=0)

    with pytest.raises(Exception, match="port"):
        smtp_settings_update(actor=system_admin, smtp_settings=row)

    assert not SmtpSettings.objects.exists()
    assert not AuditEntry.objects.exists()


def test_saving_the_host_row_forgets_the_cached_copy_on_commit(
    system_admin, django_capture_on_commit_callbacks
):
    row = SmtpSettingsFactory(host="smtp.old.example")
    assert host_smtp_settings().host == "smtp.old.example"
    row.host = "smtp.new.example"

    with django_capture_on_commit_callbacks(execute=True):
        smtp_settings_update(actor=system_admin, smtp_settings=row)

    assert host_smtp_settings().host == "smtp.new.example"


def test_a_tenant_row_is_audited_in_the_tenant(system_admin, tenant):
    row = SmtpSettingsFactory.build(tenant=tenant)

    smtp_settings_update(actor=system_admin, smtp_settings=row)

    assert AuditEntry.objects.for_tenant(tenant).count() == 1
    assert AuditEntry.objects.filter(tenant__isnull=True).count() == 0


class TestOneRowPerScope:
    def test_a_second_host_row_is_refused_by_the_database(self):
        SmtpSettingsFactory()

        with pytest.raises(IntegrityError), transaction.atomic():
            SmtpSettingsFactory()

    def test_a_second_row_for_a_tenant_is_refused(self, tenant):
        SmtpSettingsFactory(tenant=tenant)

        with pytest.raises(IntegrityError), transaction.atomic():
            SmtpSettingsFactory(tenant=tenant)

    def test_the_host_and_each_tenant_have_their_own(self, tenant, other_tenant):
        SmtpSettingsFactory()
        SmtpSettingsFactory(tenant=tenant)
        SmtpSettingsFactory(tenant=other_tenant)

        assert SmtpSettings.objects.count() == 3

    def test_port_range_is_enforced_by_the_database(self):
        row = SmtpSettingsFactory()

        with pytest.raises(IntegrityError), transaction.atomic():
            SmtpSettings.objects.filter(pk=row.pk).update(port=70000)
