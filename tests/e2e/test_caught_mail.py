from playwright.sync_api import expect

from apps.mailcatcher.models import CaughtMessage
from tests.mailcatcher.fixtures import multipart_message, smtp_send


def test_a_system_admin_reads_a_caught_message(admin_page, mail_catcher):
    smtp_send(multipart_message(), port=mail_catcher.port)
    page = admin_page

    page.get_by_role("link", name="Caught mail", exact=True).first.click()
    expect(page.get_by_role("heading", name="Caught mail")).to_be_visible()
    page.get_by_role("link", name="Build 42 failed").click()

    expect(page.get_by_role("heading", name="Build 42 failed")).to_be_visible()
    from_row = page.locator("#headers").get_by_role("row", name="From Postmaster")
    expect(from_row).to_contain_text("Postmaster <postmaster@example.com>")
    # The HTML part, rendered in its sandboxed frame.
    html = page.frame_locator("iframe.mail-html")
    expect(html.locator("strong")).to_have_text("42")
    # The text part, one tab away.
    page.get_by_role("tab", name="Text").click()
    expect(page.get_by_text("Build 42 failed at the test stage.", exact=True)).to_be_visible()


def test_a_system_admin_deletes_all_caught_mail(admin_page, mail_catcher):
    smtp_send(multipart_message(), port=mail_catcher.port)
    page = admin_page
    page.goto("/mail/")

    page.get_by_role("button", name="Delete all").click()
    dialog = page.get_by_role("dialog", name="Delete all caught mail?")
    expect(dialog).to_contain_text("All 1 caught message will be deleted.")
    dialog.get_by_role("button", name="Delete all").click()

    expect(page.get_by_text("Deleted 1 caught message.")).to_be_visible()
    expect(page.get_by_role("heading", name="No mail caught yet")).to_be_visible()
    assert not CaughtMessage.objects.exists()


def test_a_link_in_the_html_part_opens_in_a_new_tab(admin_page, mail_catcher, live_server):
    target = f"{live_server.url}/mail/"
    html = f'<p>See <a href="{target}">the run</a>.</p>'
    smtp_send(multipart_message(html=html), port=mail_catcher.port)
    page = admin_page
    page.goto("/mail/")
    page.get_by_role("link", name="Build 42 failed").click()

    frame = page.frame_locator("iframe.mail-html")
    with page.context.expect_page() as opened:
        frame.get_by_role("link", name="the run").click()

    opened.value.wait_for_load_state()
    assert opened.value.url == target
    # The frame still shows the message.
    expect(frame.get_by_role("link", name="the run")).to_be_visible()
