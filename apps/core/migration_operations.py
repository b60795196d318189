"""Migration operations that never hold a lock that blocks writes on a busy table.

On PostgreSQL an index is built and dropped CONCURRENTLY (the migration must
say `atomic = False`); elsewhere (SQLite in development and the quick test
run) there is nothing to block, and the plain operation runs. An index only
PostgreSQL can build (GIN, trigram) is skipped elsewhere with `postgres_only`.

`make test` lints every new migration (django-migration-linter,
MIGRATION_LINTER_OPTIONS in the settings): a plain AddIndex on PostgreSQL is
reported and fails the run.
"""

from django.contrib.postgres import operations as postgres
from django.db import migrations


def _postgres(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    def __init__(self, model_name, index, *, postgres_only: bool = False):
        super().__init__(model_name, index)
        self.postgres_only = postgres_only

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        if self.postgres_only:
            kwargs["postgres_only"] = True
        return name, args, kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        elif not self.postgres_only:
            migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        elif not self.postgres_only:
            migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )


class RemoveIndexConcurrently(postgres.RemoveIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.RemoveIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if _postgres(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.RemoveIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
