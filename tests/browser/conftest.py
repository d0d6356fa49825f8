"""Fixtures for the web console's tests: a real browser on pages a real coordinator serves.

The browser is Debian's chromium (``scripts/setup`` installs it), driven by Playwright's sync API and
launched headless from the system's binary: Playwright's own browser builds are never downloaded, so
``playwright install`` is not part of any set-up. Without chromium the tests fail in CI (``CI`` set,
as ``.ci/run`` does) and are skipped elsewhere, both saying how to install it.

- ``browser``: one chromium per test file. Not one per session: while Playwright's sync API lives, its
  event loop counts as running in the test thread (it runs in a greenlet beside the test), so
  asyncio.run() and pytest-asyncio would fail in every test file after this one on the same process.
  A browser test is a plain (sync) test function for the same reason.
- ``page`` (1280x800) and ``narrow_page`` (390x844, a phone: touch, the page's viewport meta
  honoured): a fresh browser context each. ``errors_of(page)`` (also ``page.seedbed_errors``) holds
  what went wrong in the page: console errors, uncaught exceptions, requests that got no answer or a
  server error. After the test, pass or fail, a full-page screenshot is saved under the artifacts
  folder (``SEEDBED_TEST_ARTIFACTS``, else ``.ci/artifacts``) as
  ``screenshots/<test file>/<test name>.png`` (a phone's as ``<test name>--phone.png``);
  ``shot(page, name)`` saves another one mid-test.
- ``console``: a real coordinator (real store, local Ray, Docker sandboxes) serving REST on loopback;
  ``fake_console``: the same on the fake executor, for UI tests that need no real run.
- ``sign_in(page, console)``: the console's sign-in as a person does it (the field labelled "API key",
  the button "Sign in").

Rejected: pytest-playwright's plugin (it wants its own downloaded browsers and owns the names
``page`` and ``browser`` with other meanings), and asserting "no errors" in every page's teardown (a
test of a refused key expects the console to see a 401).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from seedbed.client import Client
from seedbed.coordinator import Coordinator, running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from tests.conftest import ADMIN_API_KEY, ROOT, settings_for
from tests.integration.conftest import docker_client, ray_session

__all__ = ["ConsoleServer", "PageErrors", "docker_client", "errors_of", "ray_session", "shot", "sign_in"]

INSTALL_CHROMIUM = (
    "the browser tests drive Debian's chromium, which is not installed: run ./scripts/setup "
    "(or apt-get install chromium)"
)
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else "")
    if not found:
        if _in_ci():
            pytest.fail(INSTALL_CHROMIUM)
        pytest.skip(INSTALL_CHROMIUM)
    return found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # --no-sandbox: chromium's own sandbox needs user namespaces a CI container rarely grants; the
    # pages it opens are the console's own, on loopback.
    chromium = playwright.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox"])
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where screenshots go: ``<SEEDBED_TEST_ARTIFACTS or .ci/artifacts>/screenshots``."""
    artifacts = os.environ.get("SEEDBED_TEST_ARTIFACTS", "")
    return (Path(artifacts).resolve() if artifacts else ROOT / ".ci" / "artifacts") / "screenshots"


@dataclass
class PageErrors:
    """What went wrong in a page while a test used it, in the order it happened."""

    console_errors: list[str] = field(default_factory=list)
    """Messages the page logged with console.error, the browser's own (a 4xx or 5xx answer, a request
    that failed) included, and uncaught exceptions; each ends with the URL it is about."""
    failed_requests: list[str] = field(default_factory=list)
    """``METHOD url: why`` of requests that got no answer (refused, aborted) or a 5xx one."""

    def assert_none(self) -> None:
        assert not self.console_errors and not self.failed_requests, (
            f"the page logged errors {self.console_errors} and failed requests {self.failed_requests}"
        )


def _safe_name(name: str) -> str:
    # test_x[sqlite-a/b] → test_x-sqlite-a_b: a file name on every system, kept readable.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("[", "-").replace("]", ""))[:150] or "test"


@dataclass(frozen=True)
class _Opened:
    errors: PageErrors
    shots: Path  # the test's screenshots' path, without ".png"


_OPENED: dict[Page, _Opened] = {}  # the pages of the tests running now


