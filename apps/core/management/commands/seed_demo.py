"""`manage.py seed_demo`: a demo installation, idempotent (safe to run again)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.tenancy.models import Tenant

DEMO_PASSWORD = "postmaster-demo"
SYSTEM_ADMIN_EMAIL = "admin@postmaster.test"
TENANT_ADMIN_EMAIL = "alice@acme.test"


class Command(BaseCommand):
    help = "Create (or refresh) the demo data: a system administrator, a tenant and its people."

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-logins", action="store_true", help="Only print the tenant admin's login."
        )

    def handle(self, *args, print_logins=False, **options):
        if print_logins:
            self.stdout.write(TENANT_ADMIN_EMAIL)
            return
        with transaction.atomic():
            _user(SYSTEM_ADMIN_EMAIL, "Sam Sysadmin", system_admin=True)
            _user(TENANT_ADMIN_EMAIL, "Alice Admin")
            Tenant.objects.get_or_create(slug="acme", defaults={"name": "Acme Corp"})
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))


def _user(email: str, full_name: str, *, system_admin: bool = False) -> User:
    user, created = User.objects.get_or_create(
        email=email,
        defaults={"full_name": full_name, "is_staff": system_admin, "is_superuser": system_admin},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user
