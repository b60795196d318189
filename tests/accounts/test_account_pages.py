"""Account basics: the tenants one is in, changing one's password and one's email address."""

import email
import email.policy
import re
import time

import pytest
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.html import strip_tags

from apps.accounts.email_change import EMAIL_CHANGE_MAX_AGE, email_change_token_make
from apps.audit.models import AuditEntry
from apps.tenancy.models import Role
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.factories import (
    TEST_PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
)
from tests.smtp_servers import smtp_server

pytestmark = pytest.mark.django_db

ACCOUNT = reverse("account:overview")
PASSWORD = reverse("account:password_change")
EMAIL = reverse("account:email_change")
NEW_PASSWORD = "a-brand-new-Passw0rd"
LINK = re.compile(re.escape(settings.SITE_URL) + r"(/me/account/email/confirm/\S+/)")


@pytest.fixture
def ann(db):
    return UserFactory(email="ann@acme.example")


@pytest.fixture
def ann_client(client, ann):
    client.force_login(ann)
    return client


def text(response) -> str:
    return " ".join(strip_tags(response.content.decode()).split())


def confirm_link(message) -> str:
    return LINK.search(message.body).group(1)


def request_change(client, new="ann@new.example", password=TEST_PASSWORD):
    return client.post(EMAIL, {"email": new, "password": password})


# The account page ----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in (ACCOUNT, PASSWORD, EMAIL):
        assert client.get(url)["Location"].startswith(reverse("accounts:login"))


def test_it_lists_the_tenants_one_belongs_to_with_the_roles(
    ann_client, ann, tenant, other_tenant, tenant_admin
):
    MembershipFactory(tenant=tenant, user=ann, role=Role.TENANT_ADMIN)
    project = ProjectFactory(organization=OrganizationFactory(tenant=other_tenant, name="Ops"))
    MembershipFactory(
        tenant=other_tenant,
        user=ann,
        role=Role.PROJECT_ADMIN,
        organization=project.organization,
        project=project,
    )
    other_tenant.is_active = False
    other_tenant.save()
    UserFactory(email="stranger@initech.example")
    MembershipFactory(user__email="boss@initech.example", tenant__name="Initech")

    page = text(ann_client.get(ACCOUNT))

    assert "ann@acme.example" in page
    assert "Acme Tenant admin" in page
    assert f"Globex Disabled Project admin · Project Ops / {project.name}" in page
    assert "Initech" not in page


def test_someone_in_no_tenant_is_told_how_to_join(ann_client):
    assert "You are not a member of any tenant yet" in text(ann_client.get(ACCOUNT))


# Password ----------------------------------------------------------------------------------


