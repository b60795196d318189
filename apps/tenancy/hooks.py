"""What the apps above tenancy do when something happens in it: tenancy never imports them.

An app registers a function in its AppConfig.ready() (see docs/architecture.md).
"""

from collections.abc import Callable

_tenant_left: list[Callable] = []


def register_tenant_left(hook: Callable) -> None:
    """`hook(tenant=..., user=...)` runs, inside the transaction, when a user's last role in
    the tenant is taken away (groups: the user leaves the tenant's groups). It returns what it
    changed, as entries for the audit record ({"removed_from_groups": 2})."""
    if hook not in _tenant_left:
        _tenant_left.append(hook)


def tenant_left(*, tenant, user) -> dict:
    changes: dict = {}
    for hook in _tenant_left:
        changes.update(hook(tenant=tenant, user=user))
    return changes
