from django.db import models

from apps.audit.models import AuditEntry

SECRET_CHANGED = "changed"


class NamedActor:
    """Who acted when no one signed in did: the audit entry names it ("command line")."""

    is_authenticated = False

    def __init__(self, name: str):
        self.name = name

    def __str__(self):
        return self.name


# A management command run by whoever has a shell on the server (createsystemadmin).
COMMAND_LINE = NamedActor("command line")


def client_ip(request) -> str | None:
    """The address the request came from, as the server saw it."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def field_changes(
    before: dict, after: dict, *, secret_fields: frozenset[str] = frozenset()
) -> dict:
    """{field: [old, new]} for what differs; secrets only as "changed"."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        changes[name] = SECRET_CHANGED if name in secret_fields else [_plain(old), _plain(new)]
    return changes


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    changes: dict | None = None,
    tenant=None,
    request=None,
) -> AuditEntry:
    """Write one audit entry; call it inside the service's transaction."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    named = actor.name if isinstance(actor, NamedActor) else ""
    return AuditEntry.objects.create(
        tenant=tenant,
        actor=actor if is_user else None,
        actor_email=actor.email if is_user else named,
        ip_address=client_ip(request),
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None and target.pk is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        changes=changes or {},
    )
