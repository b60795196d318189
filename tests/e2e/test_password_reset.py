import re

import pytest
from playwright.sync_api import expect

from apps.mailcatcher.models import CaughtMessage
from apps.mailcatcher.parsing import message_parse
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.e2e.browser import login

NEW_PASSWORD = "a brand new passphrase 9"


@pytest.mark.usefixtures("host_mailer")
def test_a_forgotten_password_is_reset_through_the_mailed_link(page, member, mail_catcher):
    # The host SMTP settings point at the catcher, as in the demo.
    SmtpSettingsFactory(port=mail_catcher.port, from_name="Postmaster")
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(member.email)
    page.get_by_role("button", name="Send the reset link").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    caught = CaughtMessage.objects.get()
    assert caught.envelope_recipients == [member.email]
    assert caught.from_header == "Postmaster <postmaster@example.com>"
    assert caught.subject == "Reset your Postmaster password"
    link = re.search(r"http://\S+/accounts/reset/\S+/", message_parse(bytes(caught.raw)).text)

    page.goto(link.group())
    page.locator("#id_new_password1").fill(NEW_PASSWORD)
    page.locator("#id_new_password2").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set my password").click()
    expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()

    login(page, member, password=NEW_PASSWORD)
