from django import template

from apps.tenancy.selectors import tenants_for_user

register = template.Library()


@register.simple_tag
def user_tenants(user):
    """The tenants the user has a role in, for links on the home page."""
    return list(tenants_for_user(user=user)) if user.is_authenticated else []


@register.filter
def audit_change(change) -> str:
    """An audit entry's change in words: "old → new" for a pair, "a: 1, b: 2" for counts."""
    if isinstance(change, list) and len(change) == 2:
        old, new = ("—" if v in (None, "") else v for v in change)
        return f"{old} → {new}"
    if isinstance(change, dict):
        return ", ".join(f"{k}: {v}" for k, v in change.items())
    return str(change)