def errors_of(page: Page) -> PageErrors:
    """The errors ``page`` (a ``page`` or ``narrow_page`` fixture) has recorded so far."""
    return _OPENED[page].errors


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot of ``page`` now, next to the one its test leaves at the end:
    ``screenshots/<test file>/<test name>--<name>.png``. Returns its path."""
    base = _OPENED[page].shots
    path = base.with_name(f"{base.name}--{_safe_name(name)}.png")
    page.screenshot(path=path, full_page=True)
    return path


def _record(page: Page, errors: PageErrors) -> None:
    def on_console(message: ConsoleMessage) -> None:
        url = message.location.get("url") or ""
        # Chromium asks every page's site for /favicon.ico on its own: not the page's request.
        if message.type == "error" and urlsplit(url).path != "/favicon.ico":
            errors.console_errors.append(f"{message.text} ({url or 'no location'})")

    def on_page_error(error: PlaywrightError) -> None:
        errors.console_errors.append(f"uncaught {error.name}: {error.message}")

    def on_request_failed(request: Request) -> None:
        errors.failed_requests.append(f"{request.method} {request.url}: {request.failure or 'failed'}")

    def on_response(response: Response) -> None:
        if response.status >= 500:
            errors.failed_requests.append(
                f"{response.request.method} {response.url}: {response.status} {response.status_text}"
            )

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)


@contextlib.contextmanager
def _open_page(
    browser: Browser, request: pytest.FixtureRequest, screenshot_dir: Path, *, phone: bool
) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone)
    try:
        page = context.new_page()
        folder = screenshot_dir / _safe_name(request.node.path.stem)
        folder.mkdir(parents=True, exist_ok=True)
        # A phone's screenshots are told apart from the desktop's, should one test use both.
        opened = _Opened(
            PageErrors(), folder / (_safe_name(request.node.name) + ("--phone" if phone else ""))
        )
        _OPENED[page] = opened
        page.seedbed_errors = opened.errors  # type: ignore[attr-defined]
        _record(page, opened.errors)
        try:
            yield page
        finally:
            del _OPENED[page]
            if not page.is_closed():
                page.screenshot(path=opened.shots.with_name(f"{opened.shots.name}.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, screenshot_dir: Path) -> Iterator[Page]:
    """A fresh page at 1280x800; its screenshot is saved when the test ends."""
    with _open_page(browser, request, screenshot_dir, phone=False) as opened:
        yield opened


@pytest.fixture
def narrow_page(browser: Browser, request: pytest.FixtureRequest, screenshot_dir: Path) -> Iterator[Page]:
    """A fresh page on a phone (390x844, touch); its screenshot is saved when the test ends."""
    with _open_page(browser, request, screenshot_dir, phone=True) as opened:
        yield opened


@dataclass(frozen=True)
class ConsoleServer:
    """A coordinator whose REST server serves the console: ``url`` is ``http://host:port``."""

    url: str
    coordinator: Coordinator
    client: Client
    admin_key: str


@contextlib.contextmanager
def _serving(store_url: str, tmp_path: Path, dispatcher: FakeDispatcher | None) -> Iterator[ConsoleServer]:
    settings = settings_for(store_url, tmp_path, rest_listen="127.0.0.1:0")
    with running_in_thread(settings, dispatcher) as coordinator, Client(coordinator.address) as client:
        yield ConsoleServer(f"http://{coordinator.rest_address}", coordinator, client, ADMIN_API_KEY)


@pytest.fixture
def console(ray_session: None, docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[ConsoleServer]:
    """The console of a real coordinator: a real store (SQLite: the pages do not depend on the
    store, which the rest of the suite covers on both), local Ray, Docker sandboxes."""
    with _serving(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, None) as served:
        yield served


@pytest.fixture
def fake_console(tmp_path: Path) -> Iterator[ConsoleServer]:
    """The console of a real coordinator on a SQLite store whose attempts run on the fake executor
    (no Ray, no Docker): for what the pages do, not what runs do."""
    with _serving(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, FakeDispatcher()) as served:
        yield served


def sign_in(page: Page, console: ConsoleServer, key: str | None = None) -> None:
    """Open the console and sign in with ``key`` (the admin's by default) as a person would; return
    once the sign-in form is gone. A refused key fails the test with what the page says."""
    page.goto(f"{console.url}/console/")
    page.get_by_label("API key").fill(console.admin_key if key is None else key)
    page.get_by_role("button", name="Sign in").click()
    try:
        page.get_by_label("API key").wait_for(state="hidden")
    except PlaywrightTimeoutError:
        alerts = page.get_by_role("alert").all_inner_texts()
        pytest.fail(f"the console kept its sign-in form after 'Sign in' (it says {alerts or 'nothing'})")
