"""Every write to tenants, organisations, projects, memberships and system administrators.

Each service is one transaction with its audit entry inside. Failures are
`ValidationError`s in plain words, keyed by the form field they are about
where there is one.
"""

import copy

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Model, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import slugify

from apps.accounts.models import User
from apps.accounts.services import user_save
from apps.audit.services import audit_record, field_changes
from apps.core.links import absolute_url
from apps.core.mail import MailOutcome, mail_on_commit
from apps.tenancy.hooks import tenant_left
from apps.tenancy.invitations import INVITATION_MAX_AGE, invitation_token_make
from apps.tenancy.models import (
    ROLE_SCOPE,
    TENANT_SCOPE,
    Membership,
    Organization,
    Project,
    Role,
    Scope,
    Tenant,
)
from apps.tenancy.selectors import (
    organization_delete_summary,
    project_delete_summary,
    tenant_delete_summary,
    tenants_for_user,
)


def _names(obj) -> dict:
    return {"name": obj.name, "slug": obj.slug}


def _with(obj: Model, **values) -> Model:
    """A copy carrying the new values, so a failed update leaves the caller's object alone."""
    changed = copy.copy(obj)
    for name, value in values.items():
        setattr(changed, name, value)
    return changed


def _check_names(obj, *, kind: str, within, same_name: QuerySet, same_slug: QuerySet) -> None:
    """Field formats, then a name and short name not already taken by a sibling."""
    exclude = [f.name for f in obj._meta.fields if f.name not in ("name", "slug")]
    obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    errors = {}
    if same_name.filter(name__iexact=obj.name).exclude(pk=obj.pk).exists():
        errors["name"] = (
            f"“{obj.name}” is already the name of another {kind} in {within}. Choose another name."
        )
    if same_slug.filter(slug=obj.slug).exclude(pk=obj.pk).exists():
        errors["slug"] = (
            f"Another {kind} in {obj.tenant} already uses the short name “{obj.slug}”. "
            "Choose another one."
        )
    if errors:
        raise ValidationError(errors)


def _slug(name: str, slug: str) -> str:
    return slug.strip() or slugify(name)[:50]


# Tenants (host) ---------------------------------------------------------------


@transaction.atomic
def tenant_create(*, name: str, slug: str = "", actor: User, request=None) -> Tenant:
    tenant = Tenant(name=name.strip(), slug=_slug(name, slug))
    tenant.full_clean()
    tenant.save()
    audit_record(
        actor=actor,
        action="tenant.created",
        target=tenant,
        changes=field_changes({}, _names(tenant)),
        request=request,
    )
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, name: str, actor: User, request=None) -> Tenant:
    """Rename a tenant. Its short name stays: it is in every link people keep."""
    renamed = _with(tenant, name=name.strip())
    renamed.full_clean(exclude=["slug", "is_active"])
    changes = field_changes({"name": tenant.name}, {"name": renamed.name})
    if changes:
        renamed.save(update_fields=["name", "updated_at"])
        audit_record(
            actor=actor, action="tenant.updated", target=renamed, changes=changes, request=request
        )
    return renamed


