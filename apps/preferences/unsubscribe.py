"""One-click unsubscribe (RFC 8058): the signed links in every notification, and what they do.

A link's token is signed and timestamped (`django.core.signing`, with its
own salt) and names who it is for (the address, and the user behind it if
any), the tenant, and the scope: one pipeline, one project, or everything
from the tenant. It works for UNSUBSCRIBE_LINK_DAYS. Whoever holds the link
may do one thing with it: unsubscribe that recipient from that scope, which
is what a mail program's one-click POST does, without signing in.

Someone with an account gets a "none" preference at the scope (rules an
administrator made mandatory still reach them). An address without one may
be shared (a team's alias: whoever reads it holds the link), so its link
stops the tenant's notifications to that address for everyone who reads it,
through the suppression list, but never a mandatory rule: the engine still
sends those to an unsubscribed address (apps.delivery.resolution). Only a
tenant administrator can stop a mandatory rule, by editing the rule.
"""

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.pipelines.models import Pipeline
from apps.preferences.models import (
    NotificationPreference,
    PreferenceLevel,
    Suppression,
    SuppressionReason,
)
from apps.tenancy.models import Project, Tenant

SALT = "postmaster.unsubscribe"


class UnsubscribeScope(StrEnum):
    PIPELINE = "p"
    PROJECT = "j"
    TENANT = "t"


def unsubscribe_token(
    *,
    address: str,
    user_id: int | None,
    tenant_id: int,
    scope: UnsubscribeScope,
    target_id: int | None = None,
) -> str:
    """The token of an unsubscribe link; `target_id` is the pipeline's or the project's id.

    About 20 µs: cheap enough to make per recipient of a big fan-out.
    """
    payload = [address, user_id, tenant_id, str(scope), target_id]
    return signing.dumps(payload, salt=SALT)


class LinkInvalidError(Exception):
    """Tampered with (`gone` False), or expired or naming what no longer exists (`gone`)."""

    def __init__(self, *, gone: bool):
        super().__init__("gone" if gone else "tampered")
        self.gone = gone


@dataclass(frozen=True)
class UnsubscribeLink:
    address: str
    user: User | None
    tenant: Tenant
    scope: UnsubscribeScope
    project: Project | None = None
    pipeline: Pipeline | None = None

    @property
    def what(self) -> str:
        """What unsubscribing stops, in words: "pipeline “Deploy prod” of project “Payments”"."""
        if self.user is None:
            return f"the notifications of {self.tenant} that are not mandatory"
        if self.pipeline is not None:
            return f"pipeline “{self.pipeline}” of project “{self.project}”"
        if self.project is not None:
            return f"project “{self.project}”"
        return f"everything from {self.tenant}"


def unsubscribe_link_read(token: str) -> UnsubscribeLink:
    """The link's recipient and scope, loaded. Raises LinkInvalidError."""
    max_age = timedelta(days=settings.UNSUBSCRIBE_LINK_DAYS)
    try:
        address, user_id, tenant_id, scope, target_id = signing.loads(
            token, salt=SALT, max_age=max_age
        )
        scope = UnsubscribeScope(scope)
    except signing.SignatureExpired as error:
        raise LinkInvalidError(gone=True) from error
    except (signing.BadSignature, ValueError, TypeError) as error:
        # ValueError, TypeError: a payload of the wrong shape (signed, so never seen yet).
        raise LinkInvalidError(gone=False) from error
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        raise LinkInvalidError(gone=True)
    # An account deleted since: its address is still unsubscribed, through the suppression list.
    user = User.objects.filter(pk=user_id).first() if user_id is not None else None
    project = pipeline = None
    if scope is UnsubscribeScope.PIPELINE:
        pipeline = (
            Pipeline.objects.for_tenant(tenant).select_related("project").filter(pk=target_id)
        ).first()
        if pipeline is None:
            raise LinkInvalidError(gone=True)
        project = pipeline.project
    elif scope is UnsubscribeScope.PROJECT:
        project = Project.objects.for_tenant(tenant).filter(pk=target_id).first()
        if project is None:
            raise LinkInvalidError(gone=True)
    return UnsubscribeLink(address, user, tenant, scope, project, pipeline)


@dataclass(frozen=True)
class UnsubscribeResult:
    link: UnsubscribeLink
    # False when the recipient was already unsubscribed there: nothing changed.
    changed: bool


@transaction.atomic
def unsubscribe_apply(*, link: UnsubscribeLink, request=None) -> UnsubscribeResult:
    """Unsubscribe the link's recipient from its scope; doing it again changes nothing.

    Audited without an actor: the signed link, not a signed-in person, did it.
    """
    if link.user is None:
        return _suppress(link, request)
    preference, _ = NotificationPreference.objects.get_or_create(
        tenant=link.tenant, user=link.user, project=link.project, pipeline=link.pipeline
    )
    if preference.level == PreferenceLevel.NONE:
        return UnsubscribeResult(link, changed=False)
    before = preference.get_level_display()
    preference.level = PreferenceLevel.NONE
    preference.save(update_fields=["level", "updated_at"])
    audit_record(
        actor=None,
        action="notification_preference.unsubscribed",
        target=link.user,
        changes={"unsubscribed from": link.what, "level": [before, preference.get_level_display()]},
        tenant=link.tenant,
        request=request,
    )
    return UnsubscribeResult(link, changed=True)


def _suppress(link: UnsubscribeLink, request) -> UnsubscribeResult:
    where = f"pipeline “{link.pipeline}”" if link.pipeline else f"project “{link.project}”"
    detail = "Through the unsubscribe link of a notification"
    if link.project is not None:
        detail += f" of {where}"
    suppression, created = Suppression.objects.get_or_create(
        tenant=link.tenant,
        address=link.address.lower(),
        defaults={
            "reason": SuppressionReason.UNSUBSCRIBED,
            "detail": f"{detail}. Mandatory rules still reach it.",
        },
    )
    if created:
        audit_record(
            actor=None,
            action="suppression.unsubscribed",
            target=suppression,
            changes={"unsubscribed from": link.what, "reason": suppression.get_reason_display()},
            tenant=link.tenant,
            request=request,
        )
    return UnsubscribeResult(link, changed=created)
