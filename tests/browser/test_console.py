"""The web console in a real browser (Debian's chromium, driven by Playwright) against a real
coordinator whose runs execute on Ray in Docker sandboxes: sign in, write a scenario in the editor,
run it and watch its log arrive, a failing script's error and line, abort, a viewer's limits, hostile
output, a huge log. Every test leaves a screenshot of its page (tests/browser/conftest.py)."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.sync_api import Page, expect

from seedbed.client import Client
from seedbed.coordinator.access import Role
from tests.browser.conftest import ConsoleServer, errors_of, shot, sign_in
from tests.conftest import ADMIN_API_KEY
from tests.unit.test_access import make_user

SLOW = """\
import time
print("first line", flush=True)
time.sleep(8)
print("second line", flush=True)
"""
FAILING = """\
print("about to fail", flush=True)
values = {}
print(values["missing"])
"""
LONG = """\
import time
print("started", flush=True)
time.sleep(300)
"""
HOSTILE = """\
print("<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>", flush=True)
print("\\x1b[31mred text\\x1b[0m and a bell \\x07 and \\u202eevil", flush=True)
"""
HUGE = """\
import sys
for i in range(1, 60001):
    sys.stdout.write(f"line {i} " + "x" * 40 + "\\n")
sys.stdout.flush()
"""
LINE_TIMEOUT = 120_000  # ms: a first run may wait for a sandbox to start


def _run_page(page: Page, console: ConsoleServer, scenario_id: str, script: str) -> None:
    """Create the scenario through the API, open its page and press Run; return on the run's page."""
    console.client.put_scenario(scenario_id, script=script)
    page.goto(f"{console.url}/console/#/scenarios/{scenario_id}")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/runs/run_"), timeout=60_000)


def test_sign_in_shows_the_scenarios_and_a_wrong_key_says_why(
    page: Page, fake_console: ConsoleServer
) -> None:
    fake_console.client.put_scenario("scn_listed", script="print('hi')\n", name="Listed scenario")
    page.goto(f"{fake_console.url}/")
    page.get_by_label("API key").fill("sbk_0000000000000000_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    shot(page, "refused")
    sign_in(page, fake_console)
    expect(page.get_by_role("heading", name="Scenarios")).to_be_visible()
    expect(page.get_by_role("link", name="Listed scenario")).to_be_visible()
    expect(page.get_by_text("never run")).to_be_visible()
    # The key is nowhere the page's scripts can read it.
    assert ADMIN_API_KEY not in page.content()
    assert page.evaluate("document.cookie") == ""


def test_the_scenario_list_narrows_to_a_project(page: Page, fake_console: ConsoleServer) -> None:
    client = fake_console.client
    client.create_project("shop")
    client.put_scenario("scn_in_default", script="print('hi')\n")
    client.put_scenario("scn_in_shop", script="print('hi')\n", project_key="shop")
    sign_in(page, fake_console)
    main = page.locator("main")
    expect(main).to_contain_text("scn_in_shop")
    expect(main).to_contain_text("scn_in_default")
    page.get_by_label("Project").select_option("shop")
    expect(main).not_to_contain_text("scn_in_default")
    expect(main).to_contain_text("scn_in_shop")
    # Kept for the session: back on the list, the same project.
    page.get_by_role("link", name="Runs").click()
    page.get_by_role("link", name="Scenarios").click()
    expect(page.get_by_label("Project")).to_have_value("shop")
    expect(main).not_to_contain_text("scn_in_default")


def test_a_forged_session_cookie_leads_to_the_sign_in_page(page: Page, fake_console: ConsoleServer) -> None:
    host = fake_console.url.split("//")[1].split(":")[0]
    page.context.add_cookies([{"name": "seedbed_session", "value": "forged", "domain": host, "path": "/"}])
    page.goto(f"{fake_console.url}/console/#/scenarios")
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_role("link", name="Scenarios")).to_be_hidden()


