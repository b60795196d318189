"""Headers every page carries, production's cookies, and `check --deploy` in production."""

import os
import re
import subprocess
import sys

import pytest

from tests.core.test_settings import REQUIRED, ROOT

EMAILS = re.compile(r"(/email/|_email\.html$)")
TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("apps/*/templates")]


def _production(code: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and k != "CELERY_BROKER_URL"}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.production", **REQUIRED, **extra}
    return subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_with_production_settings_reports_nothing(tmp_path):
    # The deploy checks read the database (demo data, stored secrets): a new, empty one.
    database = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    # kombu's in-memory broker answers like a reachable one, without needing Redis here.
    result = _production(
        "",
        *("manage.py", "check", "--deploy", "--fail-level", "INFO"),
        DATABASE_URL=database,
        CELERY_BROKER_URL="memory://",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_cookies_and_hsts():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY,"
        " s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000,"
        " s.SECURE_HSTS_INCLUDE_SUBDOMAINS)"
    )
    result = _production(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 6


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/api/v1/docs"])
def test_every_page_has_the_security_headers(client, url):
    response = client.get(url)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style():
    """What the CSP would block: inline <script>, on*= handlers, style= attributes.

    Email templates are not pages (mail clients need inline styles).
    """
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"
        r"|\son[a-z]+=\"|\sstyle=\"|<style[\s>]|javascript:"
    )
    found = []
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            relative = path.relative_to(ROOT).as_posix()
            if EMAILS.search(relative):
                continue
            found += [f"{relative}: {m.group(0)}" for m in inline.finditer(path.read_text())]
    assert found == []
