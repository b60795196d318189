"""Sign-in lockout (django-axes), through the real sign-in forms of the portal and the admin."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEntry
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def sign_in(client, email, password=TEST_PASSWORD, url=LOGIN, **headers):
    return client.post(url, {"username": email, "password": password}, headers=headers)


def fail(client, email, times, url=LOGIN, **headers):
    """Sign in `times` with a wrong password; the last answer."""
    for _ in range(times):
        response = sign_in(client, email, "wrong password", url=url, **headers)
    return response


def signed_in(response) -> bool:
    return response.status_code == 302


@pytest.fixture
def ann(db):
    return UserFactory(email="ann@example.com")


def test_five_wrong_passwords_pause_the_account_even_for_the_right_one(client, ann):
    assert "do not match an account" in fail(client, ann.email, 4).content.decode()
    assert fail(client, ann.email, 1).status_code == 429  # the fifth already says so
    response = sign_in(client, ann.email)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Sign-in paused for this account" in page
    assert re.search(r"try again <strong>after \d\d:\d\d UTC</strong>", page)
    assert "in about 15 minutes" in page
    assert reverse("accounts:password_reset") in page
    assert "_auth_user_id" not in client.session


def test_four_wrong_passwords_do_not(client, ann):
    fail(client, ann.email, 4)
    assert signed_in(sign_in(client, ann.email))


def test_the_limit_is_a_setting(client, ann, settings):
    settings.AXES_FAILURE_LIMIT = 2
    fail(client, ann.email, 2)
    assert sign_in(client, ann.email).status_code == 429


def test_a_forged_x_forwarded_for_neither_dodges_nor_resets_the_count(client, ann):
    for number in range(5):
        spoof = {"X-Forwarded-For": f"203.0.113.{number}", "User-Agent": f"bot/{number}"}
        fail(client, ann.email, 1, **spoof)
    assert sign_in(client, ann.email, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    # The address recorded is the one the server saw, not the header.
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_another_address_spelling_counts_for_the_same_account(client, ann):
    fail(client, "ANN@example.com", 2)
    fail(client, " ann@Example.com ", 3)
    assert sign_in(client, ann.email).status_code == 429


def test_other_accounts_still_sign_in_from_the_same_address(client, ann):
    bob = UserFactory(email="bob@example.com")
    fail(client, ann.email, 5)
    assert signed_in(sign_in(client, bob.email))


def test_the_admin_sign_in_is_locked_too_and_shares_the_count(client, system_admin):
    fail(client, system_admin.email, 3, url=ADMIN_LOGIN)
    fail(client, system_admin.email, 2)
    response = sign_in(client, system_admin.email, url=ADMIN_LOGIN)
    assert response.status_code == 429
    assert "Sign-in paused for this account" in response.content.decode()
    assert client.get("/admin/").status_code == 302  # still signed out


def test_the_lockout_is_audited_once(client, ann):
    fail(client, ann.email, 5)
    sign_in(client, ann.email)
    sign_in(client, ann.email, "wrong password")
    entry = AuditEntry.objects.get(action="user.locked_out")
    assert entry.target_id == str(ann.pk)
    assert entry.changes == {"email": "ann@example.com", "failed sign-ins": 5}
    assert entry.ip_address == "127.0.0.1"
    assert "wrong password" not in str(AccessAttempt.objects.values_list("post_data"))


def test_the_pause_ends_after_the_cool_off(client, ann):
    fail(client, ann.email, 5)
    # As if the failures were 16 minutes ago.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    assert signed_in(sign_in(client, ann.email))


def test_failures_while_paused_do_not_move_the_time_it_ends(client, ann):
    fail(client, ann.email, 5)
    before = AccessAttempt.objects.get().attempt_time
    sign_in(client, ann.email, "wrong password")
    assert AccessAttempt.objects.get().attempt_time == before


def test_signing_in_forgets_earlier_failures(client, ann):
    fail(client, ann.email, 4)
    assert signed_in(sign_in(client, ann.email))
    client.logout()
    fail(client, ann.email, 4)
    assert signed_in(sign_in(client, ann.email))


def test_a_password_reset_lifts_the_pause(client, ann, mailoutbox):
    fail(client, ann.email, 5)
    client.post(reverse("accounts:password_reset"), {"email": ann.email})
    [mail] = mailoutbox
    link = re.search(re.escape(settings.SITE_URL) + r"(/accounts/reset/\S+/)", mail.body).group(1)
    form_url = client.get(link).url  # Django swaps the token for a session key
    new = {"new_password1": "a brand new pass 42", "new_password2": "a brand new pass 42"}
    assert client.post(form_url, new)["Location"] == reverse("accounts:password_reset_complete")
    assert signed_in(sign_in(client, ann.email, "a brand new pass 42"))
    assert AuditEntry.objects.filter(action="user.password_reset", target_id=str(ann.pk)).exists()


# The current password on the account forms counts like a sign-in ------------------------------

CHANGE_EMAIL = "/me/account/email/"
CHANGE_PASSWORD = "/me/account/password/"
CONFIRM = "/me/account/confirm-password/"


def _change_email(client, password):
    return client.post(CHANGE_EMAIL, {"email": "ann@new.example", "password": password})


def _change_password(client, password):
    new = "a brand new pass 42"
    data = {"old_password": password, "new_password1": new, "new_password2": new}
    return client.post(CHANGE_PASSWORD, data)


def _confirm(client, password):
    return client.post(CONFIRM, {"password": password, "next": "/"})


@pytest.mark.parametrize("form", [_change_email, _change_password, _confirm])
def test_wrong_current_passwords_lock_the_account(client, ann, mailoutbox, form):
    client.force_login(ann)
    for _ in range(4):
        assert form(client, "guess").status_code == 200  # the form again, with the error
    assert form(client, "guess").status_code == 429  # the fifth pauses the account
    # The right one is refused now, here and at sign-in, and nothing changed.
    response = form(client, TEST_PASSWORD)
    assert response.status_code == 429
    assert "Sign-in paused for this account" in response.content.decode()
    ann.refresh_from_db()
    assert ann.check_password(TEST_PASSWORD)
    assert not mailoutbox
    client.logout()
    assert sign_in(client, ann.email).status_code == 429
    assert AuditEntry.objects.filter(action="user.locked_out", target_id=str(ann.pk)).exists()


def test_guesses_on_different_forms_add_up(client, ann):
    client.force_login(ann)
    _change_email(client, "guess")
    _change_password(client, "guess")
    _confirm(client, "guess")
    fail(Client(), ann.email, 1)  # another browser's sign-in
    assert _change_email(client, "guess").status_code == 429


def test_a_right_current_password_still_works_below_the_limit(client, ann, mailoutbox):
    client.force_login(ann)
    for _ in range(4):
        _change_email(client, "guess")
    assert _change_email(client, TEST_PASSWORD).status_code == 302
    assert len(mailoutbox) == 1


def test_the_admin_password_page_is_the_account_one(client, system_admin):
    """The admin's own "Change password" form never counted guesses: it leads to the portal's."""
    client.force_login(system_admin)
    response = client.get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"] == CHANGE_PASSWORD
