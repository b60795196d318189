"""Test emails cannot be used as a relay: one recipient each, a few per hour, all audited."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.connections.forms import TEST_BUTTON, SmtpSettingsForm
from apps.connections.services import TEST_EMAIL_ACTION
from apps.tenancy.models import Role
from tests.connections.smtp.factories import allow_private_network, smtp_form_data
from tests.factories import MembershipFactory, UserFactory
from tests.smtp_servers import closed_port, smtp_server

pytestmark = pytest.mark.django_db


def page_url(tenant) -> str:
    return reverse("tenancy:mailsettings:edit", args=[tenant.slug])


def posted(server=None, **overrides) -> dict:
    connection = {"host": server.host, "port": str(server.port)} if server else {}
    return smtp_form_data(
        **connection | {"test_to": "ops@example.com", TEST_BUTTON: "1"} | overrides
    )


@pytest.fixture
def admin(client, tenant, tenant_admin):
    allow_private_network(tenant)  # the test server is on 127.0.0.1
    client.force_login(tenant_admin)
    return client


def age(minutes: int) -> None:
    """Make every test email so far `minutes` old."""
    AuditEntry.objects.filter(action=TEST_EMAIL_ACTION).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


def test_the_eleventh_test_email_in_an_hour_is_refused_with_when_to_try_again(admin, tenant):
    with smtp_server() as server:
        for _ in range(10):
            admin.post(page_url(tenant), posted(server))
        age(48)
        page = admin.post(page_url(tenant), posted(server)).content.decode()

    assert len(server.messages) == 10
    assert "You have sent 10 test emails in the last hour. Try again in 12 minutes." in page
    assert "smtp-test-result" not in page
    assert AuditEntry.objects.filter(action=TEST_EMAIL_ACTION).count() == 10


def test_failed_test_emails_count_and_the_window_slides(admin, tenant, settings):
    settings.TEST_EMAIL_LIMIT_PER_USER_HOUR = 2
    port = str(closed_port())
    for _ in range(2):
        admin.post(page_url(tenant), posted(host="127.0.0.1", port=port))
    assert AuditEntry.objects.filter(action=TEST_EMAIL_ACTION).count() == 2

    page = admin.post(page_url(tenant), posted(host="127.0.0.1", port=port)).content.decode()
    assert "You have sent 2 test emails in the last hour. Try again in 60 minutes." in page

    age(59)
    page = admin.post(page_url(tenant), posted(host="127.0.0.1", port=port)).content.decode()
    assert "Try again in 1 minute." in page

    age(61)
    with smtp_server() as server:
        page = admin.post(page_url(tenant), posted(server)).content.decode()
    assert "The test email was accepted" in page
    assert len(server.messages) == 1


def test_a_tenant_has_its_own_limit_across_its_admins(client, tenant, other_tenant, settings):
    settings.TEST_EMAIL_LIMIT_PER_TENANT_HOUR = 3
    allow_private_network(tenant)
    allow_private_network(other_tenant)
    admins = [UserFactory() for _ in range(2)]
    for user in admins:
        MembershipFactory(tenant=tenant, user=user, role=Role.TENANT_ADMIN)
    outsider = UserFactory()
    MembershipFactory(tenant=other_tenant, user=outsider, role=Role.TENANT_ADMIN)

    with smtp_server() as server:
        for user in [admins[0], admins[1], admins[0]]:
            client.force_login(user)
            client.post(page_url(tenant), posted(server))
        client.force_login(admins[1])
        refused = client.post(page_url(tenant), posted(server)).content.decode()
        client.force_login(outsider)
        elsewhere = client.post(page_url(other_tenant), posted(server)).content.decode()

    assert f"{tenant.name} has sent 3 test emails in the last hour. Try again in 60 minutes." in (
        refused
    )
    assert "The test email was accepted" in elsewhere
    assert len(server.messages) == 4


def test_host_test_emails_are_limited_per_user_and_audited(admin_client, system_admin, settings):
    settings.TEST_EMAIL_LIMIT_PER_USER_HOUR = 1
    add = reverse("admin:connections_smtpsettings_add")
    with smtp_server() as server:
        admin_client.post(add, posted(server))
        page = admin_client.post(add, posted(server)).content.decode()

    assert len(server.messages) == 1
    assert "You have sent 1 test email in the last hour. Try again in 60 minutes." in page
    [entry] = AuditEntry.objects.filter(action=TEST_EMAIL_ACTION)
    assert (entry.actor, entry.tenant) == (system_admin, None)
    assert entry.changes["to"] == "ops@example.com"


@pytest.mark.parametrize(
    "to",
    [
        "a@example.com,b@example.com",
        "a@example.com;b@example.com",
        "a@example.com b@example.com",
        "<a@example.com>, <b@example.com>",
        "Ann <a@example.com>",
        "a@example.com\r\nBcc: b@example.com",
        "a@example.com\nb@example.com",
        "a@example.com%0d%0aBcc:b@example.com",
        '"a@example.com,b"@example.com',
    ],
)
def test_a_test_email_goes_to_exactly_one_address(to):
    form = SmtpSettingsForm(smtp_form_data(test_to=to), testing=True)

    assert not form.is_valid()
    assert "test_to" in form.errors


def test_a_refused_recipient_list_sends_nothing(admin, tenant):
    with smtp_server() as server:
        page = admin.post(
            page_url(tenant), posted(server, test_to="a@example.com, b@example.com")
        ).content.decode()

    assert "Enter exactly one address in To." in page
    assert server.greetings == 0
    assert not AuditEntry.objects.filter(action=TEST_EMAIL_ACTION).exists()
