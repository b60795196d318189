"""The OAuth2 sign-in pages: a tenant admin's and the host's, and Google's consent flow."""

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.connections.models import OAuthGrant, OAuthProvider
from apps.connections.oauth_views import FLOW_SESSION_KEY
from tests.connections.oauth.conftest import (
    DIRECTORY,
    GOOGLE_CLIENT_ID,
    MAILBOX,
    MICROSOFT_CLIENT_ID,
)
from tests.connections.oauth.factories import OAuthGrantFactory
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = pytest.mark.django_db

SECRET = "Kx8Q~client-secret-VALUE"
GOOGLE_SECRET = "GOCSPX-google-client-secret"


def _setup_url(tenant):
    return reverse("mailsettings_oauth:setup", args=[tenant.slug])


def _test_url(tenant):
    return reverse("mailsettings_oauth:test", args=[tenant.slug])


def _microsoft(**overrides):
    return {
        "provider": OAuthProvider.MICROSOFT,
        "directory_id": DIRECTORY,
        "client_id": MICROSOFT_CLIENT_ID,
        "client_secret": SECRET,
        **overrides,
    }


def _google(**overrides):
    return {
        "provider": OAuthProvider.GOOGLE,
        "directory_id": "",
        "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_SECRET,
        **overrides,
    }


@pytest.fixture
def own_smtp(tenant):
    return SmtpSettingsFactory(
        tenant=tenant, host="smtp.gmail.com", username=MAILBOX, security="starttls"
    )


@pytest.fixture
def admin(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def test_without_own_smtp_settings_the_page_says_to_save_them_first(admin, tenant):
    response = admin.get(_setup_url(tenant))
    assert response.status_code == 200
    assert "Save your own SMTP settings first" in response.text
    assert reverse("tenancy:mailsettings:edit", args=[tenant.slug]) in response.text
    assert admin.post(_setup_url(tenant), _microsoft()).status_code == 200
    assert not OAuthGrant.objects.exists()


def test_microsoft_setup_is_saved_audited_and_the_secret_never_shown(admin, tenant, own_smtp):
    response = admin.post(_setup_url(tenant), _microsoft(), follow=True)

    grant = OAuthGrant.objects.get()
    assert (grant.smtp_settings, grant.tenant) == (own_smtp, tenant)
    assert grant.client_secret.reveal() == SECRET
    entry = AuditEntry.objects.get(action="oauth_grant.create")
    assert entry.tenant == tenant
    assert entry.changes["client_secret"] == "changed"
    assert entry.changes["client_id"] == [None, MICROSOFT_CLIENT_ID]
    assert SECRET not in str(entry.changes)
    assert "Click “Test sign-in” to check them." in response.text
    assert "Stored, encrypted (never shown)" in response.text
    assert SECRET not in response.text
    assert 'name="client_secret"' in response.text
    assert "Leave blank to keep it" in response.text


def test_a_blank_secret_keeps_the_stored_one(admin, tenant, own_smtp):
    OAuthGrantFactory(smtp_settings=own_smtp, secret=SECRET)
    admin.post(_setup_url(tenant), _microsoft(client_secret="", directory_id="fabrikam.com"))
    grant = OAuthGrant.objects.get()
    assert grant.directory_id == "fabrikam.com"
    assert grant.client_secret.reveal() == SECRET


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (_microsoft(directory_id=""), "directory_id", "Enter the Directory (tenant) ID"),
        (_microsoft(directory_id="not a tenant"), "directory_id", "a GUID like"),
        (_microsoft(client_id="my-app"), "client_id", "Enter the Application (client) ID"),
        (_google(client_id="123456"), "client_id", "ends in .apps.googleusercontent.com"),
        (_microsoft(client_secret=""), "client_secret", "Enter the client secret."),
    ],
)
def test_each_field_says_what_is_wrong(admin, tenant, own_smtp, data, field, words):
    response = admin.post(_setup_url(tenant), data)
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert not OAuthGrant.objects.exists()


def test_switching_provider_needs_the_new_secret(admin, tenant, own_smtp):
    OAuthGrantFactory(smtp_settings=own_smtp, secret=SECRET)
    response = admin.post(_setup_url(tenant), _google(client_secret=""))
    assert response.context["form"].errors["client_secret"] == ["Enter the client secret."]
    assert OAuthGrant.objects.get().provider == OAuthProvider.MICROSOFT


