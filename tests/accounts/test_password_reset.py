import logging

import pytest
from django.urls import reverse

from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.factories import UserFactory
from tests.smtp_servers import closed_port, smtp_server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("host_mailer")]


def test_a_mail_server_that_is_down_is_not_an_error_page(client, caplog):
    UserFactory(email="alice@example.com")
    SmtpSettingsFactory(host="127.0.0.1", port=closed_port(), secret="canary-reset-Zx9")

    with caplog.at_level(logging.DEBUG):
        response = client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"})

    # The same answer as when it was sent, so the page never tells whether an account exists.
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert "Failed to send password reset email" in caplog.text
    assert "canary-reset-Zx9" not in caplog.text


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client):
    with smtp_server() as server:
        SmtpSettingsFactory(**server.connection)
        response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert server.messages == []