def _evil_page(target: str) -> ThreadingHTTPServer:
    """A page of another origin that posts a form to ``target`` as soon as it loads."""

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            body = (
                f'<form id="f" method="POST" action="{target}" enctype="text/plain">'
                '<input name=\'{"params": {}, "x": "\' value=\'"}\'></form>'
                "<script>document.getElementById('f').submit()</script>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    return evil


def test_a_cross_site_form_post_changes_nothing(page: Page, fake_console: ConsoleServer) -> None:
    fake_console.client.put_scenario("scn_target", script="print('hi')\n")
    sign_in(page, fake_console)
    target = f"{fake_console.url}/v1/scenarios/scn_target/run"
    evil = _evil_page(target)
    try:
        port = evil.server_address[1]
        # Another site (localhost is not 127.0.0.1): the SameSite=Strict cookie is not even sent.
        with page.expect_response(target) as answered:
            page.goto(f"http://localhost:{port}/")
        assert answered.value.status == 401, answered.value.status
        # The same site on another port: the cookie goes along, the origin and the missing CSRF
        # token are refused.
        with page.expect_response(target) as answered:
            page.goto(f"http://127.0.0.1:{port}/")
        assert answered.value.status == 403, answered.value.status
        assert "CSRF" in answered.value.text()
    finally:
        evil.shutdown()
        evil.server_close()
    assert fake_console.client.list_runs(scenario_id="scn_target") == []


def test_write_a_scenario_in_the_editor_run_it_and_see_its_log_live(
    page: Page, console: ConsoleServer
) -> None:
    sign_in(page, console)
    page.get_by_role("link", name="New scenario").click()
    page.get_by_label("Id").fill("scn_typed")
    editor = page.get_by_role("textbox", name="Scenario script")
    expect(page.locator(".editor-box[data-editor=ready]")).to_be_visible()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("from seedbed.sdk import Seedbed\ndm = Seedbed()\ndm.")
    # Completion for the SDK after the dot.
    hints = page.locator(".CodeMirror-hints")
    expect(hints).to_be_visible()
    expect(hints).to_contain_text("connection")
    shot(page, "completion")
    page.keyboard.press("Escape")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.type(
        '\nimport time\nprint("typed first", flush=True)\ntime.sleep(8)\nprint("typed last")\n'
    )
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="scn_typed")).to_be_visible()
    saved = console.client.get_scenario("scn_typed").script
    assert 'print("typed first", flush=True)' in saved and "dm = Seedbed()" in saved
    page.keyboard.press("Control+Enter")  # the Run button's shortcut
    expect(page).to_have_url(re.compile(r"#/runs/run_"), timeout=60_000)
    log = page.get_by_role("log", name="Run log")
    # The first line shows while the run still runs (it sleeps 8 s before its last line).
    expect(log).to_contain_text("typed first", timeout=LINE_TIMEOUT)
    expect(page.locator("h1 .badge")).to_have_text(re.compile("RUNNING|QUEUED"))
    shot(page, "running")
    # The run ends while the page is open: the state changes without a reload.
    expect(page.locator("h1 .badge")).to_have_text("SUCCESS", timeout=LINE_TIMEOUT)
    expect(log).to_contain_text("typed last")
    expect(page.get_by_role("heading", name="Write batches")).to_be_visible()
    errors = errors_of(page)
    assert errors.console_errors == []
    # The page closes the log stream itself once the run has ended: the only request cut short.
    assert all("/logs?" in r and "ERR_ABORTED" in r for r in errors.failed_requests), errors.failed_requests


def test_a_failing_script_shows_its_error_and_its_line(page: Page, console: ConsoleServer) -> None:
    sign_in(page, console)
    _run_page(page, console, "scn_fails", FAILING)
    expect(page.locator("h1 .badge")).to_have_text("FAILED", timeout=LINE_TIMEOUT)
    error = page.get_by_role("region", name="First error")
    expect(error).to_contain_text("KeyError")
    expect(error).to_contain_text("line 3")
    marked = page.locator("[data-line='3'][aria-current=true]")
    expect(marked).to_contain_text('print(values["missing"])')
    expect(page.get_by_role("log", name="Run log")).to_contain_text("about to fail")


