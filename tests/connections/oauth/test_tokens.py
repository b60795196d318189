"""Access tokens from the identity-provider stand-in: fetched, cached, refreshed, explained."""

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.connections.oauth_tokens import OAuthError, access_token_for
from tests.connections.oauth.conftest import (
    DIRECTORY,
    GOOGLE_CLIENT_ID,
    MAILBOX,
    MICROSOFT_CLIENT_ID,
)
from tests.connections.oauth.factories import OAuthGrantFactory
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.smtp_servers import closed_port

pytestmark = pytest.mark.django_db

SECRET = "m365-secret-Value~abc"


@pytest.fixture
def microsoft(idp, tenant):
    idp.register(
        client_id=MICROSOFT_CLIENT_ID,
        client_secret=SECRET,
        directory=DIRECTORY,
        mailboxes={MAILBOX},
    )
    smtp = SmtpSettingsFactory(tenant=tenant, username=MAILBOX)
    return OAuthGrantFactory(smtp_settings=smtp, secret=SECRET)


@pytest.fixture
def google(idp, other_tenant):
    idp.register(client_id=GOOGLE_CLIENT_ID, client_secret=SECRET)
    smtp = SmtpSettingsFactory(tenant=other_tenant, username=MAILBOX)
    refresh = idp.grant_refresh_token(GOOGLE_CLIENT_ID)
    return OAuthGrantFactory(smtp_settings=smtp, google=True, secret=SECRET, refresh=refresh)


