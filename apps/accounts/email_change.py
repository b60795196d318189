"""Email change links: signed, expiring, and dead once the address has changed.

The token names the user, the address it changes from and the one it
changes to. Once the change is made the account's address is no longer the
"from" one, so the link cannot be used twice.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.core.exceptions import ValidationError

from apps.accounts.models import User

EMAIL_CHANGE_MAX_AGE = timedelta(days=2)
_SALT = "apps.accounts.email_change"


@dataclass(frozen=True)
class EmailChange:
    user_id: int
    old: str
    new: str


def email_change_token_make(*, user: User, new_email: str) -> str:
    return signing.dumps({"user": user.pk, "from": user.email, "to": new_email}, salt=_SALT)


def email_taken(address: str, *, user: User) -> bool:
    """Whether another account signs in with `address` (compared as sign-in does)."""
    return User.objects.filter(email__iexact=address).exclude(pk=user.pk).exists()


def _read(token: str) -> EmailChange:
    """What the link asks for; ValidationError in plain words if forged or expired."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=EMAIL_CHANGE_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ValidationError(
            "This confirmation link has expired. Ask for a new one on your account page."
        ) from exc
    except signing.BadSignature as exc:
        raise ValidationError(
            "This confirmation link is not valid: it may have been cut or changed. "
            "Open the link from the email again, or ask for a new one on your account page."
        ) from exc
    return EmailChange(data["user"], data["from"], data["to"])


def email_change_for(*, user: User, token: str) -> EmailChange:
    """The change the link asks of `user`; ValidationError saying why it cannot be made."""
    change = _read(token)
    if change.user_id != user.pk:
        raise ValidationError(
            "This confirmation link is for another account. Sign out, then sign in with "
            "the account whose address you want to change and open the link again."
        )
    if user.email.lower() == change.new.lower():
        raise ValidationError(f"Your address is already {change.new}.")
    if user.email != change.old:
        raise ValidationError(
            "This confirmation link no longer applies: your address changed since it was "
            "sent. Ask for a new one on your account page."
        )
    if email_taken(change.new, user=user):
        raise ValidationError(
            f"Another account started using {change.new} since the link was sent, "
            "so it cannot be yours. Choose another address on your account page."
        )
    return change
