"""Invitations are emailed after their transaction commits, and a failed email is told in
plain words: the invitation stays and can be resent (issue 11, item 4).

These tests commit for real (transactional_db) and send through the host settings to a
real SMTP server on 127.0.0.1, as `make run` does with its mail catcher.
"""

import html
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.urls import reverse

from apps.tenancy.models import Membership, Role
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.smtp_servers import ACCEPT, Sink, sink_server

pytestmark = pytest.mark.usefixtures("transactional_db", "host_mailer")

INVITE_URL = "/t/acme/members/invite/"
# What a locked mail catcher answers (SQLite "database is locked"): a temporary refusal.
TEMPORARY_FAILURE = "451 4.3.0 Requested action aborted: local error in processing"
# What must never reach the page: smtplib's exception as Python shows it.
RAW = ("(451", "b'", "SMTPDataError", "Requested action aborted", "Traceback")


def page_text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _committed_membership(address: str) -> bool:
    """Whether another connection (another process's, as the mail catcher's) sees it."""
    try:
        return Membership.objects.filter(user__email=address).exists()
    finally:
        connections.close_all()


@pytest.fixture
def seen_by_the_server(transactional_db):
    """A server that, when the invitation arrives, looks in the database for it."""
    seen = []
    with ThreadPoolExecutor(max_workers=1) as pool:

        def script(number, content):
            to = re.search(rb"^To: (\S+)", content, re.MULTILINE).group(1).decode()
            seen.append(pool.submit(_committed_membership, to).result(timeout=30))
            return ACCEPT

        with sink_server(Sink(script=script)) as server:
            SmtpSettingsFactory(**server.connection, from_name="Postmaster")
            yield seen, server


@pytest.fixture
def signed_in_tenant_admin(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def test_the_invitation_is_emailed_after_it_is_committed(
    signed_in_tenant_admin, tenant, seen_by_the_server
):
    seen, server = seen_by_the_server

    response = signed_in_tenant_admin.post(
        INVITE_URL, {"email": "new@example.com", "role": Role.MEMBER}, follow=True
    )

    # The server found the invitation already saved when the email reached it.
    assert seen == [True]
    assert len(server.recorder.accepted) == 1
    assert "new@example.com was invited." in page_text(response)


def test_a_tenant_admin_invited_from_the_admin_is_emailed_after_commit(
    client, system_admin, tenant, seen_by_the_server
):
    seen, _server = seen_by_the_server
    client.force_login(system_admin)

    response = client.post(
        reverse("admin:tenancy_tenant_invite", args=[tenant.pk]),
        {"email": "boss@acme.example"},
        follow=True,
    )

    assert seen == [True]
    # The admin capitalises its messages' first letter.
    assert "Boss@acme.example is now a tenant admin of Acme and has been emailed." in (
        page_text(response)
    )


@pytest.fixture
def refusing_server(transactional_db):
    with sink_server(Sink(script=lambda number, content: TEMPORARY_FAILURE)) as server:
        SmtpSettingsFactory(**server.connection, from_name="Postmaster")
        yield server


@pytest.mark.usefixtures("refusing_server")
def test_a_failed_invitation_email_is_told_in_plain_words(signed_in_tenant_admin, tenant):
    response = signed_in_tenant_admin.post(
        INVITE_URL, {"email": "new@example.com", "role": Role.MEMBER}, follow=True
    )

    text = page_text(response)
    assert "new@example.com was invited, but the invitation email could not be sent" in text
    assert "could not take it just now" in text
    assert "Resend invitation" in text
    for raw in RAW:
        assert raw not in text
    assert Membership.objects.get(user__email="new@example.com").is_pending


@pytest.mark.usefixtures("refusing_server")
def test_a_failed_resend_is_told_in_plain_words(signed_in_tenant_admin, tenant, tenant_admin):
    invited = signed_in_tenant_admin.post(
        INVITE_URL, {"email": "new@example.com", "role": Role.MEMBER}
    )
    assert invited.status_code == 302
    membership = Membership.objects.get(user__email="new@example.com")

    response = signed_in_tenant_admin.post(f"/t/acme/members/{membership.pk}/resend/", follow=True)

    text = page_text(response)
    assert "The invitation email to new@example.com could not be sent" in text
    assert "could not take it just now" in text
    for raw in RAW:
        assert raw not in text


@pytest.mark.usefixtures("refusing_server")
def test_a_failed_admin_invitation_is_told_in_plain_words_and_can_be_sent_again(
    client, system_admin, tenant
):
    client.force_login(system_admin)
    url = reverse("admin:tenancy_tenant_invite", args=[tenant.pk])

    response = client.post(url, {"email": "boss@acme.example"}, follow=True)

    text = page_text(response)
    assert "Boss@acme.example is now a tenant admin of Acme, but the invitation email" in text
    assert "invite the same address again here to resend it" in text
    for raw in RAW:
        assert raw not in text

    again = client.post(url, {"email": "boss@acme.example"}, follow=True)

    assert "already has a role" not in page_text(again)
    assert "could not be sent" in page_text(again)
    assert Membership.objects.filter(user__email="boss@acme.example").count() == 1
