"""Migration operations that never hold a lock blocking a busy table's writes.

`AddIndexConcurrently` builds the index with PostgreSQL's `CREATE INDEX
CONCURRENTLY` (the table keeps taking writes meanwhile); on another database
(SQLite, for development and tests) it is a plain `AddIndex`. A migration
using it sets `atomic = False`: PostgreSQL cannot build an index concurrently
inside a transaction.
"""

from django.contrib.postgres import operations as postgres
from django.db import migrations


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
