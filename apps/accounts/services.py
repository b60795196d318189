import logging

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from apps.accounts.email_change import (
    EMAIL_CHANGE_MAX_AGE,
    email_change_for,
    email_change_token_make,
    email_taken,
)
from apps.accounts.lockout import password_check, unlock_account
from apps.accounts.models import User
from apps.accounts.reauth import reauth_stamp
from apps.audit.services import SECRET_CHANGED, audit_record, field_changes
from apps.core.links import absolute_url
from apps.core.mail import mail_failure_in_words

logger = logging.getLogger(__name__)

AUDITED_FIELDS = ("email", "full_name", "is_active", "password")
SECRET_FIELDS = frozenset({"password"})
EMAIL_CONFIRM = "accounts/email/email_change_confirm.txt"
EMAIL_CHANGED = "accounts/email/email_changed.txt"


def _snapshot(user: User) -> dict:
    return {name: getattr(user, name) for name in AUDITED_FIELDS}


@transaction.atomic
def user_save(*, actor, user: User, request=None) -> User:
    """Save a user edited by a system administrator; the password hash shows only as "changed"."""
    creating = user.pk is None
    before = {} if creating else _snapshot(User.objects.get(pk=user.pk))
    user.save()
    audit_record(
        actor=actor,
        action="user.created" if creating else "user.updated",
        target=user,
        changes=field_changes(before, _snapshot(user), secret_fields=SECRET_FIELDS),
        request=request,
    )
    return user


@transaction.atomic
def user_delete(*, actor, user: User, request=None) -> None:
    audit_record(
        actor=actor,
        action="user.deleted",
        target=user,
        changes={"email": [user.email, None]},
        request=request,
    )
    user.delete()


def user_password_changed(*, actor, user: User, request=None) -> None:
    """Record a password an administrator set (Django's admin form saved it)."""
    audit_record(
        actor=actor,
        action="user.password_changed",
        target=user,
        changes={"password": "changed"},
        request=request,
    )


# The signed-in user's own account ---------------------------------------------------------


@transaction.atomic
def user_password_change(*, user: User, password: str, request=None) -> User:
    """The user chose a new password themselves; the audit says "changed", never the password."""
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        actor=user,
        action="user.password_changed",
        target=user,
        changes={"password": SECRET_CHANGED},
        request=request,
    )
    return user


def _send(subject: str, template: str, context: dict, to: str) -> None:
    send_mail(subject, render_to_string(template, context), None, [to], using="default")


def user_email_change_request(*, user: User, new_email: str, request=None) -> None:
    """Send a confirmation link to the new address; the address changes when it is opened.

    Nothing changes yet, so nothing is stored but the audit entry (written
    once the mail is sent). No transaction is open while the mail goes: only
    the audit entry is written, in its own, after it.
    """
    new_email = User.objects.normalize_email(new_email.strip())
    if new_email.lower() == user.email.lower():
        raise ValidationError({"email": "This is already your address."})
    if email_taken(new_email, user=user):
        raise ValidationError({"email": "Another account uses this address already."})
    token = email_change_token_make(user=user, new_email=new_email)
    context = {
        "user": user,
        "new_email": new_email,
        "link": absolute_url(reverse("account:email_confirm", args=[token])),
        "expires_days": EMAIL_CHANGE_MAX_AGE.days,
    }
    try:
        _send("Confirm your new address on Postmaster", EMAIL_CONFIRM, context, new_email)
    except Exception as exc:
        # A mail server's failure is for the person to read, not a crash.
        logger.warning("Email change confirmation to %s not sent: %s", new_email, exc)
        raise ValidationError(
            f"The confirmation email to {new_email} could not be sent: "
            f"{mail_failure_in_words(exc)}. Your address did not change. Try again later, "
            "or ask the host's administrator to check the email settings."
        ) from exc
    with transaction.atomic():
        audit_record(
            actor=user,
            action="user.email_change_requested",
            target=user,
            changes={"requested email": new_email},
            request=request,
        )


def _notice_send(context: dict, to: str) -> None:
    try:
        _send("Your Postmaster address was changed", EMAIL_CHANGED, context, to)
    except Exception as exc:
        # The change is made; a lost notice must not turn it into an error page.
        logger.warning("Email change notice to %s not sent: %s", to, exc)


@transaction.atomic
def user_email_change_confirm(*, user: User, token: str, request=None) -> User:
    """Change the signed-in user's address as the link says; the old address gets a notice."""
    user = User.objects.select_for_update().get(pk=user.pk)
    change = email_change_for(user=user, token=token)
    user.email = change.new
    user.save(update_fields=["email"])
    audit_record(
        actor=user,
        action="user.email_changed",
        target=user,
        changes={"email": [change.old, change.new]},
        request=request,
    )
    context = {"user": user, "old_email": change.old, "new_email": change.new}
    transaction.on_commit(lambda: _notice_send(context, change.old))
    return user


@transaction.atomic
def user_password_reset(*, user: User, request=None) -> None:
    """The user chose a new password from a reset link: audited, and any sign-in lockout lifted.

    Whoever can read the account's mail is its owner, so the failures that
    paused sign-in (perhaps someone else's guesses) no longer count.
    """
    unlock_account(email=user.email)
    audit_record(
        actor=user,
        action="user.password_reset",
        target=user,
        changes={"password": SECRET_CHANGED},
        request=request,
    )


def user_reauthenticate(*, user: User, password: str, request) -> bool:
    """Check the signed-in user's password again ("sudo mode"); audited either way.

    Wrong passwords here count towards the sign-in lockout like those on
    the sign-in page, and a locked account cannot confirm.
    """
    ok = password_check(request=request, user=user, password=password)
    if ok:
        reauth_stamp(request)
    with transaction.atomic():
        audit_record(
            actor=user,
            action="user.reauthenticated" if ok else "user.reauthentication_failed",
            target=user,
            request=request,
        )
    return ok