def test_abort_a_long_run_from_its_page(page: Page, console: ConsoleServer) -> None:
    sign_in(page, console)
    _run_page(page, console, "scn_long", LONG)
    expect(page.get_by_role("log", name="Run log")).to_contain_text("started", timeout=LINE_TIMEOUT)
    page.get_by_role("button", name="Abort…").click()
    page.get_by_label("Reason").fill("stopped from the console")
    shot(page, "confirm")
    page.get_by_role("button", name="Abort the run").click()
    expect(page.locator("h1 .badge")).to_have_text("ABORTED", timeout=LINE_TIMEOUT)
    expect(page.get_by_role("button", name="Abort…")).to_be_hidden()


def test_a_viewer_sees_no_run_button_and_the_server_refuses_the_call(
    page: Page, fake_console: ConsoleServer
) -> None:
    fake_console.client.put_scenario("scn_seen", script="print('hi')\n")
    with Client(fake_console.coordinator.address, api_key=ADMIN_API_KEY) as admin:
        key = make_user(admin, "vic", "default", Role.VIEWER)
    sign_in(page, fake_console, key)
    page.get_by_role("link", name="scn_seen").click()
    expect(page.get_by_role("heading", name="scn_seen")).to_be_visible()
    expect(page.get_by_text("You may read this scenario")).to_be_visible()
    expect(page.get_by_role("button", name="Run", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    # The page's own session, with its CSRF token, asking anyway: the API refuses.
    status = page.evaluate(
        """async () => {
            const me = await (await fetch('/console/session')).json();
            const answer = await fetch('/v1/scenarios/scn_seen/run', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},
                body: JSON.stringify({params: {}})});
            return answer.status;
        }"""
    )
    assert status == 403
    assert fake_console.client.list_runs(scenario_id="scn_seen") == []


def test_hostile_output_is_shown_as_text(page: Page, console: ConsoleServer) -> None:
    sign_in(page, console)
    _run_page(page, console, "scn_hostile", HOSTILE)
    log = page.get_by_role("log", name="Run log")
    expect(log).to_contain_text("<script>window.pwned = 1</script>", timeout=LINE_TIMEOUT)
    expect(log).to_contain_text("red text")
    assert page.evaluate("window.pwned") is None
    assert page.locator(".log script, .log img").count() == 0
    text = log.inner_text()
    assert "\x1b" not in text and "[31m" not in text and "\x07" not in text and "\u202e" not in text
    assert "\u2407" in text  # the bell, as a visible symbol


def test_a_huge_log_renders_only_the_lines_in_view(page: Page, console: ConsoleServer) -> None:
    sign_in(page, console)
    _run_page(page, console, "scn_huge", HUGE)
    expect(page.locator("h1 .badge")).to_have_text("SUCCESS", timeout=LINE_TIMEOUT)
    log = page.get_by_role("log", name="Run log")
    expect(page.get_by_text(re.compile(r"^60,\d{3} lines"))).to_be_visible(timeout=60_000)
    expect(log).to_contain_text("line 60000 ")
    assert page.locator(".log .line:not([hidden])").count() < 200
    follow = page.get_by_role("button", name="Follow")
    expect(follow).to_have_attribute("aria-pressed", "true")
    # The reader scrolling up stops following the end, and sees the lines there.
    log.evaluate("el => { el.scrollTop = el.scrollHeight / 2; }")
    expect(follow).to_have_attribute("aria-pressed", "false")
    expect(log).to_contain_text(re.compile(r"line 3\d{4} "))
    page.wait_for_timeout(500)  # and stays there (nothing pulls the view back to the end)
    expect(log).to_contain_text(re.compile(r"line 3\d{4} "))
    assert page.locator(".log .line:not([hidden])").count() < 200
    # Still answering: a click on another section renders at once.
    page.get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()


PAGES = (  # where, and what shows once its data has arrived
    ("#/scenarios", "scn_page"),
    ("#/scenarios/scn_page", "Recent runs"),
    ("#/runs", "No runs yet."),
    ("#/templates", "No templates yet"),
    ("#/connections", "No connections yet"),
)


def test_the_pages_fit_a_phone(narrow_page: Page, fake_console: ConsoleServer) -> None:
    fake_console.client.put_scenario("scn_page", script="print('hi')\n")
    sign_in(narrow_page, fake_console)
    for where, shown in PAGES:
        narrow_page.goto(f"{fake_console.url}/console/{where}")
        expect(narrow_page.locator("main")).to_contain_text(shown)
        width = narrow_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 392, f"{where} is {width}px wide on a 390px screen"
        shot(narrow_page, where.strip("#/").replace("/", "-"))


def test_every_request_of_the_console_stays_on_the_coordinator(
    page: Page, fake_console: ConsoleServer
) -> None:
    fake_console.client.put_scenario("scn_page", script="print('hi')\n")
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    sign_in(page, fake_console)
    for where, shown in PAGES:
        page.goto(f"{fake_console.url}/console/{where}")
        expect(page.locator("main")).to_contain_text(shown)
    expect(page.locator(".editor-box[data-editor=ready]")).to_have_count(0)
    page.goto(f"{fake_console.url}/console/#/scenarios/scn_page")
    expect(page.locator(".editor-box[data-editor=ready]")).to_be_visible()
    assert len(seen) > 10 and all(
        url.startswith(fake_console.url) or url.startswith("data:") for url in seen
    ), seen


def test_a_runs_page_lists_its_assets_to_download(page: Page, fake_console: ConsoleServer) -> None:
    script = "asset report/summary.txt 12 customers\nprint done\n"
    fake_console.client.put_scenario("scn_assets", script=script)
    sign_in(page, fake_console)
    run_id = fake_console.client.run("scn_assets").run_id
    fake_console.client.wait(run_id)
    page.goto(f"{fake_console.url}/console/#/runs/{run_id}")
    link = page.get_by_role("link", name="report/summary.txt")
    expect(link).to_be_visible()
    expect(page.locator("#run-assets")).to_contain_text("text/plain; charset=utf-8")
    with page.expect_download() as caught:
        link.click()  # with the session cookie: a GET needs nothing else
    download = caught.value
    assert download.suggested_filename == "summary.txt"
    assert download.path().read_bytes() == b"12 customers"
    shot(page, "run-assets")


def test_a_purge_shows_what_it_would_do_then_what_it_did(page: Page, fake_console: ConsoleServer) -> None:
    # The fake run writes through a connection that does not exist (skipped, with why) and keeps an
    # asset; the connection's id comes from the script: it must reach the page as text.
    script = "asset report.txt hello\nbatch conn_<img/src=x> customers 1 1 5\nprint done\n"
    fake_console.client.put_scenario("scn_purge", script=script)
    sign_in(page, fake_console)
    run_id = fake_console.client.run("scn_purge").run_id
    fake_console.client.wait(run_id)
    page.goto(f"{fake_console.url}/console/#/runs/{run_id}")
    page.get_by_role("button", name="Purge…").click()
    preview = page.get_by_role("dialog")
    expect(preview).to_contain_text("1 asset(s), 5 bytes, would be removed with the run")
    skipped = preview.get_by_role("group", name="Connections skipped")
    expect(skipped).to_contain_text("Connections it would not look at:")
    expect(skipped).to_contain_text("conn_<img/src=x>: deleted since the run")
    expect(preview.locator("img")).to_have_count(0)
    preview.get_by_role("button", name="Purge 0 rows").click()
    report = page.get_by_role("dialog")
    expect(report).to_contain_text(f"Purged what run {run_id} wrote")
    expect(report).to_contain_text("1 asset(s), 5 bytes, were removed with the run")
    expect(report.get_by_role("group", name="Connections skipped")).to_contain_text("conn_<img/src=x>")
    shot(page, "run-purged")
    report.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert fake_console.client.run_assets(run_id) == []
