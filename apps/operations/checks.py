"""Production never runs with the demo's accounts or its published API token.

`manage.py seed_demo` refuses outside development, but a database seeded by
`make run` (or copied from one) can still reach production: this check makes
`manage.py check --deploy` report it and the production start refuse it
(apps/core/checks.py, `startup_check`).
"""

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connections

from apps.accounts.models import User
from apps.core.checks import STARTUP, database_unreachable
from apps.core.demo_markers import DEMO_API_TOKEN, DEMO_EMAILS
from apps.pipelines.models import ProjectApiToken, token_hash


@checks.register(checks.Tags.security, STARTUP, deploy=True)
def demo_data_check(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEMO_ENABLED:
        return []
    errors = []
    for alias in databases or []:
        try:
            accounts = list(
                User.objects.using(alias)
                .filter(email__in=DEMO_EMAILS)
                .order_by("email")
                .values_list("email", flat=True)
            )
            token = (
                ProjectApiToken.objects.using(alias)
                .filter(hash=token_hash(DEMO_API_TOKEN), revoked_at=None)
                .exists()
            )
        except DatabaseError:
            # Not migrated yet (nothing seeded) reads as no tables; anything else is unreachable.
            if _migrated(alias) is False:
                continue
            errors.append(database_unreachable(alias))
            continue
        if accounts:
            errors.append(
                checks.Error(
                    f"The demo's accounts are in the database ({', '.join(accounts)}); their "
                    "password is published in the README.",
                    hint="Production starts from an empty database: delete these accounts (or "
                    "start again from a new database) and create the first system "
                    "administrator with `manage.py createsystemadmin`.",
                    id="operations.E001",
                )
            )
        if token:
            errors.append(
                checks.Error(
                    "The demo's events API token (published in the README) is in the database.",
                    hint="Revoke it on its project's API tokens page, or start again from a "
                    "new database.",
                    id="operations.E002",
                )
            )
    return errors


def _migrated(alias: str) -> bool | None:
    """Whether the accounts table exists (None: the database cannot be asked)."""
    try:
        return User._meta.db_table in connections[alias].introspection.table_names()
    except DatabaseError:
        return None
