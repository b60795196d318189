# What the linter must refuse: a plain CREATE INDEX locks the table against writes.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("mailcatcher", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="caughtmessage",
            index=models.Index(fields=["size"], name="caught_size_blocking"),
        ),
    ]
