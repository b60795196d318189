import math
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.audit.services import audit_record, field_changes
from apps.mailsettings import netguard
from apps.mailsettings.models import SmtpSettings
from apps.mailsettings.selectors import host_smtp_settings_forget
from apps.providers.models import ConnectionRole
from apps.tenancy.models import Tenant

AUDITED_FIELDS = (
    "role",
    "name",
    "preset",
    "host",
    "port",
    "security",
    "username",
    "password",
    "smtp_domain",
    "from_email",
    "from_name",
    "timeout",
    "ehlo_name",
)
SECRET_FIELDS = frozenset({"password"})


def _snapshot(smtp_settings: SmtpSettings) -> dict:
    return {name: getattr(smtp_settings, name) for name in AUDITED_FIELDS}


@transaction.atomic
def smtp_settings_update(*, actor, smtp_settings: SmtpSettings, request=None) -> SmtpSettings:
    """Save SMTP settings (new or changed, the host's or a tenant's) and audit the change.

    `smtp_settings` carries the new values (e.g. a valid `SmtpSettingsForm`'s
    instance); what it replaces is read from the database here, so the audit
    entry says what really changed. The password appears there only as "changed".
    """
    creating = smtp_settings.pk is None
    before = {}
    if not creating:
        before = _snapshot(SmtpSettings.objects.select_for_update().get(pk=smtp_settings.pk))
    smtp_settings.full_clean()
    smtp_settings.save()
    if smtp_settings.role == ConnectionRole.SECONDARY:
        secondary_replace(
            tenant_id=smtp_settings.tenant_id, keep=smtp_settings, actor=actor, request=request
        )
    audit_record(
        actor=actor,
        action="smtp_settings.create" if creating else "smtp_settings.update",
        target=smtp_settings,
        changes=field_changes(before, _snapshot(smtp_settings), secret_fields=SECRET_FIELDS),
        tenant=smtp_settings.tenant,
        request=request,
    )
    if smtp_settings.tenant_id is None:
        transaction.on_commit(host_smtp_settings_forget)
    return smtp_settings


def secondary_replace(*, tenant_id: int | None, keep, actor, request=None) -> None:
    """Remove the scope's other failover connection: there is one at a time.

    `keep` is the secondary row being saved (SMTP settings or a provider
    connection); the scope's secondary row of the other kind is deleted,
    credential included, and audited. Call inside the saving transaction.
    """
    from apps.providers.models import ProviderSettings  # providers import this module
    from apps.providers.services import provider_settings_delete

    if isinstance(keep, SmtpSettings):
        for row in ProviderSettings.objects.filter(
            tenant_id=tenant_id, role=ConnectionRole.SECONDARY
        ):
            provider_settings_delete(actor=actor, provider_settings=row, request=request)
    else:
        for row in SmtpSettings.objects.filter(tenant_id=tenant_id, role=ConnectionRole.SECONDARY):
            smtp_settings_delete(actor=actor, smtp_settings=row, request=request)


@transaction.atomic
def smtp_settings_delete(*, actor, smtp_settings: SmtpSettings, request=None) -> None:
    """Delete a tenant's own settings, password included: its mail goes through the host's again.

    Only tenant rows and failover (secondary) rows: Django's own mail needs
    the host's primary. The audit entry keeps the removed values, the
    password only as "changed".
    """
    if smtp_settings.tenant_id is None and smtp_settings.role == ConnectionRole.PRIMARY:
        raise ValidationError("The host's SMTP settings cannot be deleted: all mail needs them.")
    current = SmtpSettings.objects.select_for_update().filter(pk=smtp_settings.pk).first()
    if current is None:
        return  # Already deleted, e.g. by a second click: nothing to do or to audit.
    audit_record(
        actor=actor,
        action="smtp_settings.delete",
        target=current,
        changes=field_changes(_snapshot(current), {}, secret_fields=SECRET_FIELDS),
        tenant=current.tenant,
        request=request,
    )
    current.delete()


NETWORK_FIELDS = ("smtp_private_network_allowed", "smtp_extra_ports")


