from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_record, field_changes

AUDITED_FIELDS = ("email", "full_name", "is_active", "password")
SECRET_FIELDS = frozenset({"password"})


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
