"""No migration holds a lock that blocks writes on a busy table (django-migration-linter).

`make test` runs these: the first lints every migration newer than the rule
(config/settings/test.py, MIGRATION_LINTER_OPTIONS); the others show that a
blocking one is reported and that the concurrent way is not.
"""

import pytest
from django.core.management import call_command
from django.db import connection

# Outside a transaction: sqlmigrate needs a schema editor, which SQLite refuses inside one.
pytestmark = pytest.mark.django_db(transaction=True)


def lint(capsys, *args, **options) -> tuple[int, str]:
    """Run lintmigrations; (exit status, what it printed: it prints to sys.stdout)."""
    capsys.readouterr()
    try:
        call_command("lintmigrations", *args, **options)
    except SystemExit as stopped:
        return int(stopped.code or 0), capsys.readouterr().out
    return 0, capsys.readouterr().out


def test_every_new_migration_passes_the_linter(capsys):
    status, output = lint(capsys)
    assert status == 0, output


def test_a_migration_that_blocks_writes_is_reported(settings, capsys):
    settings.MIGRATION_MODULES = {"mailcatcher": "tests.core.migrations_blocking"}

    status, output = lint(capsys, "mailcatcher", "0002_blocking_index", sql_analyser="postgresql")

    assert status == 1
    assert "CREATE INDEX locks table" in output


@pytest.mark.services
def test_an_index_built_concurrently_is_not_reported(settings, capsys):
    assert connection.vendor == "postgresql"
    settings.MIGRATION_MODULES = {"mailcatcher": "tests.core.migrations_concurrent"}

    status, output = lint(capsys, "mailcatcher", "0002_concurrent_index")

    assert status == 0, output
    assert "(mailcatcher, 0002_concurrent_index)... OK" in output