def _tenant_set_active(*, tenant: Tenant, is_active: bool, actor: User, request) -> Tenant:
    if tenant.is_active != is_active:
        tenant.is_active = is_active
        tenant.save(update_fields=["is_active", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.enabled" if is_active else "tenant.disabled",
            target=tenant,
            changes={"is_active": [not is_active, is_active]},
            request=request,
        )
    return tenant


@transaction.atomic
def tenant_disable(*, tenant: Tenant, actor: User, request=None) -> Tenant:
    """Its people can no longer open it; its data stays until it is enabled again."""
    return _tenant_set_active(tenant=tenant, is_active=False, actor=actor, request=request)


@transaction.atomic
def tenant_enable(*, tenant: Tenant, actor: User, request=None) -> Tenant:
    return _tenant_set_active(tenant=tenant, is_active=True, actor=actor, request=request)


@transaction.atomic
def tenant_retention_update(
    *, tenant: Tenant, days: int | None, actor: User, request=None
) -> Tenant:
    """Set how long the tenant's deliveries are kept; None: the host's default. Audited."""
    stored = Tenant.objects.select_for_update().get(pk=tenant.pk)
    changes = field_changes(
        {"delivery_retention_days": stored.delivery_retention_days},
        {"delivery_retention_days": days},
    )
    if changes:
        stored.delivery_retention_days = days
        stored.full_clean(exclude=["slug", "name", "is_active"])
        stored.save(update_fields=["delivery_retention_days", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.retention_updated",
            target=stored,
            changes=changes,
            tenant=stored,
            request=request,
        )
    tenant.delivery_retention_days = stored.delivery_retention_days
    return stored


@transaction.atomic
def tenant_delete(*, tenant: Tenant, actor: User, request=None) -> None:
    audit_record(
        actor=actor,
        action="tenant.deleted",
        target=tenant,
        changes={
            **field_changes(_names(tenant), {}),
            "deleted_with_it": tenant_delete_summary(tenant=tenant),
        },
        request=request,
    )
    tenant.delete()


# Organisations and projects ---------------------------------------------------


def _named_save(obj, *, before=None, kind: str, actor: User, request, **extra) -> Model:
    """Check, save and audit a new (`before` None) or renamed organisation or project."""
    _check_names(obj, kind=kind, **_siblings(obj))
    changes = field_changes({} if before is None else _names(before), _names(obj))
    if changes:
        obj.save(update_fields=None if before is None else ["name", "slug", "updated_at"])
        audit_record(
            actor=actor,
            action=f"{obj._meta.model_name}.{'created' if before is None else 'updated'}",
            target=obj,
            changes={**changes, **extra},
            tenant=obj.tenant,
            request=request,
        )
    return obj


def _siblings(obj) -> dict:
    """Where a name and a short name must be free: per tenant, project names per organisation."""
    if isinstance(obj, Project):
        projects = Project.objects.for_tenant(obj.tenant)
        return {
            "within": f"the organisation {obj.organization}",
            "same_name": projects.filter(organization=obj.organization),
            "same_slug": projects,
        }
    organizations = Organization.objects.for_tenant(obj.tenant)
    return {"within": obj.tenant, "same_name": organizations, "same_slug": organizations}


def _named_delete(obj, *, goes_with_it: dict, actor: User, request) -> None:
    audit_record(
        actor=actor,
        action=f"{obj._meta.model_name}.deleted",
        target=obj,
        changes={**field_changes(_names(obj), {}), "deleted_with_it": goes_with_it},
        tenant=obj.tenant,
        request=request,
    )
    obj.delete()


@transaction.atomic
def organization_create(
    *, tenant: Tenant, name: str, slug: str = "", actor: User, request=None
) -> Organization:
    organization = Organization(tenant=tenant, name=name.strip(), slug=_slug(name, slug))
    return _named_save(organization, kind="organisation", actor=actor, request=request)


@transaction.atomic
def organization_update(
    *, organization: Organization, name: str, slug: str = "", actor: User, request=None
) -> Organization:
    updated = _with(organization, name=name.strip(), slug=_slug(name, slug))
    return _named_save(
        updated, before=organization, kind="organisation", actor=actor, request=request
    )


@transaction.atomic
def organization_delete(*, organization: Organization, actor: User, request=None) -> None:
    """Delete an organisation with its projects and everything scoped to them."""
    summary = organization_delete_summary(organization=organization)
    _named_delete(organization, goes_with_it=summary, actor=actor, request=request)


@transaction.atomic
def project_create(
    *, organization: Organization, name: str, slug: str = "", actor: User, request=None
) -> Project:
    project = Project(
        tenant=organization.tenant,
        organization=organization,
        name=name.strip(),
        slug=_slug(name, slug),
    )
    return _named_save(
        project, kind="project", actor=actor, request=request, organization=organization.name
    )


@transaction.atomic
def project_update(
    *, project: Project, name: str, slug: str = "", actor: User, request=None
) -> Project:
    """Rename a project. It stays in its organisation: groups and roles are scoped there."""
    updated = _with(project, name=name.strip(), slug=_slug(name, slug))
    return _named_save(updated, before=project, kind="project", actor=actor, request=request)


@transaction.atomic
def project_delete(*, project: Project, actor: User, request=None) -> None:
    summary = project_delete_summary(project=project)
    _named_delete(project, goes_with_it=summary, actor=actor, request=request)


# Memberships -------------------------------------------------------------------

_SCOPE_NEEDED = {
    "tenant": (
        "Tenant admins and members hold their role in the whole tenant: choose “Whole tenant”."
    ),
    "organization": "An organisation admin needs an organisation: choose one.",
    "project": "A project admin needs a project: choose one.",
}


def _check_role(
    *, tenant: Tenant, role: str, scope: Scope, exclude: Membership | None, user
) -> None:
    if role not in Role.values:
        raise ValidationError({"role": "Choose one of the roles in the list."})
    if ROLE_SCOPE[role] != scope.kind:
        raise ValidationError({"scope": _SCOPE_NEEDED[ROLE_SCOPE[role]]})
    if not scope.belongs_to(tenant):
        raise ValidationError({"scope": f"That organisation or project is not part of {tenant}."})
    taken = Membership.objects.for_tenant(tenant).filter(
        user=user, organization=scope.organization, project=scope.project
    )
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError(
            f"{user.email} already has a role at this scope ({scope.label}). "
            "Change that role on the members page instead."
        )


def _membership_add(*, tenant: Tenant, user: User, role: str, scope: Scope) -> Membership:
    _check_role(tenant=tenant, role=role, scope=scope, exclude=None, user=user)
    return Membership.objects.create(
        tenant=tenant,
        user=user,
        role=role,
        organization=scope.organization,
        project=scope.project,
    )


def _membership_changes(membership: Membership, before: Membership | None = None) -> dict:
    old = {} if before is None else {"role": before.role, "scope": before.scope.label}
    return {
        "user": membership.user.email,
        **field_changes(old, {"role": membership.role, "scope": membership.scope.label}),
    }


@transaction.atomic
def membership_create(
    *, tenant: Tenant, user: User, role: str, scope: Scope = TENANT_SCOPE, actor: User, request=None
) -> Membership:
    """Give an existing user a role in the tenant, without sending anything."""
    membership = _membership_add(tenant=tenant, user=user, role=role, scope=scope)
    audit_record(
        actor=actor,
        action="membership.created",
        target=membership,
        changes=_membership_changes(membership),
        tenant=tenant,
        request=request,
    )
    return membership


@transaction.atomic
def membership_invite(
    *, tenant: Tenant, email: str, role: str, scope: Scope = TENANT_SCOPE, actor: User, request=None
) -> Membership:
    """Give the person with this address a role and email them a link.

    Someone new gets an inactive account without a password and a link
    (valid for INVITATION_MAX_AGE) to choose one; someone who already has
    an account is told where to find the tenant. The email goes once the
    invitation is committed (never while the transaction holds the database);
    `membership.invitation_mail` says how that went (a `MailOutcome`). If it
    failed, the invitation stays and can be resent from the members page.
    """
    email = User.objects.normalize_email(email.strip())
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=None, is_active=False)
    membership = _membership_add(tenant=tenant, user=user, role=role, scope=scope)
    audit_record(
        actor=actor,
        action="membership.invited",
        target=membership,
        changes=_membership_changes(membership),
        tenant=tenant,
        request=request,
    )
    membership.invitation_mail = _invitation_send(
        membership=membership, actor=actor, request=request
    )
    return membership


@transaction.atomic
def membership_invitation_resend(
    *, membership: Membership, actor: User, request=None
) -> MailOutcome:
    """A fresh link for someone who has not accepted yet (the old one may have expired).

    Emailed once the transaction commits; the outcome says whether it went.
    """
    if not membership.is_pending:
        raise ValidationError(
            f"{membership.user.email} has already accepted the invitation and can sign in."
        )
    audit_record(
        actor=actor,
        action="membership.invitation_resent",
        target=membership,
        changes={"user": membership.user.email},
        tenant=membership.tenant,
        request=request,
    )
    return _invitation_send(membership=membership, actor=actor, request=request)


def _invitation_send(*, membership: Membership, actor: User, request) -> MailOutcome:
    user, tenant = membership.user, membership.tenant
    if user.has_usable_password():
        link = absolute_url(reverse("tenancy:dashboard", args=[tenant.slug]))
    else:
        token = invitation_token_make(user=user)
        link = absolute_url(reverse("invitations:accept", args=[token]))
    context = {
        "membership": membership,
        "tenant": tenant,
        "inviter": actor,
        "link": link,
        "needs_password": not user.has_usable_password(),
        "expires_days": INVITATION_MAX_AGE.days,
    }
    subject = render_to_string("tenancy/email/invitation_subject.txt", context).strip()
    body = render_to_string("tenancy/email/invitation.txt", context)
    to = user.email
    return mail_on_commit(
        lambda: send_mail(subject, body, None, [to], using="default"),
        what=f"Invitation to {to}",
    )


def invitation_mail_failed_message(*, email: str, outcome: MailOutcome) -> str:
    """What the inviting person reads when the invitation was saved but not emailed."""
    return (
        f"{email} was invited, but the invitation email could not be sent: {outcome.error}. "
        "A system administrator can check Host administration → Email settings; then send "
        "it again with “Resend invitation” on the members page."
    )


@transaction.atomic
def invitation_accept(*, user: User, password: str, full_name: str = "", request=None) -> User:
    """The invited person chose a password: their account is active from now on."""
    user.set_password(password)
    user.is_active = True
    fields = ["password", "is_active"]
    if full_name.strip():
        user.full_name = full_name.strip()
        fields.append("full_name")
    user.save(update_fields=fields)
    for tenant in tenants_for_user(user=user):
        audit_record(
            actor=user,
            action="membership.invitation_accepted",
            target=user,
            tenant=tenant,
            request=request,
        )
    return user


def _locked_tenant_admins(tenant: Tenant) -> list[int]:
    return list(
        Membership.objects.for_tenant(tenant)
        .filter(role=Role.TENANT_ADMIN)
        .select_for_update()
        .values_list("pk", flat=True)
    )


def _check_not_last_admin(membership: Membership) -> None:
    if membership.is_tenant_admin and _locked_tenant_admins(membership.tenant) == [membership.pk]:
        raise ValidationError(
            f"{membership.user.email} is the last tenant admin of {membership.tenant}. "
            "Make someone else a tenant admin first."
        )


@transaction.atomic
def membership_update_role(
    *, membership: Membership, role: str, scope: Scope = TENANT_SCOPE, actor: User, request=None
) -> Membership:
    tenant = membership.tenant
    _check_role(tenant=tenant, role=role, scope=scope, exclude=membership, user=membership.user)
    if role != Role.TENANT_ADMIN:
        _check_not_last_admin(membership)
    updated = _with(membership, role=role, organization=scope.organization, project=scope.project)
    changes = _membership_changes(updated, before=membership)
    if len(changes) > 1:
        updated.save(update_fields=["role", "organization", "project", "updated_at"])
        audit_record(
            actor=actor,
            action="membership.role_changed",
            target=updated,
            changes=changes,
            tenant=tenant,
            request=request,
        )
    return updated


@transaction.atomic
def membership_remove(*, membership: Membership, actor: User, request=None) -> None:
    """Take a role away; someone left with no role in the tenant also leaves its groups."""
    _check_not_last_admin(membership)
    tenant, user = membership.tenant, membership.user
    changes = {
        "user": user.email,
        **field_changes({"role": membership.role, "scope": membership.scope.label}, {}),
    }
    membership.delete()
    if not Membership.objects.for_tenant(tenant).filter(user=user).exists():
        changes.update(tenant_left(tenant=tenant, user=user))  # groups: leaves them
    audit_record(
        actor=actor,
        action="membership.removed",
        target=user,
        changes=changes,
        tenant=tenant,
        request=request,
    )


# System administrators (host) -------------------------------------------------


@transaction.atomic
def system_admin_grant(*, user: User, actor: User, request=None) -> User:
    if not user.is_active:
        raise ValidationError(
            f"{user.email} cannot sign in (the account is disabled or the invitation is not "
            "accepted yet). Activate the account first, then grant."
        )
    if not user.is_system_admin:
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
        audit_record(
            actor=actor,
            action="system_admin.granted",
            target=user,
            changes={"system_administrator": [False, True]},
            request=request,
        )
    return user


@transaction.atomic
def system_admin_create(
    *, email: str, password: str, actor, full_name: str = "", request=None
) -> User:
    """A new account that administers the host (the first one: `manage.py createsystemadmin`).

    The password must pass the password validators; both the account and the grant are audited.
    """
    email = User.objects.normalize_email(email.strip())
    if not email:
        raise ValidationError("Give the system administrator's email address.", code="email")
    try:
        User._meta.get_field("email").run_validators(email)
    except ValidationError as exc:
        raise ValidationError(f"{email} is not an email address.", code="email") from exc
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError(
            f"An account with {email} exists already. Choose another address, or make that "
            "account a system administrator (`createsystemadmin --existing`).",
            code="email",
        )
    user = User(email=email, full_name=full_name)
    validate_password(password, user)
    user.set_password(password)
    user_save(actor=actor, user=user, request=request)
    return system_admin_grant(user=user, actor=actor, request=request)


@transaction.atomic
def system_admin_revoke(*, user: User, actor: User, request=None) -> User:
    admins = list(
        User.objects.filter(is_active=True, is_staff=True, is_superuser=True)
        .select_for_update()
        .values_list("pk", flat=True)
    )
    if user.pk not in admins:
        raise ValidationError(f"{user.email} is not a system administrator.")
    if admins == [user.pk]:
        raise ValidationError(
            f"{user.email} is the last system administrator, so their rights cannot be "
            "revoked. Grant them to someone else first."
        )
    user.is_staff = user.is_superuser = False
    user.save(update_fields=["is_staff", "is_superuser"])
    audit_record(
        actor=actor,
        action="system_admin.revoked",
        target=user,
        changes={"system_administrator": [True, False]},
        request=request,
    )
    return user
