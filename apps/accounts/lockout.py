"""Sign-in lockout (django-axes): whose failures count, and what a locked-out person sees.

Failures are counted per account (the address typed, compared as sign-in
compares it), never per client address: a guesser who changes
`X-Forwarded-For`, or a whole botnet, still adds to the same count. The
address recorded with each failure is REMOTE_ADDR, the one the server saw;
no client header is trusted. The price is that anyone can lock an account
for AXES_COOLOFF_TIME by failing on purpose; the lockout page offers the
way out (a password reset clears the lockout at once).
"""

from datetime import datetime

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.db.models import Max
from django.shortcuts import render
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record


def lockout_username(request, credentials) -> str | None:
    """The account a sign-in attempt is for: what was typed, trimmed and in lower case."""
    credentials = credentials or {}
    typed = credentials.get("username") or credentials.get("email")
    if typed is None and request is not None:
        typed = request.POST.get("username")
    return typed.strip().lower() if typed else None


def client_ip(request) -> str | None:
    """The address the connection came from; never a header the client can set."""
    return request.META.get("REMOTE_ADDR") or None


def password_check(*, request, user: User, password: str) -> bool:
    """Whether `password` is the signed-in `user`'s, counted like a sign-in attempt.

    Every form that asks for the current password (confirm your password,
    change email, change password) checks it here: through `authenticate`,
    so a wrong one adds to the account's sign-in failures and a locked
    account is refused even the right one (the lockout page is shown).
    """
    confirmed = authenticate(request, username=user.email, password=password)
    return confirmed is not None and confirmed.pk == user.pk


def locked_until(username: str) -> datetime | None:
    """When the failures that lock `username` are old enough to stop counting."""
    cool_off = get_cool_off()
    if not username or cool_off is None:
        return None
    last = AccessAttempt.objects.filter(
        username=username, attempt_time__gte=timezone.now() - cool_off
    ).aggregate(last=Max("attempt_time"))["last"]
    return last + cool_off if last else None


def unlock_account(*, email: str) -> None:
    """Forget the failures of an account (its owner proved who they are)."""
    AccessAttempt.objects.filter(username=email.strip().lower()).delete()


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out sign-in gets (AXES_LOCKOUT_CALLABLE), for the portal and the admin."""
    until = locked_until(get_client_username(request, credentials))
    minutes = None
    if until is not None:
        minutes = max(1, -(-int((until - timezone.now()).total_seconds()) // 60))
    context = {"until": until, "minutes": minutes}
    return render(request, "accounts/locked_out.html", context, status=429)


def record_lockout(sender, request, username, ip_address, **kwargs):
    """Audit the moment an account gets locked (axes' `user_locked_out` signal).

    Axes sends the signal again for each attempt made while locked; only the
    attempt that locked it has a failure count.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:
        return
    user = User.objects.filter(email__iexact=username).first() if username else None
    audit_record(
        actor=None,
        action="user.locked_out",
        target=user,
        changes={"email": username, "failed sign-ins": failures},
        request=request,
    )
