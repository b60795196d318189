import pytest

from apps.mailsettings.selectors import host_smtp_settings_forget
from tests.smtp_servers import write_ca_bundle

HOST_BACKEND = "apps.mailsettings.backends.HostSettingsBackend"


@pytest.fixture(autouse=True)
def _forget_cached_host_settings():
    # The cache outlives a test's database transaction; start and end clean.
    host_smtp_settings_forget()
    yield
    host_smtp_settings_forget()


@pytest.fixture
def trusted_ca(settings, tmp_path):
    """Trust the CA that signs the test servers' "trusted" certificates."""
    settings.SMTP_CA_BUNDLE = write_ca_bundle(tmp_path)
    return settings.SMTP_CA_BUNDLE


@pytest.fixture
def host_mailer(settings):
    """Send Django's mail for real, through the host settings (tests default to locmem)."""
    settings.MAILERS = {"default": {"BACKEND": HOST_BACKEND}}
