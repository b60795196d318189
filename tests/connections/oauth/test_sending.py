"""OAuth2 sign-in wired into sending: the test email and the delivery engine sign in with XOAUTH2.

Real parts: the XOAUTH2 SMTP server and the identity-provider stand-in on
127.0.0.1 (tests/connections/oauth/xoauth2_server.py, tests/connections/oauth/identity_provider.py).
"""

import pytest
from django.urls import reverse

from apps.connections.forms import USERNAME_WITHOUT_PASSWORD, SmtpSettingsForm
from apps.connections.selectors import host_smtp_settings, host_smtp_settings_forget
from apps.connections.smtp import Outcome, send_test_email
from apps.delivery.models import DeliveryAttempt, DeliveryStatus
from apps.delivery.services import deliveries_send, event_dispatch
from tests.connections.oauth.conftest import (
    DIRECTORY,
    GOOGLE_CLIENT_ID,
    MAILBOX,
    MICROSOFT_CLIENT_ID,
)
from tests.connections.oauth.factories import OAuthGrantFactory
from tests.connections.oauth.xoauth2_server import xoauth2_server
from tests.connections.smtp.factories import SmtpSettingsFactory, smtp_form_data
from tests.delivery.engine import deliver, make_event
from tests.factories import NotificationRuleFactory, PipelineFactory

pytestmark = pytest.mark.django_db

SECRET = "client-Secret~Value-1"
ADDRESSES = ["ann@contoso.example", "bob@contoso.example"]


@pytest.fixture(autouse=True)
def _engine_settings(settings):
    # Retries are due at once and a stalled server is given up quickly.
    settings.DELIVERY_RETRY_DELAY = 0
    settings.CONNECTION_TIMEOUT = 2


@pytest.fixture
def server(idp):
    with xoauth2_server(idp) as running:
        yield running


def smtp_settings(server, tenant=None, **fields):
    return SmtpSettingsFactory(
        tenant=tenant, **server.connection, username=MAILBOX, from_email=MAILBOX, **fields
    )


def microsoft_grant(idp, row):
    idp.register(
        client_id=MICROSOFT_CLIENT_ID,
        client_secret=SECRET,
        directory=DIRECTORY,
        mailboxes={MAILBOX},
    )
    return OAuthGrantFactory(smtp_settings=row, secret=SECRET)


def google_grant(idp, row):
    idp.register(client_id=GOOGLE_CLIENT_ID, client_secret=SECRET)
    refresh = idp.grant_refresh_token(GOOGLE_CLIENT_ID, MAILBOX)
    return OAuthGrantFactory(smtp_settings=row, google=True, secret=SECRET, refresh=refresh)


def posted(server, **overrides) -> dict:
    values = {"host": server.host, "port": str(server.port), "security": "starttls"}
    values |= {"username": MAILBOX, "from_email": MAILBOX, "test_to": "ops@contoso.example"}
    return smtp_form_data(**values | {"_send_test": "1"} | overrides)


