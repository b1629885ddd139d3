"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

A failing test leaves a screenshot of every page it had open in test-artifacts/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import require

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Playwright's sync API keeps an event loop on the test thread; the test's own ORM calls are
# still synchronous, so Django's async-safety guard would refuse them without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    require(CHROMIUM.exists(), "Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def portal_server(live_server, settings, transactional_db):
    """The live server, with cookies a browser keeps over plain http and static files served as they are."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.LANGUAGE_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False
    settings.KYOKA_SITE_URL = live_server.url  # links in mail point at this server
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    return live_server


@pytest.fixture
def open_page(browser, portal_server, request):
    """open_page(language="en") → a Page in a fresh browser context (its own cookies and Accept-Language)."""
    contexts = []
    # Anything the Content-Security-Policy blocked: the pages must need no inline script or style.
    violations: list[str] = []

    def make(language: str = "en", *, phone: bool = False):
        context = browser.new_context(
            locale="ja-JP" if language == "ja" else "en-GB", base_url=portal_server.url,
            viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 900},
            is_mobile=phone, has_touch=phone, device_scale_factor=1)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: violations.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text or message.type == "error" else None)
        page.on("pageerror", lambda error: violations.append(f"{page.url}: {error}"))
        return page

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        for n, context in enumerate(contexts):
            for m, page in enumerate(context.pages):
                page.screenshot(path=str(ARTIFACTS / f"{name}-{n}-{m}.png"), full_page=True)
    for context in contexts:
        context.close()
    if report is not None and report.passed:
        assert not violations, f"console errors or Content-Security-Policy violations: {violations}"


def log_in(page, email: str, password: str = "pw-12345!") -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/(studio|developer|desk)/$"))
