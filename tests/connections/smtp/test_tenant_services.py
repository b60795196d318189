"""`smtp_settings_delete`: a tenant goes back to the host's settings, and it is audited."""

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEntry
from apps.connections.models import SmtpSettings
from apps.connections.selectors import SmtpSource, effective_smtp_settings
from apps.connections.services import smtp_settings_delete, smtp_settings_update
from apps.core.fields import Secret
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = pytest.mark.django_db


def test_a_tenants_own_settings_are_created_and_audited_with_the_tenant(tenant, tenant_admin):
    row = SmtpSettingsFactory.build(tenant=tenant, password=Secret("Acme-pw"))

    smtp_settings_update(actor=tenant_admin, smtp_settings=row)

    entry = AuditEntry.objects.get()
    assert entry.action == "smtp_settings.create"
    assert (entry.tenant, entry.actor) == (tenant, tenant_admin)
    assert entry.changes["password"] == "changed"
    assert effective_smtp_settings(tenant) == (row, SmtpSource.OWN)


def test_delete_removes_the_row_and_audits_it_with_the_tenant(
    tenant, other_tenant, tenant_admin, rf
):
    row = SmtpSettingsFactory(tenant=tenant, host="smtp.acme.example", secret="Acme-pw")
    theirs = SmtpSettingsFactory(tenant=other_tenant)

    smtp_settings_delete(
        actor=tenant_admin, smtp_settings=row, request=rf.post("/", REMOTE_ADDR="192.0.2.9")
    )

    assert list(SmtpSettings.objects.all()) == [theirs]
    assert effective_smtp_settings(tenant) == (None, SmtpSource.HOST)
    entry = AuditEntry.objects.get()
    assert entry.action == "smtp_settings.delete"
    assert (entry.tenant, entry.actor) == (tenant, tenant_admin)
    assert entry.ip_address == "192.0.2.9"
    assert entry.target_repr == row.name
    assert entry.changes["host"] == ["smtp.acme.example", None]
    assert entry.changes["password"] == "changed"
    assert "Acme-pw" not in str(entry.changes)


def test_deleting_twice_is_one_deletion_and_one_audit_entry(tenant, tenant_admin):
    row = SmtpSettingsFactory(tenant=tenant)
    stale = SmtpSettings.objects.get(pk=row.pk)  # e.g. the page a second click was sent from

    smtp_settings_delete(actor=tenant_admin, smtp_settings=row)
    smtp_settings_delete(actor=tenant_admin, smtp_settings=stale)

    assert not SmtpSettings.objects.exists()
    assert AuditEntry.objects.count() == 1


def test_the_hosts_settings_cannot_be_deleted(system_admin):
    host = SmtpSettingsFactory()

    with pytest.raises(ValidationError, match="host's SMTP settings cannot be deleted"):
        smtp_settings_delete(actor=system_admin, smtp_settings=host)

    assert SmtpSettings.objects.get() == host
    assert not AuditEntry.objects.exists()
