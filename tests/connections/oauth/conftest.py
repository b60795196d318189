import pytest

from tests.connections.oauth.identity_provider import identity_provider
from tests.smtp_servers import write_ca_bundle

MICROSOFT_CLIENT_ID = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901"
DIRECTORY = "contoso.onmicrosoft.com"
GOOGLE_CLIENT_ID = "123456-abc.apps.googleusercontent.com"
MAILBOX = "alerts@contoso.example"


@pytest.fixture
def idp(settings, tmp_path):
    """The identity-provider stand-in, with settings pointing at it (and trusting its CA)."""
    with identity_provider(account=MAILBOX) as stand_in:
        settings.OAUTH_MICROSOFT_TOKEN_URL = stand_in.microsoft_token_url
        settings.OAUTH_GOOGLE_TOKEN_URL = stand_in.google_token_url
        settings.OAUTH_GOOGLE_AUTHORIZE_URL = stand_in.google_authorize_url
        ca_bundle = write_ca_bundle(tmp_path)
        settings.OAUTH_CA_BUNDLE = ca_bundle
        settings.SMTP_CA_BUNDLE = ca_bundle
        yield stand_in
