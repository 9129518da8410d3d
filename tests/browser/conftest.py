"""Browser tests: Debian's chromium, driven by Playwright, against the real local stack with the real
agent and the fake model server (each its own process on loopback, as in tests/e2e).

Every test leaves a screenshot in artifacts/screenshots/<test>.png (git-ignored, kept by CI) for a
reviewer, and fails on any script error or Content-Security-Policy violation on the page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LocalStack, Provider, _stop, admin, start_local_stack, start_provider

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What a page may log without failing its test: the 401s of a wrong or revoked key, on purpose.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 401")


@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    # Jobs wait for a provider as long as a test needs (one test starts its provider mid-way).
    running = start_local_stack(tmp_path_factory.mktemp("browser-stack"), "NoProviderGraceSeconds=120")
    yield running
    _stop(running.process)


@pytest.fixture(scope="package")
def provider(stack, tmp_path_factory) -> Iterator[Provider]:
    """The stack account's agent and fake model server (answers take 300 ms, like a small model)."""
    running = start_provider(stack, tmp_path_factory.mktemp("browser-provider"), None, "--latency-ms", "300")
    yield running
    for process in running.processes:
        _stop(process)


@dataclass
class Account:
    account_id: str
    api_key: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def new_account(stack):
    def create(name: str) -> Account:
        created = admin(stack, "create-account", name)
        return Account(created["account_id"], created["api_key"])

    return create


@pytest.fixture(scope="package")
def http(stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=30, trust_env=False) as client:
        yield client


@pytest.fixture(scope="package")
def browser():
    """Package-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the main
    thread while it is open, and later tests that call asyncio.run() there would fail."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make chromium).")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class PageProblems:
    messages: list[str] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not EXPECTED_CONSOLE.search(m)]


def open_page(browser, problems: PageProblems):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda error: problems.messages.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.messages.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    return context, page


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser, request, page_problems):
    """A fresh tab (its own sessionStorage); screenshot at the end, pass or fail."""
    context, tab = open_page(browser, page_problems)
    yield tab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()
    assert page_problems.unexpected() == [], "the page logged errors"


@pytest.fixture
def snapshot(request):
    """Save an extra screenshot of a moment within a test: artifacts/screenshots/<test>-<moment>.png."""

    def save(tab, moment: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-{moment}.png"), full_page=True)

    return save


@pytest.fixture
def second_tab(browser, page_problems):
    """Another browser (its own session), for what a second person or machine sees."""
    context, tab = open_page(browser, page_problems)
    yield tab
    context.close()


def dashboard_url(stack: LocalStack, route: str = "") -> str:
    return f"{stack.base_url}/dashboard{'/#' + route if route else ''}"


def sign_in(page, stack: LocalStack, key: str, route: str = "") -> None:
    page.goto(dashboard_url(stack, route))
    page.fill("#api-key", key)
    page.click("form.signin-card button[type=submit]")
    page.wait_for_selector("nav.sidebar")
