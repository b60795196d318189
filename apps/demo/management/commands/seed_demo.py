"""`manage.py seed_demo`: a demo installation, idempotent (safe to run again).

Everything is created through the services, so the demo's audit log reads
like a real one. What exists already is left as it is: a second run never
duplicates rows nor undoes what someone changed in the demo. What the demo
needs and someone renamed, deleted or revoked (a project, a pipeline, a
group, a rule, the API token) is made again, so `make run` always starts.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from apps.accounts.lockout import unlock_account
from apps.accounts.models import User
from apps.connections.models import Security, SmtpSettings
from apps.connections.services import smtp_settings_update, tenant_smtp_network_update
from apps.core.demo_markers import (
    DEMO_API_TOKEN,
    OTHER_TENANT_ADMIN_EMAIL,
    SYSTEM_ADMIN_EMAIL,
    TENANT_ADMIN_EMAIL,
)
from apps.demo.providers import seed_provider_demo
from apps.groups.models import UserGroup
from apps.groups.services import user_group_create
from apps.pipelines.models import (
    EventType,
    NotificationRule,
    Pipeline,
    ProjectApiToken,
    token_hash,
)
from apps.pipelines.services import (
    notification_rule_create,
    pipeline_create,
    project_api_token_create,
)
from apps.tenancy.models import Membership, Organization, Project, Role, Scope, Tenant
from apps.tenancy.services import (
    membership_create,
    organization_create,
    project_create,
    tenant_create,
)

DEMO_PASSWORD = "postmaster-demo"
FAILURES = [EventType.PIPELINE_FAILED, EventType.STAGE_FAILED, EventType.PIPELINE_ABORTED]

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
        # project -> pipelines (slug, name), rules (name, pipeline slug or None, events,
        # addresses, groups), and the project that gets the demo API token.
        "pipelines": {
            "Checkout": [("deploy-prod", "Deploy to production"), ("nightly", "Nightly tests")]
        },
        "rules": [
            (
                "Production failures",
                "Checkout",
                "deploy-prod",
                FAILURES,
                [],
                ["Release managers", "On-call"],
            ),
            (
                "Deploys done",
                "Checkout",
                "deploy-prod",
                [EventType.PIPELINE_SUCCEEDED],
                ["team-checkout@acme.test"],
                [],
            ),
            (
                "Approvals",
                "Checkout",
                None,
                [EventType.APPROVAL_REQUESTED],
                [],
                ["Release managers"],
            ),
        ],
        "api_token_project": "Checkout",
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
        "pipelines": {"Data pipeline": [("etl-nightly", "Nightly ETL")]},
        "rules": [("ETL failures", "Data pipeline", "etl-nightly", FAILURES, [], ["Data team"])],
        "api_token_project": None,
        "own_smtp_from": ("notify@globex.test", "Globex Notifications"),
    },
    # On an email-service provider (Postmark, through the local stand-in): apps/demo/providers.py.
    "initech": {
        "name": "Initech",
        "admin": ("ivy@initech.test", "Ivy Initech"),
        "members": [("peter@initech.test", "Peter Gibbons")],
        "organizations": {"Software": ["TPS reports"]},
        "groups": [("Report team", "TPS reports", ["tps@initech.test"], True, [])],
        "pipelines": {"TPS reports": [("tps-build", "TPS build")]},
        "rules": [("Build failures", "TPS reports", "tps-build", FAILURES, [], ["Report team"])],
        "api_token_project": None,
        "own_smtp_from": None,
    },
}


class Command(BaseCommand):
    help = (
        "Create the demo data (idempotent): a system administrator, two tenants and their people."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-logins",
            action="store_true",
            help="Only print the demo's logins and API token (for `make run`).",
        )

    def handle(self, *args, print_logins=False, **options):
        if print_logins:
            self.stdout.write(
                f"    System administrator: {SYSTEM_ADMIN_EMAIL}\n"
                f"    Tenant admins:        {TENANT_ADMIN_EMAIL} (Acme Corp), "
                f"{OTHER_TENANT_ADMIN_EMAIL} (Globex), ivy@initech.test (Initech, on Postmark)\n"
                f"    Events API token:     {DEMO_API_TOKEN} (project Checkout of Acme Corp)"
            )
            return
        if not settings.DEMO_ENABLED:
            # Known passwords and a published API token: never outside development.
            raise CommandError(
                "The demo data is for development only: these settings do not allow it "
                "(DEMO_ENABLED is off, as in production), so nothing was created. Create the "
                "first system administrator with `manage.py createsystemadmin` instead."
            )
        with transaction.atomic():
            seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data is ready."))


def seed_demo() -> None:
    _user(SYSTEM_ADMIN_EMAIL, "Sam Sysadmin", system_admin=True)
    if not SmtpSettings.objects.filter(tenant=None, role="primary").exists():
        smtp_settings_update(
            actor=None,
            smtp_settings=_catcher_settings(
                tenant=None, from_email="postmaster@postmaster.test", from_name="Postmaster"
            ),
        )
    for slug, spec in DEMO_TENANTS.items():
        _seed_tenant(slug, spec)
    seed_provider_demo(Tenant.objects.get(slug="initech"))


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
        organization = _named(Organization, tenant, org_name) or organization_create(
            tenant=tenant,
            name=org_name,
            slug=_free_slug(Organization, tenant, org_name),
            actor=None,
        )
        for project_name in project_names:
            projects[project_name] = _named(Project, tenant, project_name) or project_create(
                organization=organization,
                name=project_name,
                slug=_free_slug(Project, tenant, project_name),
                actor=None,
            )

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

    _seed_pipelines(tenant, spec, projects)

    if spec["own_smtp_from"]:
        # The catcher is on 127.0.0.1: a system administrator's exception to the
        # network policy (also for a demo seeded before there was one).
        tenant_smtp_network_update(
            tenant=tenant, private_allowed=True, extra_ports=tenant.smtp_extra_ports, actor=None
        )
    own_smtp = SmtpSettings.objects.filter(tenant=tenant, role="primary")
    if spec["own_smtp_from"] and not own_smtp.exists():
        from_email, from_name = spec["own_smtp_from"]
        smtp_settings_update(
            actor=None,
            smtp_settings=_catcher_settings(
                tenant=tenant, from_email=from_email, from_name=from_name
            ),
        )


def _seed_pipelines(tenant: Tenant, spec: dict, projects: dict) -> None:
    pipelines = {}
    for project_name, pipeline_specs in spec["pipelines"].items():
        project = projects[project_name]
        for slug, name in pipeline_specs:
            existing = Pipeline.objects.filter(tenant=tenant, project=project)
            if not (pipeline := existing.filter(slug=slug).first()):
                # The events API finds a pipeline by its slug; its name may be taken by
                # the pipeline someone gave another slug.
                if existing.filter(name=name).exists():
                    name = f"{name} ({slug})"
                pipeline = pipeline_create(project=project, name=name, slug=slug, actor=None)
            pipelines[slug] = pipeline

    for name, project_name, pipeline_slug, events, addresses, group_names in spec["rules"]:
        if NotificationRule.objects.filter(tenant=tenant, name=name).exists():
            continue
        notification_rule_create(
            project=projects[project_name],
            pipeline=pipelines.get(pipeline_slug),
            name=name,
            event_types=events,
            addresses=addresses,
            groups=UserGroup.objects.filter(tenant=tenant, name__in=group_names),
            actor=None,
        )

    project = projects.get(spec["api_token_project"])
    if project is None:
        return
    token = ProjectApiToken.objects.filter(hash=token_hash(DEMO_API_TOKEN)).first()
    if token and (not token.is_active or token.project_id != project.pk):
        token.delete()  # Revoked, or left on a project the demo no longer uses: made again.
        token = None
    if token is None:
        project_api_token_create(project=project, name="Demo CI", actor=None, raw=DEMO_API_TOKEN)


def _named(model, tenant: Tenant, name: str):
    """The demo's organisation or project: by its name, or by its slug if only renamed."""
    found = model.objects.filter(tenant=tenant).filter(Q(name=name) | Q(slug=slugify(name)))
    return found.filter(name=name).first() or found.first()


def _free_slug(model, tenant: Tenant, name: str) -> str:
    """The name's slug, or one not taken yet (someone gave ours to another row)."""
    base = slug = slugify(name)[:40]
    n = 1
    while model.objects.filter(tenant=tenant, slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


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
    # Whoever mistyped the demo password into a sign-in lockout gets the account back.
    unlock_account(email=email)
    return user