def test_change_password_keeps_one_signed_in_and_is_audited_without_the_password(ann_client, ann):
    response = ann_client.post(
        PASSWORD,
        {
            "old_password": TEST_PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    assert response["Location"] == ACCOUNT
    ann.refresh_from_db()
    assert ann.check_password(NEW_PASSWORD)
    assert "Your password was changed." in text(ann_client.get(ACCOUNT))  # still signed in
    entry = AuditEntry.objects.get(action="user.password_changed")
    assert (entry.actor, entry.target_id, entry.changes) == (
        ann,
        str(ann.pk),
        {"password": "changed"},
    )
    assert NEW_PASSWORD not in str(entry.changes)
    assert ann.password not in str(entry.changes)


def test_a_wrong_current_password_changes_nothing(ann_client, ann):
    response = ann_client.post(
        PASSWORD,
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert "That is not your current password." in text(response)
    ann.refresh_from_db()
    assert ann.check_password(TEST_PASSWORD)
    assert not AuditEntry.objects.exists()


# Email address -------------------------------------------------------------------------------


def test_a_new_address_changes_only_once_the_link_sent_to_it_is_confirmed(
    ann_client, ann, mailoutbox, django_capture_on_commit_callbacks
):
    response = request_change(ann_client)

    assert response["Location"] == ACCOUNT
    assert "We sent a confirmation link to ann@new.example." in text(ann_client.get(ACCOUNT))
    ann.refresh_from_db()
    assert ann.email == "ann@acme.example"
    [sent] = mailoutbox
    assert sent.to == ["ann@new.example"]
    link = confirm_link(sent)

    # Opening the link (or a scanner fetching it) only asks.
    assert "Use ann@new.example?" in text(ann_client.get(link))
    ann.refresh_from_db()
    assert ann.email == "ann@acme.example"

    with django_capture_on_commit_callbacks(execute=True):
        response = ann_client.post(link)

    assert response["Location"] == ACCOUNT
    ann.refresh_from_db()
    assert ann.email == "ann@new.example"
    notice = mailoutbox[-1]
    assert notice.to == ["ann@acme.example"]
    assert "now signs in with ann@new.example" in notice.body
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "actor", "changes"))
    assert actions == [
        ("user.email_change_requested", ann.pk, {"requested email": "ann@new.example"}),
        ("user.email_changed", ann.pk, {"email": ["ann@acme.example", "ann@new.example"]}),
    ]
    # Used once: the same link changes nothing any more.
    again = ann_client.post(link)
    assert again.status_code == 400
    assert "Your address is already ann@new.example." in text(again)


@pytest.mark.parametrize(
    ("new", "password", "error"),
    [
        ("ANN@acme.example", TEST_PASSWORD, "This is already your address."),
        ("Bob@Acme.example", TEST_PASSWORD, "Another account uses this address already."),
        ("ann@new.example", "wrong", "That is not your current password."),
        ("not an address", TEST_PASSWORD, "Enter a valid email address."),
    ],
)
def test_a_change_that_cannot_be_made_is_explained_and_sends_nothing(
    ann_client, mailoutbox, new, password, error
):
    UserFactory(email="bob@acme.example")

    response = request_change(ann_client, new, password)

    assert error in text(response)
    assert mailoutbox == []
    assert not AuditEntry.objects.exists()


def test_another_accounts_link_is_refused(client, ann, mailoutbox):
    link = reverse(
        "account:email_confirm", args=[email_change_token_make(user=ann, new_email="x@y.example")]
    )
    bob = UserFactory(email="bob@acme.example")
    client.force_login(bob)

    for response in (client.get(link), client.post(link)):
        assert response.status_code == 400
        assert "This confirmation link is for another account." in text(response)
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert (ann.email, bob.email) == ("ann@acme.example", "bob@acme.example")


def test_a_tampered_link_is_refused_clearly(ann_client, ann):
    token = email_change_token_make(user=ann, new_email="ann@new.example")
    _, rest = token.split(":", 1)
    forged = signing.b64_encode(b'{"user":1,"from":"x","to":"evil@x.example"}').decode()

    response = ann_client.post(reverse("account:email_confirm", args=[f"{forged}:{rest}"]))

    assert response.status_code == 400
    assert "This confirmation link is not valid" in text(response)
    ann.refresh_from_db()
    assert ann.email == "ann@acme.example"


def test_an_expired_link_is_refused_clearly(ann_client, ann, monkeypatch):
    token = email_change_token_make(user=ann, new_email="ann@new.example")
    later = time.time() + EMAIL_CHANGE_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr(signing.time, "time", lambda: later)

    response = ann_client.post(reverse("account:email_confirm", args=[token]))

    assert response.status_code == 400
    assert "This confirmation link has expired." in text(response)
    ann.refresh_from_db()
    assert ann.email == "ann@acme.example"


def test_an_address_taken_meanwhile_is_not_given_twice(ann_client, ann):
    token = email_change_token_make(user=ann, new_email="ann@new.example")
    UserFactory(email="ANN@new.example")

    response = ann_client.post(reverse("account:email_confirm", args=[token]))

    assert response.status_code == 400
    assert "Another account started using ann@new.example" in text(response)


@pytest.mark.usefixtures("host_mailer")
def test_the_link_goes_out_through_the_host_settings(ann_client):
    with smtp_server() as server:
        SmtpSettingsFactory(**server.connection, from_name="Postmaster")
        response = request_change(ann_client)

    assert response.status_code == 302
    [received] = server.messages
    assert received.rcpt_tos == ["ann@new.example"]
    message = email.message_from_bytes(received.content, policy=email.policy.default)
    assert message["Subject"] == "Confirm your new address on Postmaster"
    assert LINK.search(message.get_body(("plain",)).get_content())


@pytest.mark.usefixtures("host_mailer")
def test_without_host_settings_nothing_happens_and_the_page_says_why(ann_client, ann):
    response = request_change(ann_client)

    assert "The confirmation email to ann@new.example could not be sent" in text(response)
    assert "Your address did not change." in text(response)
    assert not AuditEntry.objects.exists()
