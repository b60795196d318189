# What the linter lets through: the same index, built concurrently.
from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("mailcatcher", "0001_initial")]

    operations = [
        AddIndexConcurrently(
            model_name="caughtmessage",
            index=models.Index(fields=["size"], name="caught_size_concurrent"),
        ),
        RemoveIndexConcurrently(model_name="caughtmessage", name="caught_size_concurrent"),
    ]
