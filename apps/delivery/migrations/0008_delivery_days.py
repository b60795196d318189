import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("delivery", "0007_delivery_claim_count"),
        ("tenancy", "0004_tenant_delivery_retention_days"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeliveryDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("sent", models.PositiveIntegerField(default=0)),
                ("failed", models.PositiveIntegerField(default=0)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.tenant",
                    ),
                ),
            ],
            options={
                "ordering": ["tenant", "day"],
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "day"), name="delivery_day_unique")
                ],
            },
        ),
        migrations.CreateModel(
            name="DeliveryRollup",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(
                        default=1, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("rolled_through", models.DateField(blank=True, null=True)),
                ("rolled_before", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="delivery_rollup_one_row"
                    )
                ],
            },
        ),
    ]
