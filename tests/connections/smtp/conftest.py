import pytest

from tests.smtp_servers import write_ca_bundle


@pytest.fixture
def trusted_ca(settings, tmp_path):
    """Trust the CA that signs the test servers' "trusted" certificates."""
    settings.SMTP_CA_BUNDLE = write_ca_bundle(tmp_path)
    return settings.SMTP_CA_BUNDLE