def _stored_column(grant, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM connections_oauthgrant WHERE id = %s", [grant.pk])
        return cursor.fetchone()[0]


def test_microsoft_client_credentials_token_is_fetched_once_and_cached_encrypted(idp, microsoft):
    token = access_token_for(microsoft.smtp_settings)

    assert idp.accepts(token, MAILBOX)
    assert idp.token_requests == ["client_credentials"]
    form = idp.token_forms[0]
    assert form["client_id"] == MICROSOFT_CLIENT_ID
    assert form["client_secret"] == SECRET
    assert form["scope"] == "https://outlook.office365.com/.default"
    # Cached in the database, encrypted: the column does not hold the token.
    stored = _stored_column(microsoft, "access_token")
    assert stored
    assert token not in stored
    assert SECRET not in _stored_column(microsoft, "client_secret")

    assert access_token_for(microsoft.smtp_settings) == token
    assert idp.token_requests == ["client_credentials"]


def test_a_token_near_its_expiry_is_renewed(idp, microsoft):
    first = access_token_for(microsoft.smtp_settings)
    # Time passes: the provider's token expired, and the cache says so too.
    idp.expire_tokens()
    microsoft.refresh_from_db()
    microsoft.access_token_expires_at = timezone.now() + timedelta(seconds=60)
    microsoft.save(update_fields=["access_token_expires_at"])

    second = access_token_for(microsoft.smtp_settings)

    assert second != first
    assert idp.accepts(second, MAILBOX)
    assert not idp.accepts(first, MAILBOX)
    assert idp.token_requests == ["client_credentials", "client_credentials"]


def test_a_token_shorter_lived_than_the_margin_is_not_reused(idp, microsoft, settings):
    idp.expires_in = settings.OAUTH_TOKEN_REFRESH_MARGIN - 1
    access_token_for(microsoft.smtp_settings)
    access_token_for(microsoft.smtp_settings)
    assert len(idp.token_requests) == 2


def test_fresh_skips_the_cache(idp, microsoft):
    first = access_token_for(microsoft.smtp_settings)
    assert access_token_for(microsoft.smtp_settings, fresh=True) != first
    assert len(idp.token_requests) == 2


def test_google_refresh_token_gives_an_access_token_for_the_account(idp, google):
    token = access_token_for(google.smtp_settings)
    assert idp.accepts(token, MAILBOX)
    assert idp.token_requests == ["refresh_token"]
    assert access_token_for(google.smtp_settings) == token
    assert idp.token_requests == ["refresh_token"]


def test_a_revoked_google_authorization_says_to_connect_again(idp, google):
    access_token_for(google.smtp_settings)
    idp.revoke_all()
    google.access_token_expires_at = timezone.now()
    google.save(update_fields=["access_token_expires_at"])

    with pytest.raises(OAuthError) as raised:
        access_token_for(google.smtp_settings)

    error = raised.value
    assert error.reason == "invalid_grant"
    assert not error.transient
    assert error.message.startswith("Google no longer accepts the saved authorization")
    assert "Connect Gmail again on the Email settings page" in error.hint


def test_a_wrong_microsoft_secret_says_which_value_to_enter(idp, microsoft):
    microsoft.client_secret = type(microsoft.client_secret)("the-secret-id-not-its-value")
    microsoft.save()
    with pytest.raises(OAuthError) as raised:
        access_token_for(microsoft.smtp_settings)
    assert raised.value.reason == "invalid_client"
    assert raised.value.message == "Microsoft refused the client secret."
    assert "Value (not its Secret ID)" in raised.value.hint
    microsoft.refresh_from_db()
    assert not microsoft.access_token


def test_an_unknown_directory_is_named(idp, microsoft):
    microsoft.directory_id = "fabrikam.onmicrosoft.com"
    microsoft.save()
    with pytest.raises(OAuthError, match=r"does not know the directory \(tenant\) ID fabrikam"):
        access_token_for(microsoft.smtp_settings)


def test_a_wrong_google_secret(idp, google):
    google.client_secret = type(google.client_secret)("wrong")
    google.save()
    with pytest.raises(OAuthError) as raised:
        access_token_for(google.smtp_settings)
    assert raised.value.reason == "invalid_client"
    assert raised.value.message == "Google refused the client ID or client secret."


def test_an_unreachable_token_endpoint_is_transient(microsoft, settings):
    settings.OAUTH_MICROSOFT_TOKEN_URL = f"https://127.0.0.1:{closed_port()}/{{tenant}}/token"
    with pytest.raises(OAuthError) as raised:
        access_token_for(microsoft.smtp_settings)
    assert raised.value.reason == "unreachable"
    assert raised.value.transient
    assert raised.value.message == "Microsoft's sign-in service (127.0.0.1) could not be reached."


def test_a_provider_error_page_is_transient(idp, microsoft):
    idp.unavailable = True
    with pytest.raises(OAuthError, match=r"answered with an error \(HTTP 503\)") as raised:
        access_token_for(microsoft.smtp_settings)
    assert raised.value.transient


def test_an_untrusted_certificate_is_refused(idp, microsoft, settings):
    settings.OAUTH_CA_BUNDLE = ""  # The stand-in's CA is not a public one.
    with pytest.raises(OAuthError, match="is not trusted"):
        access_token_for(microsoft.smtp_settings)
    assert idp.token_requests == []


def test_google_before_the_consent_page_says_to_connect(idp, tenant):
    smtp = SmtpSettingsFactory(tenant=tenant, username=MAILBOX)
    grant = OAuthGrantFactory(smtp_settings=smtp, google=True)
    with pytest.raises(OAuthError, match="Gmail is not connected yet") as raised:
        access_token_for(smtp)
    assert raised.value.reason == "not_connected"
    assert grant.pk
    assert idp.token_requests == []


def test_settings_without_a_grant_say_so(tenant):
    with pytest.raises(OAuthError, match="do not use OAuth2 sign-in"):
        access_token_for(SmtpSettingsFactory(tenant=tenant))


def test_host_grant_hint_names_the_host_page(idp):
    idp.register(client_id=GOOGLE_CLIENT_ID, client_secret=SECRET)
    smtp = SmtpSettingsFactory(username=MAILBOX)
    OAuthGrantFactory(smtp_settings=smtp, google=True, secret=SECRET, refresh="1//revoked")
    with pytest.raises(OAuthError) as raised:
        access_token_for(smtp)
    assert "host administration's OAuth2 sign-in page" in raised.value.hint


def test_no_secret_or_token_is_logged(idp, microsoft, google, caplog):
    caplog.set_level(logging.DEBUG)
    tokens = [access_token_for(microsoft.smtp_settings), access_token_for(google.smtp_settings)]
    idp.revoke_all()
    with pytest.raises(OAuthError):
        access_token_for(google.smtp_settings, fresh=True)
    google.refresh_from_db()
    secrets = [SECRET, google.refresh_token.reveal(), *tokens]
    assert caplog.records  # urllib3 and others did log at DEBUG
    for secret in secrets:
        assert secret not in caplog.text
