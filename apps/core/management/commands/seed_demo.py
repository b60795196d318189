"""`manage.py seed_demo`: a demo installation, idempotent (safe to run again).

Everything is created through the services, so the demo's audit log reads
like a real one. What exists already is left as it is: a second run never
duplicates rows nor undoes what someone changed in the demo.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User
from apps.groups.models import UserGroup
from apps.groups.services import user_group_create
from apps.mailsettings.models import Security, SmtpSettings
from apps.mailsettings.services import smtp_settings_update
from apps.tenancy.models import Membership, Organization, Project, Role, Scope, Tenant
from apps.tenancy.services import (
    membership_create,
    organization_create,
    project_create,
    tenant_create,
)

DEMO_PASSWORD = "postmaster-demo"
SYSTEM_ADMIN_EMAIL = "admin@postmaster.test"
TENANT_ADMIN_EMAIL = "alice@acme.test"
OTHER_TENANT_ADMIN_EMAIL = "grace@globex.test"

# tenant slug -> (name, admin, members, {organisation: [projects]}, groups, own SMTP From)
DEMO_TENANTS = {
    "acme": {
        "name": "Acme Corp",
        "admin": (TENANT_ADMIN_EMAIL, "Alice Admin"),
        "members": [("bob@acme.test", "Bob Builder"), ("carol@acme.test", "Carol Coder")],
        "organizations": {"Payments": ["Checkout", "Billing"], "Platform": ["Infrastructure"]},
        "groups": [
            # (name, project or None for tenant-wide, aliases, all members, members)
            ("Release managers", "Checkout", ["releases@acme.test"], True, ["bob@acme.test"]),
            ("On-call", None, ["oncall@acme.test"], False, []),
            ("Developers", None, [], True, ["bob@acme.test", "carol@acme.test"]),
        ],
        "own_smtp_from": None,
    },
    "globex": {
        "name": "Globex",
        "admin": (OTHER_TENANT_ADMIN_EMAIL, "Grace Hopper"),
        "members": [("hank@globex.test", "Hank Scorpio")],
        "organizations": {"Research": ["Data pipeline"]},
        "groups": [
            ("Data team", "Data pipeline", ["data@globex.test"], True, ["hank@globex.test"])
        ],
        "own_smtp_from": ("notify@globex.test", "Globex Notifications"),
    },
}


class Command(BaseCommand):
    help = (
        "Create the demo data (idempotent): a system administrator, two tenants and their people."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-logins", action="store_true", help="Only print the tenant admins' logins."
        )

    def handle(self, *args, print_logins=False, **options):
        if print_logins:
            self.stdout.write(
                f"{TENANT_ADMIN_EMAIL} (Acme Corp), {OTHER_TENANT_ADMIN_EMAIL} (Globex)"
            )
            return
        with transaction.atomic():
            seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))


def seed_demo() -> None:
    _user(SYSTEM_ADMIN_EMAIL, "Sam Sysadmin", system_admin=True)
    if not SmtpSettings.objects.filter(tenant=None).exists():
        smtp_settings_update(
            actor=None,
            smtp_settings=_catcher_settings(
                tenant=None, from_email="postmaster@postmaster.test", from_name="Postmaster"
            ),
        )
    for slug, spec in DEMO_TENANTS.items():
        _seed_tenant(slug, spec)


def _seed_tenant(slug: str, spec: dict) -> None:
    tenant = Tenant.objects.filter(slug=slug).first() or tenant_create(
        name=spec["name"], slug=slug, actor=None
    )
    people = {email: _user(email, name) for email, name in [spec["admin"], *spec["members"]]}
    for email, user in people.items():
        role = Role.TENANT_ADMIN if email == spec["admin"][0] else Role.MEMBER
        if not Membership.objects.filter(tenant=tenant, user=user).exists():
            membership_create(tenant=tenant, user=user, role=role, actor=None)

    projects = {}
    for org_name, project_names in spec["organizations"].items():
        organization = Organization.objects.filter(
            tenant=tenant, name=org_name
        ).first() or organization_create(tenant=tenant, name=org_name, actor=None)
        for project_name in project_names:
            projects[project_name] = Project.objects.filter(
                tenant=tenant, name=project_name
            ).first() or project_create(organization=organization, name=project_name, actor=None)

    for name, project_name, aliases, all_members, members in spec["groups"]:
        if UserGroup.objects.filter(tenant=tenant, name=name).exists():
            continue
        project = projects.get(project_name)
        user_group_create(
            tenant=tenant,
            name=name,
            scope=Scope.of_project(project) if project else Scope(),
            alias_addresses=aliases,
            notify_all_members=all_members,
            members=[people[email] for email in members],
            actor=None,
        )

    if spec["own_smtp_from"] and not SmtpSettings.objects.filter(tenant=tenant).exists():
        from_email, from_name = spec["own_smtp_from"]
        smtp_settings_update(
            actor=None,
            smtp_settings=_catcher_settings(
                tenant=tenant, from_email=from_email, from_name=from_name
            ),
        )


def _catcher_settings(*, tenant, from_email: str, from_name: str) -> SmtpSettings:
    """Settings that send to the local mail catcher, so the demo's mail can be read in /mail/."""
    return SmtpSettings(
        tenant=tenant,
        name="Local mail catcher",
        host=settings.MAILCATCHER_HOST,
        port=settings.MAILCATCHER_PORT,
        security=Security.NONE,
        from_email=from_email,
        from_name=from_name,
    )


def _user(email: str, full_name: str, *, system_admin: bool = False) -> User:
    user, created = User.objects.get_or_create(
        email=email,
        defaults={"full_name": full_name, "is_staff": system_admin, "is_superuser": system_admin},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user