@transaction.atomic
def tenant_smtp_network_update(
    *, tenant: Tenant, private_allowed: bool, extra_ports: str, actor, request=None
):
    """Set a tenant's exceptions to the SMTP network policy (system administrators only).

    `extra_ports` as typed ("1025, 2526"); stored normalised. Audited.
    """
    stored = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = {name: getattr(stored, name) for name in NETWORK_FIELDS}
    try:
        ports = netguard.parse_ports(extra_ports)
    except ValueError as error:
        raise ValidationError({"smtp_extra_ports": str(error)}) from None
    stored.smtp_private_network_allowed = private_allowed
    stored.smtp_extra_ports = ", ".join(str(port) for port in ports)
    after = {name: getattr(stored, name) for name in NETWORK_FIELDS}
    if after == before:
        return stored
    stored.save(update_fields=[*NETWORK_FIELDS, "updated_at"])
    audit_record(
        actor=actor,
        action="tenant.smtp_network_update",
        target=stored,
        changes=field_changes(before, after),
        tenant=stored,
        request=request,
    )
    for name in NETWORK_FIELDS:
        setattr(tenant, name, after[name])
    return stored


TEST_EMAIL_ACTION = "smtp_settings.test_sent"
# What the hourly test-email limits count: the settings pages' test emails, and
# the Test button of notification rules (apps.delivery.services.rule_test_send).
TEST_EMAIL_ACTIONS = (TEST_EMAIL_ACTION, "notification_rule.test_sent")
LIMIT_WINDOW = timedelta(hours=1)


class TestEmailLimitError(ValidationError):
    """Too many test emails in the last hour; the message says when to try again."""

    __test__ = False  # not a pytest test class, despite the name


def smtp_test_email_limit_check(*, user, tenant: Tenant | None) -> None:
    """Raise TestEmailLimitError if `user` (or `tenant`) sent its hour's test emails already.

    The audit log is the record: every test email writes one entry, in the
    database all processes share, so the count holds across workers and
    restarts and the window slides exactly (the oldest counted entry says
    when a slot frees up). Two requests at the very same moment can both
    pass the check; the limit is against abuse, not an exact quota.
    """
    now = timezone.now()
    recent = AuditEntry.objects.filter(
        action__in=TEST_EMAIL_ACTIONS, created_at__gt=now - LIMIT_WINDOW
    )
    checks = [
        (recent.filter(actor=user), settings.TEST_EMAIL_LIMIT_PER_USER_HOUR, "You have"),
    ]
    if tenant is not None:
        checks.append(
            (
                recent.filter(tenant=tenant),
                settings.TEST_EMAIL_LIMIT_PER_TENANT_HOUR,
                f"{tenant} has",
            )
        )
    for entries, limit, who in checks:
        times = list(entries.order_by("-created_at").values_list("created_at", flat=True)[:limit])
        if len(times) < limit:
            continue
        minutes = max(1, math.ceil((times[-1] + LIMIT_WINDOW - now).total_seconds() / 60))
        raise TestEmailLimitError(
            f"{who} sent {limit} test email{'s' if limit != 1 else ''} in the last hour. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            code="test_email_limit",
        )


def smtp_test_email_send(*, form, actor, request=None):
    """Send the test email of a valid, testing `SmtpSettingsForm`, within the limits, audited.

    The audit entry names the recipient, the server and the outcome; never
    the password. Raises TestEmailLimitError (nothing sent) past the limits.
    """
    smtp_settings = form.instance
    return audited_test_email_send(
        form=form,
        settings_row=smtp_settings,
        server=f"{smtp_settings.host}:{smtp_settings.port}",
        actor=actor,
        request=request,
    )


def audited_test_email_send(*, form, settings_row, server: str, actor, request=None):
    """Send a settings form's test email (SMTP or provider) within the hourly limits; audited.

    `settings_row` is the form's (perhaps unsaved) SMTP or provider settings;
    `server` names where the email went, for the audit entry.
    """
    tenant = settings_row.tenant if settings_row.tenant_id else None
    smtp_test_email_limit_check(user=actor, tenant=tenant)
    result = form.send_test_email()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=TEST_EMAIL_ACTION,
            target=settings_row if settings_row.pk else None,
            changes={
                "to": form.cleaned_data["test_to"],
                "server": server,
                "outcome": str(result.outcome),
            },
            tenant=tenant,
            request=request,
        )
    return result
