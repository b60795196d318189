"""What the apps above tenancy add to a tenant's dashboard: tenancy never imports them.

An app registers a function in its AppConfig.ready(); the dashboard view merges what each
returns into its template's context (groups: the first groups; connections: where the mail
leaves from; delivery: the daily chart).
"""

from collections.abc import Callable

# Rows of each list the dashboard shows.
DASHBOARD_ROWS = 8

_contexts: list[Callable] = []


def register_dashboard_context(context: Callable) -> None:
    """`context(tenant)` returns a dict for the dashboard's template context."""
    if context not in _contexts:
        _contexts.append(context)


def dashboard_context(tenant) -> dict:
    merged: dict = {}
    for context in _contexts:
        merged.update(context(tenant))
    return merged
