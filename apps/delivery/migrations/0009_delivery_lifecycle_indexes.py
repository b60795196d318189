"""Indexes for today's dashboard counts, the daily roll-up and the failure-alert check.

Built concurrently on PostgreSQL: deliveries and attempts take writes all the
time, and a plain CREATE INDEX would block them until it is built.
"""

from django.db import migrations, models

from apps.core.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("delivery", "0008_delivery_days"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False)),
                fields=["tenant", "finished_at"],
                name="delivery_finished",
            ),
        ),
        AddIndexConcurrently(
            model_name="deliveryattempt",
            index=models.Index(fields=["attempted_at"], name="delivery_attempt_time"),
        ),
    ]