@pytest.fixture
def admin(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


# The test email ---------------------------------------------------------------------------


def test_a_test_email_with_a_microsoft_grant_signs_in_with_xoauth2(admin, tenant, idp, server):
    microsoft_grant(idp, smtp_settings(server, tenant, preset="microsoft365"))

    response = admin.post(reverse("tenancy:mailsettings:edit", args=[tenant.slug]), posted(server))

    assert "The test email was accepted by 127.0.0.1." in response.text
    assert server.auth_mechanisms == ["XOAUTH2"]
    assert server.logins == [MAILBOX]
    [message] = server.messages
    assert message.rcpt_tos == ["ops@contoso.example"]
    assert idp.token_requests == ["client_credentials"]
    assert SECRET not in response.text


def test_the_hosts_cached_settings_sign_in_with_their_grant(idp, server):
    row = smtp_settings(server)
    microsoft_grant(idp, row)
    host_smtp_settings_forget()
    host_smtp_settings()  # Fill the cache: the next read is the cached copy.

    cached = host_smtp_settings()
    result = send_test_email(cached, password="", to="ops@contoso.example", subject="Hi", body="x")

    assert cached.pk == row.pk
    assert result.ok, result
    assert server.logins == [MAILBOX]


def test_unsaved_settings_sign_in_with_a_password_and_query_nothing_for_a_grant(
    idp, server, django_assert_num_queries
):
    unsaved = SmtpSettingsFactory.build(**server.connection, username=MAILBOX)

    with django_assert_num_queries(0):
        result = send_test_email(
            unsaved, password="", to="ops@contoso.example", subject="S", body="b"
        )

    # No grant, no password: nothing signs in, and the server wants a login.
    assert result.outcome is Outcome.AUTH_REQUIRED
    assert server.auth_mechanisms == []


def test_a_revoked_google_grant_says_what_to_redo_and_opens_no_connection(
    admin, tenant, idp, server
):
    google_grant(idp, smtp_settings(server, tenant, preset="gmail"))
    idp.revoke_all()

    response = admin.post(reverse("tenancy:mailsettings:edit", args=[tenant.slug]), posted(server))

    assert "alert-danger" in response.text
    assert "Google no longer accepts the saved authorization" in response.text
    assert "Connect Gmail again on the Email settings page (OAuth2 sign-in)" in response.text
    assert server.greetings == 0
    assert server.messages == []


def test_a_token_the_mailbox_refuses_is_explained_as_an_oauth2_refusal(idp, server, tenant):
    row = smtp_settings(server, tenant)
    microsoft_grant(idp, row)
    idp.apps[MICROSOFT_CLIENT_ID].mailboxes = set()  # No permission on the mailbox.

    result = send_test_email(row, password="", to="ops@contoso.example", subject="S", body="b")

    assert result.outcome is Outcome.OAUTH_REFUSED
    assert result.message == f"127.0.0.1 refused the OAuth2 access token for {MAILBOX}."
    assert "permission on the mailbox" in result.hint
    assert result.reply.code == 535


# The delivery engine ----------------------------------------------------------------------


@pytest.fixture
def event(tenant):
    pipeline = PipelineFactory(project__organization__tenant=tenant)
    NotificationRuleFactory(pipeline=pipeline, addresses=ADDRESSES)
    return make_event(pipeline)


def test_the_engine_sends_a_batch_with_xoauth2_and_one_token(tenant, idp, server, event):
    microsoft_grant(idp, smtp_settings(server, tenant))

    deliveries = deliver(event)

    assert [d.status for d in deliveries] == [DeliveryStatus.SENT] * 2
    assert sorted(m.rcpt_tos[0] for m in server.messages) == ADDRESSES
    assert set(server.auth_mechanisms) == {"XOAUTH2"}
    assert set(server.logins) == {MAILBOX}
    assert idp.token_requests == ["client_credentials"]


def test_a_revoked_grant_makes_the_engine_retry_not_crash(tenant, idp, server, event):
    google_grant(idp, smtp_settings(server, tenant))
    idp.revoke_all()

    event_dispatch(event_id=event.pk)
    deliveries_send(tenant_id=tenant.pk)

    deliveries = list(event.deliveries.all())
    assert {d.status for d in deliveries} == {DeliveryStatus.QUEUED}
    attempts = DeliveryAttempt.objects.filter(delivery__in=deliveries)
    assert {a.outcome for a in attempts} == {Outcome.OAUTH_FAILED}
    assert all("Google no longer accepts the saved authorization" in a.reply for a in attempts)
    # The delivery log says what to redo, too.
    assert all("Connect Gmail again" in a.reply for a in attempts)
    assert server.greetings == 0


# The form ---------------------------------------------------------------------------------


def _form(row, **overrides):
    values = {"host": row.host, "port": str(row.port), "security": row.security}
    data = smtp_form_data(**values | {"username": MAILBOX} | overrides)
    return SmtpSettingsForm(data, instance=row)


def test_a_username_needs_no_password_with_a_grant(idp, tenant):
    row = SmtpSettingsFactory(tenant=tenant, preset="microsoft365", port=587, username=MAILBOX)
    without = _form(row)
    assert not without.is_valid()
    assert without.errors["new_password"] == [USERNAME_WITHOUT_PASSWORD]

    microsoft_grant(idp, row)
    with_grant = _form(row)
    assert with_grant.is_valid(), with_grant.errors
    assert "sign in with OAuth2" in with_grant.fields["new_password"].help_text


def test_the_host_is_not_changed_under_a_grant(idp, tenant):
    row = SmtpSettingsFactory(tenant=tenant, preset="microsoft365", port=587, username=MAILBOX)
    microsoft_grant(idp, row)

    form = _form(row, host="127.0.0.2")

    assert not form.is_valid()
    assert "Remove OAuth2 sign-in first" in form.errors["host"][0]
