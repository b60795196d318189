"""Who owns what, and who may do what in it.

Tenant > Organization > Project is the hierarchy. A Membership puts a user
in a tenant with a role; organisation and project admins hold their role at
a scope (the organisation or project). Scoped things (memberships here, user
groups in `apps.groups`) share `ScopedModel`: a tenant, and optionally an
organisation, or an organisation *and* one of its projects.

System administrators are not tenant members: they are host users
(`User.is_system_admin`) who manage tenants in the Django admin. To work in
a tenant's portal they need a membership like anyone else.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.accounts.models import User
from apps.connections.netguard import validate_ports
from apps.core.models import TenantQuerySet, TimeStampedModel


class Tenant(TimeStampedModel):
    """An organisation's own space in Postmaster, with its own settings and people."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    is_active = models.BooleanField("active", default=True)
    # Exceptions to the network policy for the tenant's own SMTP settings
    # (apps.connections.netguard); only system administrators set them.
    smtp_private_network_allowed = models.BooleanField(
        "May use private network addresses for SMTP",
        default=False,
        help_text=(
            "Lets this tenant's own SMTP settings point at loopback, private or other "
            "non-public addresses, on any port (e.g. a relay or mail catcher inside your "
            "network). Off: public addresses only."
        ),
    )
    smtp_extra_ports = models.CharField(
        "Extra allowed SMTP ports",
        max_length=200,
        blank=True,
        validators=[validate_ports],
        help_text=(
            "Ports besides 25, 465, 587 and 2525 that this tenant's SMTP settings may use "
            "on public addresses, separated by commas, e.g. 2526, 8025."
        ),
    )

    # Null: the host's default (settings.DELIVERY_RETENTION_DAYS); only system
    # administrators set it (apps.tenancy.services.tenant_retention_update).
    delivery_retention_days = models.PositiveIntegerField(
        "Keep deliveries for (days)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=(
            "Deliveries, their attempts and events older than this are deleted (never one "
            "still being sent); the dashboard's daily counts are kept. Blank: the host's "
            "default."
        ),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Organization(TimeStampedModel):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="organizations")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="tenancy_org_unique_slug"),
            models.UniqueConstraint(fields=["tenant", "name"], name="tenancy_org_unique_name"),
        ]

    def __str__(self):
        return self.name


class Project(TimeStampedModel):
    # The tenant is the organisation's; kept on the row so every read filters on it.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="projects")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="tenancy_project_unique_slug"),
            models.UniqueConstraint(
                fields=["tenant", "organization", "name"], name="tenancy_project_unique_name"
            ),
        ]

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Scope:
    """Where a role or a group applies: the whole tenant, an organisation, or a project."""

    organization: Organization | None = None
    project: Project | None = None

    @classmethod
    def of_project(cls, project: Project) -> "Scope":
        return cls(organization=project.organization, project=project)

    @property
    def kind(self) -> str:
        if self.project is not None:
            return "project"
        return "organization" if self.organization is not None else "tenant"

    def belongs_to(self, tenant: Tenant) -> bool:
        """Whether this scope is inside the tenant (a project within its own organisation)."""
        if self.project is not None and (
            self.organization is None or self.project.organization_id != self.organization.pk
        ):
            return False
        return all(obj.tenant_id == tenant.pk for obj in (self.organization, self.project) if obj)

    @property
    def label(self) -> str:
        if self.project is not None:
            return f"Project {self.organization} / {self.project}"
        if self.organization is not None:
            return f"Organisation {self.organization}"
        return "Whole tenant"


# The whole tenant: the scope of tenant admins, members and tenant-wide groups.
TENANT_SCOPE = Scope()


def scope_constraints(prefix: str, *unique: str) -> list[models.BaseConstraint]:
    """A project scope also names its organisation; `unique` fields do not repeat per scope.

    Partial unique constraints (one per scope level) rather than
    `nulls_distinct=False`, because SQLite has no NULLS NOT DISTINCT and
    these hold on both databases.
    """
    return [
        models.CheckConstraint(
            condition=Q(project__isnull=True) | Q(organization__isnull=False),
            name=f"{prefix}_project_names_its_organization",
        ),
        models.UniqueConstraint(
            fields=["tenant", *unique],
            condition=Q(organization__isnull=True),
            name=f"{prefix}_unique_per_tenant",
        ),
        models.UniqueConstraint(
            fields=["tenant", "organization", *unique],
            condition=Q(organization__isnull=False, project__isnull=True),
            name=f"{prefix}_unique_per_organization",
        ),
        models.UniqueConstraint(
            fields=["tenant", "project", *unique],
            condition=Q(project__isnull=False),
            name=f"{prefix}_unique_per_project",
        ),
    ]


class ScopedModel(TimeStampedModel):
    """A tenant-owned row that applies at a scope (see `Scope`)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="%(class)ss")
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="%(class)ss"
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="%(class)ss"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def scope(self) -> Scope:
        return Scope(organization=self.organization, project=self.project)


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", "Tenant admin"
    ORG_ADMIN = "org_admin", "Organisation admin"
    PROJECT_ADMIN = "project_admin", "Project admin"
    MEMBER = "member", "Member"


# The scope each role is held at.
ROLE_SCOPE = {
    Role.TENANT_ADMIN: "tenant",
    Role.MEMBER: "tenant",
    Role.ORG_ADMIN: "organization",
    Role.PROJECT_ADMIN: "project",
}
# When a user holds several roles in a tenant, the highest one represents them.
ROLE_RANK = {Role.MEMBER: 0, Role.PROJECT_ADMIN: 1, Role.ORG_ADMIN: 2, Role.TENANT_ADMIN: 3}


class Membership(ScopedModel):
    """A user's role in a tenant, at a scope.

    Tenant admins and members hold their role tenant-wide; organisation and
    project admins at their organisation or project. A user has at most one
    row per scope and may hold rows in several tenants.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ordering = ["user__email", "id"]
        constraints = [
            *scope_constraints("tenancy_membership", "user"),
            models.CheckConstraint(
                condition=(
                    Q(role__in=[Role.TENANT_ADMIN, Role.MEMBER], organization__isnull=True)
                    | Q(role=Role.ORG_ADMIN, organization__isnull=False, project__isnull=True)
                    | Q(role=Role.PROJECT_ADMIN, project__isnull=False)
                ),
                name="tenancy_membership_role_matches_scope",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "user"], name="tenancy_membership_user"),
            models.Index(fields=["tenant", "role"], name="tenancy_membership_role"),
        ]

    def __str__(self):
        return f"{self.user} · {self.get_role_display()} · {self.scope.label}"

    @property
    def is_tenant_admin(self) -> bool:
        return self.role == Role.TENANT_ADMIN

    @property
    def is_pending(self) -> bool:
        """Invited but not yet accepted: the account has no password yet."""
        return not self.user.is_active and not self.user.has_usable_password()


class SystemAdministrator(User):
    """The host's system administrators, as the admin lists and manages them."""

    class Meta:
        proxy = True
        verbose_name = "system administrator"
        verbose_name_plural = "system administrators"
