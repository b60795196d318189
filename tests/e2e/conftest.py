"""Browser tests: Playwright for Python driving Debian's Chromium.

Every test in this folder is marked `browser` (tests/conftest.py skips them,
or fails the run in CI, where Chromium is missing). Fixtures:

- `browser`: one headless Chromium for the whole e2e run.
- `page`: a fresh context (no cookies) per test, its base URL the
  `live_server`, so tests write `page.goto("/mail/")`. Using it makes the
  test transactional, since the server thread must see the test's rows.
- `admin_page`: `page` signed in as `system_admin` through the login form.
- `mail_catcher`: the real catcher server on a free port (tests/mailcatcher).

A failing test leaves a screenshot in test-artifacts/.
"""

import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.e2e.browser import CHROMIUM_ARGS, login
from tests.mailcatcher.fixtures import mail_catcher  # noqa: F401 (a fixture)

HERE = Path(__file__).parent
ARTIFACTS = settings.BASE_DIR / "test-artifacts"
_call_report = pytest.StashKey()


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py gates on the marker
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_call_report] = report
    return report


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in the main thread
    # while it is started, and Django refuses ORM calls from a thread with a
    # running loop (SynchronousOnlyOperation). Nothing here is concurrent:
    # the test body, its fixtures and teardown use the database between
    # browser calls. This is the standard workaround for Playwright + Django
    # tests. The package scope stops Playwright (and its loop) after the last
    # browser test, so the rest of the suite keeps Django's guard.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# `expect(...)` waits as long as the page's actions may.
expect.set_options(timeout=30_000)


@pytest.fixture
def page(browser, live_server, request, settings):
    # Links in the mail Postmaster sends are built from SITE_URL: here, the live server.
    settings.SITE_URL = live_server.url
    # Reduced motion turns off Bootstrap's smooth scrolling, which made every
    # click below the fold wait for the animation (~0.4 s each).
    context = browser.new_context(base_url=live_server.url, reduced_motion="reduce")
    # Generous: a busy 2-core machine (CI next to another run) can be slow to paint a page.
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    report = request.node.stash.get(_call_report, None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    context.close()


@pytest.fixture
def admin_page(page, system_admin):
    login(page, system_admin)
    return page
