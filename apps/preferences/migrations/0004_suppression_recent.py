# The suppression list pages by cursor: an index of its order, built without blocking.

from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("preferences", "0003_suppression_reported_reasons"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="suppression",
            index=models.Index(fields=["tenant", "-created_at", "-id"], name="suppression_recent"),
        ),
    ]
