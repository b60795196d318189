import logging
import smtplib

from django.urls import reverse

from apps.mailcatcher.models import CaughtMessage
from tests.mailcatcher.fixtures import multipart_message, smtp_send


def test_a_message_sent_over_smtp_is_kept_and_shown(mail_catcher, admin_client):
    smtp_send(multipart_message(), port=mail_catcher.port)

    caught = CaughtMessage.objects.get()
    assert caught.envelope_sender == "postmaster@example.com"
    assert caught.envelope_recipients == ["dev@example.com"]
    assert caught.subject == "Build 42 failed"
    assert caught.from_header == "Postmaster <postmaster@example.com>"
    assert caught.to_header == "dev@example.com"
    assert caught.size == len(bytes(caught.raw))
    assert caught.peer.startswith("127.0.0.1:")

    page = admin_client.get(reverse("mailcatcher:detail", args=[caught.pk])).content.decode()
    assert '<th scope="row" class="text-nowrap ps-3">Subject</th>' in page
    assert "Build 42 failed at the test stage." in page  # the text part
    # The HTML part, in the sandboxed frame.
    html = admin_client.get(reverse("mailcatcher:html", args=[caught.pk])).content.decode()
    assert "<p>Build <strong>42</strong> failed at the test stage.</p>" in html


def test_any_credentials_are_accepted_and_never_kept_or_logged(mail_catcher, caplog):
    password = "canary-password-7f3a"
    with caplog.at_level(logging.DEBUG):
        smtp_send(multipart_message(), port=mail_catcher.port, login=("someone", password))

    caught = CaughtMessage.objects.get()
    assert password.encode() not in bytes(caught.raw)
    assert "canary" not in caplog.text
    assert f"Caught message {caught.pk} from postmaster@example.com" in caplog.text


def test_several_recipients_and_a_null_sender_are_kept(mail_catcher):
    with smtplib.SMTP(mail_catcher.hostname, mail_catcher.port, timeout=5) as client:
        client.sendmail("", ["a@example.com", "b@example.com"], b"Subject: Bounce\r\n\r\nGone.\r\n")

    caught = CaughtMessage.objects.get()
    assert caught.envelope_sender == "<>"
    assert caught.envelope_recipients == ["a@example.com", "b@example.com"]
    assert caught.subject == "Bounce"
    assert caught.to_header == ""
