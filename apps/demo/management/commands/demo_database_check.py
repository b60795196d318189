"""`manage.py demo_database_check`: is the development database from before a migrations rebuild?

Postmaster's migrations were rebuilt once before its first release (SMTP settings, providers
and OAuth2 sign-in became one `connections` app). A development database made before that
records migrations that no longer exist; `make run` runs this first, and with `--recreate`
a SQLite file is moved aside and made again (then seeded), saying so in plain words.
"""

import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone


def stale_migrations(connection) -> list[tuple[str, str]]:
    """Migrations the database says were applied and no app of this checkout has."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return sorted(set(loader.applied_migrations) - set(loader.disk_migrations))


class Command(BaseCommand):
    help = (
        "Check that the development database was made by this checkout's migrations; "
        "with --recreate, move a stale SQLite file aside so `migrate` makes a new one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--recreate", action="store_true")

    def handle(self, *args, recreate=False, **options):
        connection = connections[DEFAULT_DB_ALIAS]
        stale = stale_migrations(connection)
        if not stale:
            return
        apps = ", ".join(sorted({app for app, _ in stale}))
        why = (
            "The development database was made by an older Postmaster: it records migrations "
            f"that no longer exist (apps: {apps}), because the migrations were rebuilt once "
            "before the first release."
        )
        name = connection.settings_dict["NAME"]
        if not (recreate and connection.vendor == "sqlite" and Path(str(name)).is_file()):
            raise CommandError(
                f"{why} Point DATABASE_URL at a new, empty database (or empty this one) and "
                "run `make run` again: it creates the tables and the demo data."
            )
        connection.close()
        path = Path(name)
        kept = path.with_name(f"{path.name}.before-{timezone.now():%Y%m%d-%H%M%S}")
        shutil.move(path, kept)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.stdout.write(
            f"{why} It was moved aside to {kept} and a new one with fresh demo data is being "
            "made; what you changed in the old demo is not carried over."
        )
