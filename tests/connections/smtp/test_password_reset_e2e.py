"""Password reset, end to end: the mail goes out through the host SMTP settings."""

import email
import email.policy
import re

import pytest
from django.conf import settings
from django.urls import reverse

from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.factories import TEST_PASSWORD, UserFactory
from tests.smtp_servers import smtp_server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("host_mailer")]

NEW_PASSWORD = "a-brand-new-Passw0rd"


def test_password_reset_mail_arrives_and_its_link_sets_a_new_password(client):
    user = UserFactory(email="alice@example.com")
    with smtp_server() as server:
        SmtpSettingsFactory(**server.connection, from_name="Postmaster")
        response = client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"})

    assert response.status_code == 302
    [received] = server.messages
    assert received.rcpt_tos == ["alice@example.com"]
    message = email.message_from_bytes(received.content, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == "Postmaster"
    text = message.get_body(("plain",)).get_content()
    link = re.search(re.escape(settings.SITE_URL) + r"(/accounts/reset/\S+/)", text).group(1)

    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.text
    set_password_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("accounts:password_reset_complete")

    login = reverse("accounts:login")
    old = client.post(login, {"username": "alice@example.com", "password": TEST_PASSWORD})
    assert old.status_code == 200  # refused
    new = client.post(login, {"username": "alice@example.com", "password": NEW_PASSWORD})
    assert new.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
