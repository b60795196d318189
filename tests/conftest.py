"""Shared fixtures: people, and the gates for service and browser tests.

Tests marked `services` need the PostgreSQL and Redis named by DATABASE_URL
and CELERY_BROKER_URL; tests marked `browser` need Debian's Chromium. On a
machine without them they are skipped with the reason; where
POSTMASTER_REQUIRE_SERVICES / POSTMASTER_REQUIRE_BROWSER is set (CI) a
missing one fails the run instead, so they can never be skipped there.
"""

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.cache import cache

from apps.operations.selectors import maintenance_cache_off
from apps.tenancy.models import Role
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    SystemAdminFactory,
    TenantFactory,
    UserFactory,
)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _services_missing() -> str | None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "DATABASE_URL does not name a PostgreSQL server"
    broker = settings.CELERY_BROKER_URL
    if not broker:
        return "CELERY_BROKER_URL is not set"
    if not _reachable(broker, 6379):
        return f"the broker at {broker} is not reachable"
    return None


def _browser_missing() -> str | None:
    if shutil.which("chromium") is None:
        return "Chromium is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed"
    return None


def pytest_collection_modifyitems(config, items):
    gates = [
        ("services", _services_missing, "POSTMASTER_REQUIRE_SERVICES"),
        ("browser", _browser_missing, "POSTMASTER_REQUIRE_BROWSER"),
    ]
    for marker, missing, required_by in gates:
        marked = [item for item in items if marker in item.keywords]
        if not marked:
            continue
        reason = missing()
        if reason is None:
            continue
        if os.environ.get(required_by):
            raise pytest.UsageError(f"{required_by} is set but {reason}.")
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=f"needs {marker}: {reason}"))


@pytest.fixture(autouse=True)
def _clean_cache():
    """The cache (Redis in CI) outlives a test's rolled-back transaction: start each test clean."""
    cache.clear()
    # As on a running site, the maintenance flag (off in a new database) is cached: pages'
    # query counts are those of every request but the first.
    maintenance_cache_off()
    yield
    cache.clear()


@pytest.fixture
def host_mailer(settings):
    """Send Django's mail for real, through the host settings (tests default to locmem)."""
    settings.MAILERS = {"default": {"BACKEND": "apps.connections.backends.HostSettingsBackend"}}


@pytest.fixture
def system_admin(db):
    return SystemAdminFactory(email="sysadmin@example.com")


@pytest.fixture
def member(db):
    return UserFactory(email="member@example.com")


@pytest.fixture
def tenant(db):
    return TenantFactory(name="Acme", slug="acme")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(name="Globex", slug="globex")


@pytest.fixture
def organization(tenant):
    return OrganizationFactory(tenant=tenant, name="Sales", slug="sales")


@pytest.fixture
def project(organization):
    return ProjectFactory(organization=organization, name="Website", slug="website")


def _person(email, tenant, role=Role.MEMBER, **scope):
    user = UserFactory(email=email)
    MembershipFactory(tenant=tenant, user=user, role=role, **scope)
    return user


@pytest.fixture
def tenant_admin(tenant):
    return _person("admin@acme.example", tenant, Role.TENANT_ADMIN)


@pytest.fixture
def tenant_member(tenant):
    """A plain member of `tenant` (the `member` fixture is a user without any tenant)."""
    return _person("member@acme.example", tenant)


@pytest.fixture
def org_admin(tenant, organization):
    return _person("org-admin@acme.example", tenant, Role.ORG_ADMIN, organization=organization)


@pytest.fixture
def project_admin(tenant, project):
    return _person(
        "project-admin@acme.example",
        tenant,
        Role.PROJECT_ADMIN,
        organization=project.organization,
        project=project,
    )


@pytest.fixture
def other_tenant_admin(other_tenant):
    return _person("admin@globex.example", other_tenant, Role.TENANT_ADMIN)


@pytest.fixture
def admin_client(client, system_admin):
    client.force_login(system_admin)
    return client