def test_test_sign_in_reports_in_plain_words(admin, tenant, own_smtp, idp):
    idp.register(client_id=MICROSOFT_CLIENT_ID, client_secret=SECRET, directory=DIRECTORY)
    OAuthGrantFactory(smtp_settings=own_smtp, secret=SECRET)

    response = admin.post(_test_url(tenant))
    assert response.status_code == 200
    assert "Microsoft issued an access token: the OAuth2 sign-in works." in response.text
    token = OAuthGrant.objects.get().access_token.reveal()
    assert token not in response.text

    idp.apps[MICROSOFT_CLIENT_ID].client_secret = "rotated"
    response = admin.post(_test_url(tenant))
    assert "Microsoft refused the client secret." in response.text
    assert "Value (not its Secret ID)" in response.text


def test_disconnect_removes_the_grant_and_is_audited(admin, tenant, own_smtp):
    OAuthGrantFactory(smtp_settings=own_smtp, secret=SECRET)
    url = reverse("mailsettings_oauth:disconnect", args=[tenant.slug])
    assert "Remove OAuth2 sign-in?" in admin.get(url).text
    response = admin.post(url)
    assert response.status_code == 302
    assert not OAuthGrant.objects.exists()
    entry = AuditEntry.objects.get(action="oauth_grant.delete")
    assert entry.changes["client_secret"] == "changed"


# --- Google's consent flow --------------------------------------------------------------------


@pytest.fixture
def google_app(idp, settings):
    settings.SITE_URL = "https://postmaster.example"
    return idp.register(
        client_id=GOOGLE_CLIENT_ID,
        client_secret=GOOGLE_SECRET,
        redirect_uris={"https://postmaster.example/oauth/google/callback/"},
    )


def _start(admin, tenant) -> str:
    """Save and connect: the URL of Google's consent page the portal sends the admin to."""
    response = admin.post(_setup_url(tenant), {**_google(), "_connect": "1"})
    assert response.status_code == 200
    assert "Continue to Google" in response.text
    return response.context["google_url"]


def _consent(idp, url: str, settings) -> str:
    """The admin at Google: approve; Google redirects back. The callback's path and query."""
    answer = requests.get(url, allow_redirects=False, verify=settings.OAUTH_CA_BUNDLE, timeout=5)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == "https://postmaster.example"
    return f"{location.path}?{location.query}"


