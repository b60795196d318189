"""A tenant admin watches an event being delivered, reads a failure's attempts, sends it again."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from apps.delivery.models import Delivery, DeliveryStatus
from tests.delivery.log_records import make_attempts, make_deliveries, make_event, make_pipeline
from tests.e2e.browser import login

SHOTS = "/tmp"
# Counts the progress polls the page starts (fetch is called synchronously by its timer).
POLL_COUNTER = """
window.progressPolls = 0;
const pageFetch = window.fetch;
window.fetch = function (url, ...rest) {
  if (String(url).includes("/progress/")) window.progressPolls += 1;
  return pageFetch.call(this, url, ...rest);
};
"""


def test_the_event_page_follows_delivery_until_it_is_done(page, tenant, tenant_admin):
    event = make_event(make_pipeline(tenant))
    waiting = make_deliveries(event, DeliveryStatus.QUEUED, 3)
    refused = make_deliveries(
        event, DeliveryStatus.FAILED, 1, prefix="refused", finished_at=timezone.now()
    )
    make_attempts(refused, ("recipient_rejected", 550, "5.1.1 User unknown"))
    make_deliveries(
        event, DeliveryStatus.SENT, 5, prefix="y", finished_at=timezone.now() - timedelta(days=1)
    )
    earlier = make_event(event.pipeline, run_id="4702")
    make_deliveries(
        earlier,
        DeliveryStatus.FAILED,
        2,
        prefix="e",
        finished_at=timezone.now() - timedelta(days=3),
    )
    progress_calls = []
    page.on("request", lambda r: "/progress/" in r.url and progress_calls.append(r.url))
    # The page's timers run as usual, and the test can run them ahead (below). Polls are
    # also counted in the page, as they start: nothing to wait for to see them.
    page.clock.install()
    page.add_init_script(POLL_COUNTER)
    login(page, tenant_admin)

    page.goto(f"/t/{tenant.slug}/delivery/events/{event.pk}/")
    box = page.locator("#event-progress")
    expect(box).to_contain_text("5 of 9 sent, 1 failed, 3 to go")
    page.screenshot(path=f"{SHOTS}/delivery-event-running.png", full_page=True)

    # The engine sends the rest while the page is open.
    Delivery.objects.filter(pk__in=[d.pk for d in waiting]).update(status=DeliveryStatus.SENT)
    expect(box).to_contain_text("8 of 9 sent, 1 failed", timeout=8_000)
    expect(box.get_by_text("Delivery finished.")).to_be_visible()
    expect(box.locator("[data-progress-part=sent]")).to_have_attribute(
        "style", re.compile(r"width: 88\.9%")
    )
    calls = len(progress_calls)
    polls = page.evaluate("window.progressPolls")
    # Were a poll still scheduled (every 2 s), running the page's clock 4.5 s ahead would
    # start it now: no fixed wait.
    page.clock.run_for(4_500)
    assert page.evaluate("window.progressPolls") == polls, "polling goes on after delivery finished"
    assert len(progress_calls) == calls, "polling goes on after delivery finished"

    # A failure's attempts, then "Send again".
    page.get_by_role("button", name="Attempts (1)").click()
    expect(page.get_by_text("Recipient rejected")).to_be_visible()
    page.screenshot(path=f"{SHOTS}/delivery-event-done.png", full_page=True)
    page.get_by_role("button", name="Send again").click()
    expect(
        page.get_by_text("The message to refused0@example.com will be sent again.")
    ).to_be_visible()
    assert Delivery.objects.get(pk=refused[0].pk).status == DeliveryStatus.QUEUED

    page.goto(f"/t/{tenant.slug}/delivery/?status=queued")
    expect(page.get_by_role("cell", name="refused0@example.com")).to_be_visible()
    page.screenshot(path=f"{SHOTS}/delivery-log.png", full_page=True)
    page.goto(f"/t/{tenant.slug}/")
    chart = page.locator("#delivery-chart")
    expect(chart).to_contain_text("Sent: 5")
    expect(chart).to_contain_text("Failed: 2")
    page.screenshot(path=f"{SHOTS}/delivery-dashboard.png", full_page=True)
