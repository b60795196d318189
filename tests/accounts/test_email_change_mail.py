"""A confirmation email the host's server refuses is told in plain words (issue 11, item 4)."""

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from apps.audit.models import AuditEntry
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.factories import TEST_PASSWORD, UserFactory
from tests.smtp_servers import Sink, sink_server

pytestmark = pytest.mark.usefixtures("host_mailer")

# What a busy (or locked) server answers: smtplib raises it as (451, b'...').
TEMPORARY_FAILURE = "451 4.3.0 Requested action aborted: local error in processing"


def test_a_refused_confirmation_email_is_told_in_plain_words(client, db):
    ann = UserFactory(email="ann@acme.example")
    client.force_login(ann)
    with sink_server(Sink(script=lambda number, content: TEMPORARY_FAILURE)) as server:
        SmtpSettingsFactory(**server.connection, from_name="Postmaster")

        response = client.post(
            reverse("account:email_change"),
            {"email": "ann@new.example", "password": TEST_PASSWORD},
        )

    text = " ".join(strip_tags(response.content.decode()).split())
    assert "The confirmation email to ann@new.example could not be sent: the mail server" in text
    assert "could not take it just now" in text
    assert "Your address did not change." in text
    for raw in ("(451", "b'", "4.3.0", "Requested action aborted", "SMTPDataError"):
        assert raw not in text
    assert not AuditEntry.objects.exists()