def test_google_flow_stores_the_refresh_token(admin, tenant, own_smtp, idp, google_app, settings):
    url = _start(admin, tenant)
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == ["https://postmaster.example/oauth/google/callback/"]
    assert query["scope"] == ["https://mail.google.com/"]
    assert query["access_type"] == ["offline"]
    assert query["prompt"] == ["consent"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["login_hint"] == [MAILBOX]
    assert query["state"][0] == admin.session[FLOW_SESSION_KEY]["state"]

    response = admin.get(_consent(idp, url, settings), follow=True)

    assert "Gmail is connected" in response.text
    grant = OAuthGrant.objects.get()
    assert grant.refresh_token
    assert grant.connected_by.email == "admin@acme.example"
    assert "Connected by admin@acme.example" in response.text
    assert idp.token_requests == ["authorization_code"]
    assert idp.token_forms[0]["code_verifier"]  # PKCE: the stand-in checked it
    entry = AuditEntry.objects.get(action="oauth_grant.connect")
    assert entry.changes == {"refresh_token": "changed"}
    assert FLOW_SESSION_KEY not in admin.session
    # The new authorization signs in: a token for the account, no new consent.
    assert grant.refresh_token.reveal() not in response.text


def test_a_wrong_state_is_refused_and_nothing_is_stored(
    admin, tenant, own_smtp, idp, google_app, settings
):
    callback = _consent(idp, _start(admin, tenant), settings)
    forged = callback.replace("state=", "state=x")
    response = admin.get(forged)
    assert response.status_code == 400
    assert "This sign-in link is not valid" in response.text.replace("\n", " ")
    assert not OAuthGrant.objects.get().refresh_token
    assert idp.token_requests == []
    # The flow is used up: even the right state does not work after a refusal.
    assert admin.get(callback).status_code == 400


def test_a_callback_works_once(admin, tenant, own_smtp, idp, google_app, settings):
    callback = _consent(idp, _start(admin, tenant), settings)
    assert admin.get(callback).status_code == 302
    assert admin.get(callback).status_code == 400
    assert idp.token_requests == ["authorization_code"]


def test_a_callback_in_another_session_is_refused(
    client, admin, tenant, own_smtp, idp, google_app, settings, other_tenant_admin
):
    callback = _consent(idp, _start(admin, tenant), settings)
    client.logout()
    client.force_login(other_tenant_admin)
    assert client.get(callback).status_code == 400
    assert not OAuthGrant.objects.get().refresh_token


def test_an_admin_who_lost_the_role_meanwhile_is_refused(
    admin, tenant, tenant_admin, own_smtp, idp, google_app, settings
):
    callback = _consent(idp, _start(admin, tenant), settings)
    tenant_admin.memberships.update(role="member")
    assert admin.get(callback).status_code == 400
    assert not OAuthGrant.objects.get().refresh_token


def test_declining_at_google_says_so(admin, tenant, own_smtp, idp, google_app, settings):
    idp.deny_consent = True
    response = admin.get(_consent(idp, _start(admin, tenant), settings), follow=True)
    assert "access was not allowed on Google&#x27;s page" in response.text
    assert not OAuthGrant.objects.get().refresh_token


def test_a_refused_code_says_to_connect_again(admin, tenant, own_smtp, idp, google_app, settings):
    callback = _consent(idp, _start(admin, tenant), settings)
    idp.codes.clear()  # expired at Google
    response = admin.get(callback, follow=True)
    assert "Google did not accept the sign-in code" in response.text
    assert not OAuthGrant.objects.get().refresh_token


def test_no_secret_reaches_a_page_or_the_log(
    admin, tenant, own_smtp, idp, google_app, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    callback = _consent(idp, _start(admin, tenant), settings)
    admin.get(callback)
    admin.post(_test_url(tenant))
    grant = OAuthGrant.objects.get()
    pages = admin.get(_setup_url(tenant)).text + admin.post(_test_url(tenant)).text
    secrets = [GOOGLE_SECRET, grant.refresh_token.reveal(), grant.access_token.reveal()]
    for secret in secrets:
        assert secret not in pages
        assert secret not in caplog.text
        assert secret not in str(list(AuditEntry.objects.values_list("changes", flat=True)))


# --- The host's settings, in the host administration ------------------------------------------


def test_host_page_needs_the_host_smtp_settings_first(admin_client):
    response = admin_client.get(reverse("admin:connections_oauthgrant_changelist"))
    assert response.status_code == 200
    assert "Save the host's SMTP settings first" in response.text


def test_host_setup_test_and_disconnect(admin_client, idp, system_admin):
    host = SmtpSettingsFactory(username=MAILBOX, host="smtp.office365.com")
    idp.register(client_id=MICROSOFT_CLIENT_ID, client_secret=SECRET, directory=DIRECTORY)
    page = reverse("admin:connections_oauthgrant_changelist")

    response = admin_client.post(page, _microsoft())
    assert response.status_code == 302
    grant = OAuthGrant.objects.get()
    assert (grant.smtp_settings, grant.tenant) == (host, None)
    assert AuditEntry.objects.get(action="oauth_grant.create").actor == system_admin

    response = admin_client.post(reverse("admin:connections_oauthgrant_test"))
    assert "Microsoft issued an access token" in response.text
    assert SECRET not in response.text

    response = admin_client.post(reverse("admin:connections_oauthgrant_disconnect"))
    assert response.status_code == 302
    assert not OAuthGrant.objects.exists()


def test_host_page_is_for_system_administrators_only(client, tenant_admin):
    SmtpSettingsFactory()
    client.force_login(tenant_admin)
    page = reverse("admin:connections_oauthgrant_changelist")
    assert client.get(page).status_code == 302
    assert client.post(page, _microsoft()).status_code == 302
    assert not OAuthGrant.objects.exists()


def test_the_provider_of_the_smtp_server_is_preselected(admin, tenant, own_smtp):
    assert admin.get(_setup_url(tenant)).context["form"]["provider"].value() == OAuthProvider.GOOGLE
    own_smtp.host = "smtp.office365.com"
    own_smtp.save()
    assert (
        admin.get(_setup_url(tenant)).context["form"]["provider"].value() == OAuthProvider.MICROSOFT
    )
