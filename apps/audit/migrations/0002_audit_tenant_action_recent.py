# The tenant's audit log pages by cursor, one action at a time too: built without blocking.

from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="auditentry",
            index=models.Index(
                fields=["tenant", "action", "-created_at", "-id"], name="audit_tenant_action_recent"
            ),
        ),
    ]
