"""Re-encrypt every stored secret under the newest key in FIELD_ENCRYPTION_KEYS.

Put the new key first, keep the old ones after it, run this, then the old
keys can be removed.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.core.fields import EncryptedTextField

BATCH_SIZE = 500


def encrypted_fields():
    """(model, [field names]) for every model with an encrypted field."""
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            yield model, names


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest encryption key."

    def handle(self, *args, **options):
        total = 0
        for model, names in encrypted_fields():
            with transaction.atomic():
                # Loading decrypts with any known key; saving encrypts with the newest.
                rows = list(model._base_manager.select_for_update().only("pk", *names))
                model._base_manager.bulk_update(rows, names, batch_size=BATCH_SIZE)
            total += len(rows)
            self.stdout.write(f"{model._meta.label}: {len(rows)} rows re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} rows re-encrypted."))
