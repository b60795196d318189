import factory
from factory.django import DjangoModelFactory

from apps.accounts.models import User
from apps.groups.models import UserGroup
from apps.pipelines.models import (
    EventType,
    NotificationRule,
    NotificationRuleGroup,
    Pipeline,
    ProjectApiToken,
    token_hash,
)
from apps.tenancy.models import Membership, Organization, Project, Role, Tenant

TEST_PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class SystemAdminFactory(UserFactory):
    is_staff = True
    is_superuser = True


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    tenant = factory.SelfAttribute("organization.tenant")
    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(DjangoModelFactory):
    """A tenant-wide member by default; pass role= and organization=/project= for scoped admins."""

    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class UserGroupFactory(DjangoModelFactory):
    """A tenant-wide group; pass organization= (and project=) for a narrower scope."""

    class Meta:
        model = UserGroup

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Group {n}")
    alias_addresses = factory.LazyAttribute(
        lambda g: [f"{g.name.lower().replace(' ', '-')}@example.com"]
    )


class PipelineFactory(DjangoModelFactory):
    class Meta:
        model = Pipeline

    project = factory.SubFactory(ProjectFactory)
    tenant = factory.SelfAttribute("project.tenant")
    name = factory.Sequence(lambda n: f"Pipeline {n}")
    slug = factory.Sequence(lambda n: f"pipeline-{n}")


class NotificationRuleFactory(DjangoModelFactory):
    """A rule on a pipeline; pass pipeline=None and project= for one on a whole project.

    `groups=[...]` links user groups.
    """

    class Meta:
        model = NotificationRule
        skip_postgeneration_save = True

    pipeline = factory.SubFactory(PipelineFactory)
    project = factory.LazyAttribute(lambda r: r.pipeline.project)
    tenant = factory.SelfAttribute("project.tenant")
    name = factory.Sequence(lambda n: f"Rule {n}")
    event_types = factory.LazyFunction(lambda: [EventType.PIPELINE_FAILED.value])
    addresses = factory.LazyFunction(lambda: ["oncall@example.com"])

    @factory.post_generation
    def groups(obj, create, extracted, **kwargs):  # noqa: N805
        if create and extracted:
            NotificationRuleGroup.objects.bulk_create(
                NotificationRuleGroup(tenant=obj.tenant, rule=obj, group=g) for g in extracted
            )


class ProjectApiTokenFactory(DjangoModelFactory):
    """A token whose raw value is `raw` (pass raw="pm_..." to know it)."""

    class Meta:
        model = ProjectApiToken
        exclude = ["raw"]

    project = factory.SubFactory(ProjectFactory)
    tenant = factory.SelfAttribute("project.tenant")
    name = factory.Sequence(lambda n: f"Token {n}")
    raw = factory.Sequence(lambda n: f"pm_test-token-{n:032d}")
    prefix = factory.LazyAttribute(lambda t: t.raw[:10])
    hash = factory.LazyAttribute(lambda t: token_hash(t.raw))
