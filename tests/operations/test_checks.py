"""Production never runs with the demo's accounts or API token (apps/operations/checks.py)."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from apps.core.demo_markers import DEMO_API_TOKEN, SYSTEM_ADMIN_EMAIL
from apps.operations.checks import demo_data_check
from tests.factories import ProjectApiTokenFactory, SystemAdminFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings):
    settings.DEMO_ENABLED = False


def test_the_demo_administrator_is_an_error(production):
    SystemAdminFactory(email=SYSTEM_ADMIN_EMAIL)
    UserFactory(email="bob@acme.test")
    [error] = demo_data_check(databases=["default"])
    assert error.id == "operations.E001"
    assert "admin@postmaster.test" in error.msg
    assert "bob@acme.test" in error.msg
    assert "createsystemadmin" in error.hint


def test_the_demo_token_is_an_error(production, project):
    token = ProjectApiTokenFactory(project=project, raw=DEMO_API_TOKEN)
    [error] = demo_data_check(databases=["default"])
    assert error.id == "operations.E002"
    assert DEMO_API_TOKEN not in error.msg + error.hint

    # Revoked, it opens nothing.
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    assert demo_data_check(databases=["default"]) == []


def test_check_deploy_reports_the_demo_as_an_error(production, project):
    SystemAdminFactory(email=SYSTEM_ADMIN_EMAIL)
    ProjectApiTokenFactory(project=project, raw=DEMO_API_TOKEN)
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy", "--tag", "startup")
    assert "operations.E001" in str(raised.value)
    assert "operations.E002" in str(raised.value)


def test_real_accounts_and_tokens_pass(production, system_admin, project):
    ProjectApiTokenFactory(project=project)
    assert demo_data_check(databases=["default"]) == []


def test_development_allows_the_demo(settings):
    settings.DEMO_ENABLED = True
    call_command("seed_demo")
    assert demo_data_check(databases=["default"]) == []
