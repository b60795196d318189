"""The Content-Security-Policy blocks nothing the admin, the portal or the API docs need.

Chromium reports every blocked script, style or image twice: on the console
("... violates the following Content Security Policy directive ...") and as a
`securitypolicyviolation` event, which a script injected by Playwright (not
subject to the page's policy) logs too. Either one fails the test.
"""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.delivery.models import DeliveryStatus
from tests.delivery.log_records import make_deliveries, make_event, make_pipeline
from tests.e2e.browser import login

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@pytest.fixture
def violations(page: Page) -> list[str]:
    found: list[str] = []
    page.context.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            ("Content Security Policy" in message.text or "CSP violation" in message.text)
            and found.append(f"{page.url}: {message.text}")
        ),
    )
    page.on("pageerror", lambda error: found.append(f"{page.url}: {error}"))
    return found


def visit(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, url
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")


def test_the_admin_works_under_the_policy(page, violations, system_admin):
    login(page, system_admin)
    for url in [
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{system_admin.pk}/change/",
        "/admin/tenancy/tenant/add/",
        "/admin/connections/smtpsettings/add/",
        "/admin/tenancy/systemadministrator/",
    ]:
        visit(page, url)
    # The admin's own scripts run: the changelist's "select all" ticks every row.
    visit(page, "/admin/tenancy/systemadministrator/")
    page.locator("#action-toggle").check()
    expect(page.locator("input.action-select").first).to_be_checked()
    # ...and the sidebar folds away.
    page.locator("#toggle-nav-sidebar").click()
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    assert violations == []


def test_the_portal_and_the_api_docs_work_under_the_policy(page, violations, tenant, tenant_admin):
    event = make_event(make_pipeline(tenant))
    make_deliveries(event, DeliveryStatus.SENT, 3, finished_at=timezone.now())
    make_deliveries(event, DeliveryStatus.FAILED, 1, prefix="x", finished_at=timezone.now())
    login(page, tenant_admin)
    for url in [
        f"/t/{tenant.slug}/",
        f"/t/{tenant.slug}/delivery/",
        f"/t/{tenant.slug}/email/",
        "/me/notifications/",
    ]:
        visit(page, url)
    visit(page, f"/t/{tenant.slug}/delivery/events/{event.pk}/")
    # The progress bar's widths come from data attributes, set by a static script.
    expect(page.locator("[data-progress-part=sent]")).to_have_attribute(
        "style", re.compile(r"width: 75(\.0)?%")
    )
    visit(page, "/api/v1/docs")
    expect(page.get_by_text("POST", exact=True).first).to_be_visible()
    assert violations == []


def test_a_violation_would_be_seen(page, violations, live_server):
    """The listener works: an inline script on one of our pages is reported."""
    visit(page, "/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.x = 1'; document.body.appendChild(s); }"
    )
    page.wait_for_function("() => true")
    expect(page.locator("body")).to_be_visible()
    assert any("script-src" in v for v in violations), violations
