# The delivery log pages by keyset (apps/core/keyset.py): indexes that match its
# order (created_at, id) and its filters, built without blocking the table.

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    # CREATE / DROP INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("delivery", "0009_delivery_lifecycle_indexes"),
    ]

    operations = [
        TrigramExtension(),
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(fields=["tenant", "-created_at", "-id"], name="delivery_recent"),
        ),
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                fields=["tenant", "status", "-created_at", "-id"], name="delivery_status_recent"
            ),
        ),
        AddIndexConcurrently(
            model_name="delivery",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("address"), name="gin_trgm_ops"
                ),
                name="delivery_address_trgm",
            ),
            postgres_only=True,
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["run_id"], name="delivery_event_run"),
        ),
        # Replaced by delivery_status_recent (the same columns, and the id last).
        RemoveIndexConcurrently(model_name="delivery", name="delivery_log"),
    ]
