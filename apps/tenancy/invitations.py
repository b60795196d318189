"""Invitation links: signed, expiring, and dead once the invitation is accepted.

The token names the invited user and a fingerprint of their (unusable)
password; accepting sets a real password, so the link cannot be used twice.
"""

from datetime import timedelta

from django.core import signing
from django.utils.crypto import salted_hmac

from apps.accounts.models import User

INVITATION_MAX_AGE = timedelta(days=7)
_SALT = "apps.tenancy.invitation"


def _fingerprint(user: User) -> str:
    return salted_hmac(_SALT, user.password, algorithm="sha256").hexdigest()[:20]


def invitation_token_make(*, user: User) -> str:
    return signing.dumps({"user": user.pk, "password": _fingerprint(user)}, salt=_SALT)


def invitation_user_get(*, token: str) -> User | None:
    """The invited user the token names, or None if it is forged, expired or used."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=INVITATION_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    user = User.objects.filter(pk=data.get("user")).first()
    if user is None or user.has_usable_password() or data.get("password") != _fingerprint(user):
        return None
    return user
