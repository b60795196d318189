"""Absolute links for what Postmaster sends (emails): always from SITE_URL.

Never from the request: its Host header is whatever the client sent, and a
password-reset link pointing at someone else's host hands them the token.
"""

from django.conf import settings


def absolute_url(path: str) -> str:
    """`path` (as reverse() gives it) under SITE_URL."""
    return settings.SITE_URL.rstrip("/") + path
