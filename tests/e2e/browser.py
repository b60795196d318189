"""Helpers for browser tests: how Chromium is launched, how a person signs in."""

import re

from playwright.sync_api import Locator, Page, expect

from tests.factories import TEST_PASSWORD

# Debian's Chromium, quiet: nothing phones home, so a test run stays on 127.0.0.1.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def login(page: Page, user, password: str = TEST_PASSWORD) -> None:
    """Sign in through the login form, as a person would."""
    page.goto("/accounts/login/")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def field(scope: Page | Locator, label: str) -> Locator:
    """The form field labelled `label`, in the admin ("To:") and in the portal ("Name*") alike."""
    return scope.get_by_label(re.compile(rf"^\s*{re.escape(label)}\s*[:*]?\s*$"))
