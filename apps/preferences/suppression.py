"""The tenant's suppression list: addresses its notifications must not go to.

Entries come from four places: an address without an account that used an
unsubscribe link (apps.preferences.unsubscribe), a mail server refusing an
address permanently (apps.delivery.sending, in bulk at the end of a batch),
an email-service provider reporting a hard bounce, a spam complaint or an
unsubscribe (apps.webhooks, in bulk per webhook post), and tenant admins
(the portal). The engine skips every listed address and
logs its delivery as *suppressed* (apps.delivery.resolution).
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from apps.audit.services import audit_record
from apps.preferences.models import Suppression, SuppressionReason
from apps.tenancy.models import Tenant

DETAIL_LENGTH = Suppression._meta.get_field("detail").max_length


# Selectors --------------------------------------------------------------------------------


def suppression_list(*, tenant: Tenant, search: str = "") -> QuerySet[Suppression]:
    """Newest first; `search` matches part of the address."""
    suppressions = Suppression.objects.for_tenant(tenant)
    if search:
        suppressions = suppressions.filter(address__icontains=search.strip())
    return suppressions


def suppression_get(*, tenant: Tenant, pk: int) -> Suppression:
    """The tenant's entry, or 404 (another tenant's entry too)."""
    return get_object_or_404(Suppression.objects.for_tenant(tenant), pk=pk)


# Services ---------------------------------------------------------------------------------


@transaction.atomic
def suppression_add(
    *, tenant: Tenant, address: str, detail: str = "", actor, request=None
) -> Suppression:
    address = address.strip().lower()
    existing = Suppression.objects.for_tenant(tenant).filter(address=address).first()
    if existing is not None:
        raise ValidationError(
            {
                "address": f"{address} is already on the suppression list "
                f"({existing.get_reason_display().lower()}, {existing.created_at:%d %b %Y})."
            }
        )
    suppression = Suppression.objects.create(
        tenant=tenant, address=address, reason=SuppressionReason.ADDED, detail=detail.strip()
    )
    audit_record(
        actor=actor,
        action="suppression.added",
        target=suppression,
        changes={"address": address, "reason": suppression.get_reason_display()},
        tenant=tenant,
        request=request,
    )
    return suppression


@transaction.atomic
def suppression_remove(*, suppression: Suppression, actor, request=None) -> None:
    """Take an address off the list: the tenant's notifications reach it again."""
    audit_record(
        actor=actor,
        action="suppression.removed",
        target=suppression,
        changes={
            "address": suppression.address,
            "reason": suppression.get_reason_display(),
            "detail": suppression.detail,
        },
        tenant=suppression.tenant,
        request=request,
    )
    suppression.delete()


@transaction.atomic
def suppressions_add_refused(*, tenant_id: int, refused: dict[str, str]) -> list[Suppression]:
    """List addresses a mail server refused permanently, {address: its reply}; the new entries.

    In bulk: one read, one insert and one audit entry for a whole batch.
    Addresses already listed keep their entry.
    """
    refused = {address.lower(): reply for address, reply in refused.items()}
    listed = set(
        Suppression.objects.for_tenant(tenant_id)
        .filter(address__in=refused)
        .values_list("address", flat=True)
    )
    new = [
        Suppression(
            tenant_id=tenant_id,
            address=address,
            reason=SuppressionReason.REFUSED,
            detail=f"The mail server answered: {reply}"[:DETAIL_LENGTH],
        )
        for address, reply in sorted(refused.items())
        if address not in listed
    ]
    # A concurrent batch may list the same address meanwhile: the first entry stays.
    Suppression.objects.bulk_create(new, ignore_conflicts=True)
    if new:
        audit_record(
            actor=None,
            action="suppression.refused",
            changes={"addresses": [s.address for s in new]},
            tenant=Tenant(pk=tenant_id),
        )
    return new


@transaction.atomic
def suppressions_add_reported(
    *, tenant_id: int, reported: dict[str, tuple[str, str]], provider: str
) -> list[Suppression]:
    """List addresses a provider reported, {address: (SuppressionReason, detail)}; the new entries.

    Like `suppressions_add_refused`: one read, one insert and one audit entry
    for a whole webhook post. Addresses already listed keep their entry.
    """
    reported = {address.lower(): entry for address, entry in reported.items()}
    listed = set(
        Suppression.objects.for_tenant(tenant_id)
        .filter(address__in=reported)
        .values_list("address", flat=True)
    )
    new = [
        Suppression(
            tenant_id=tenant_id, address=address, reason=reason, detail=detail[:DETAIL_LENGTH]
        )
        for address, (reason, detail) in sorted(reported.items())
        if address not in listed
    ]
    Suppression.objects.bulk_create(new, ignore_conflicts=True)
    if new:
        audit_record(
            actor=None,
            action="suppression.reported",
            changes={
                "provider": provider,
                "addresses": {s.address: s.get_reason_display() for s in new},
            },
            tenant=Tenant(pk=tenant_id),
        )
    return new
