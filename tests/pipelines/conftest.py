import pytest

from tests.factories import PipelineFactory


@pytest.fixture
def pipeline(project):
    return PipelineFactory(project=project, name="Deploy prod", slug="deploy-prod")


@pytest.fixture
def admin(client, tenant_admin):
    """A client signed in as a tenant admin of `tenant`."""
    client.force_login(tenant_admin)
    return client
