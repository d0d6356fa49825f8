"""More of the web console in a real browser: a run's page that outlives a restart of its
coordinator, the templates' row preview, the connections' test (and their secrets kept out of the
page), saving a script over someone else's change, a run queued behind another, and a session that ends
while a page is open.

The restart tests run on a real coordinator (Ray, Docker sandboxes) brought back on the same ports,
data folder and store, as an operator restarting the service would: one stopped gracefully (in this
process: its log streams end with a ``shutdown`` event), one killed (a subprocess: its streams are
cut). The others use the fake executor, whose catalog calls (template previews, connection tests)
still run for real.

A run's log is windowed (only the lines in view are in the document), so the tests read the lines
the page holds through ``window.SeedbedConsole.logLines()`` rather than the DOM.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Any

import docker
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from tests.browser.conftest import ConsoleServer, errors_of, shot, sign_in
from tests.conftest import ADMIN_API_KEY, ROOT, eventually, sandbox_runtime, settings_for
from tests.faults.server_process import CoordinatorProcess
from tests.integration.conftest import containers_of

LINE_TIMEOUT = 120_000  # ms: a first run may wait for a sandbox to start
TICKS = 40
TICKING = f"""\
import time
for n in range(1, {TICKS + 1}):
    print(f"tick {{n}}", flush=True)
    time.sleep(0.5)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_lines(page: Page) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = page.evaluate("window.SeedbedConsole.logLines()")
    return lines


def _ticks(lines: list[dict[str, Any]], attempt: int) -> list[int]:
    return [
        int(found[1])
        for line in lines
        if line["attempt"] == attempt and (found := re.fullmatch(r"tick (\d+)", line["text"]))
    ]


def _log(page: Page) -> Locator:
    return page.get_by_role("log", name="Run log")


def _connection(page: Page) -> Locator:
    """What the run page says of its log stream: live, reconnecting…, ended."""
    return page.locator(".log-bar [role=status]")


def _follow_a_ticking_run(page: Page, origin: str, client: Client) -> str:
    """Start a run of the ticking script, open its page and return its id once a few ticks show."""
    client.put_scenario("scn_ticks", script=TICKING)
    run_id = client.run("scn_ticks").run_id
    # Signed in as sign_in() does, which wants a ConsoleServer: a subprocess coordinator is none.
    page.goto(f"{origin}/console/")
    page.get_by_label("API key").fill(ADMIN_API_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Scenarios")).to_be_visible()
    page.goto(f"{origin}/console/#/runs/{run_id}")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    expect(_log(page)).to_contain_text("tick 3", timeout=LINE_TIMEOUT)
    expect(_connection(page)).to_have_text("live")
    return run_id


def _wait_while_it_is_gone(page: Page) -> list[dict[str, Any]]:
    """The coordinator is down: the page says it is reconnecting; the lines it holds until then."""
    expect(_connection(page)).to_contain_text("reconnecting")
    before = _log_lines(page)
    shot(page, "coordinator-gone")
    return before


def _assert_the_page_carried_on(
    page: Page, client: Client, run_id: str, before: list[dict[str, Any]]
) -> None:
    """With the coordinator back: new lines arrive on the same page, the run ends there, and the
    page holds every line of the run once, in order."""
    page.wait_for_function(
        "n => window.SeedbedConsole.logLines().length > n", arg=len(before), timeout=LINE_TIMEOUT
    )
    expect(_log(page)).to_contain_text(f"tick {TICKS}", timeout=LINE_TIMEOUT)
    expect(page.locator("h1 .badge")).to_have_text("SUCCESS", timeout=LINE_TIMEOUT)
    expect(_connection(page)).to_have_text("ended")
    assert page.evaluate("window.sameDocument") is True
    expect(page.get_by_label("API key")).to_have_count(0)  # the session outlived the restart
    run = client.get_run(run_id)
    assert len(run.attempts) >= 2, "the restart came after the run had ended"
    stored = [
        {"sequence": event.line.sequence, "attempt": event.line.attempt, "text": event.line.text}
        for event in client.stream_logs(run_id, follow=False)
        if isinstance(event, LogEvent)
    ]
    shown = _log_lines(page)
    # Every line of the run once, in order: none lost over the restart, none shown twice.
    assert [line["sequence"] for line in shown] == list(range(1, len(stored) + 1))
    assert shown == stored
    assert shown[: len(before)] == before
    # A restart re-runs the script from the top in a new attempt (the store keeps the lines of both):
    # each attempt's ticks come once each, in order, and the last attempt printed all of them.
    assert len(_ticks(shown, run.attempts[0].number)) >= 3
    for attempt in {line["attempt"] for line in shown}:
        ticks = _ticks(shown, attempt)
        assert ticks == list(range(1, len(ticks) + 1)), (attempt, ticks)
    assert _ticks(shown, run.attempts[-1].number) == list(range(1, TICKS + 1))
    # What went wrong in the page is the coordinator's absence (a stream cut or a request reset by
    # the crash, requests refused until it was back), nothing else.
    absent = re.compile(r"net::(ERR_CONNECTION_(REFUSED|RESET)|ERR_INCOMPLETE_CHUNKED_ENCODING) ")
    errors = errors_of(page)
    assert all(absent.search(e) for e in errors.console_errors), errors.console_errors


def test_a_run_page_carries_on_across_a_restart_of_its_coordinator(
    page: Page, ray_session: None, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    # The same settings twice: the same ports (the page knows only its origin), data folder (the
    # session cookie's key comes from its secret key) and store (the run lives on in it).
    settings = CoordinatorSettings(
        listen=f"127.0.0.1:{_free_port()}",
        rest_listen=f"127.0.0.1:{_free_port()}",
        store_url=f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}",
        data_dir=tmp_path / "coordinator-data",
        sandbox_runtime=sandbox_runtime(),
    )
    origin = f"http://{settings.rest_listen}"
    with running_in_thread(settings) as first, Client(first.address) as client:
        assert first.rest_address == settings.rest_listen
        run_id = _follow_a_ticking_run(page, origin, client)
    # A stop ends the page's log stream with a "shutdown" event.
    before = _wait_while_it_is_gone(page)
    with running_in_thread(settings) as second, Client(second.address) as client:
        assert second.rest_address == settings.rest_listen
        _assert_the_page_carried_on(page, client, run_id, before)


def test_a_run_page_carries_on_after_its_coordinator_is_killed_and_started_again(
    page: Page, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    # A crash cuts the page's log stream without a word: the browser's own reconnects fail until
    # the coordinator is back, on the same ports and data folder (CoordinatorProcess keeps them).
    rest_listen = f"127.0.0.1:{_free_port()}"
    env = {
        "SEEDBED_REST_LISTEN": rest_listen,
        "SEEDBED_SANDBOX_RUNTIME": sandbox_runtime(),
        "SEEDBED_JANITOR_INTERVAL_SECONDS": "1",
    }
    with CoordinatorProcess(tmp_path, env) as coordinator, Client(coordinator.address) as client:
        run_id = _follow_a_ticking_run(page, f"http://{rest_listen}", client)
        coordinator.kill()
        before = _wait_while_it_is_gone(page)
        coordinator.start()
        _assert_the_page_carried_on(page, client, run_id, before)
        # The killed attempt's sandbox ran on (dockerd owns it); the janitor removes it.
        eventually(lambda: containers_of(docker_client, run_id) == [], timeout=60)


HOSTILE_TEMPLATE = """\
id: tmpl_hostile
version: 1
description: "<img src=x onerror='window.pwned = 1'>"
fields:
  id: {sequence: {start: 1}}
  note: {const: "<b>x</b>"}
"""


def test_a_template_previews_its_rows_and_shows_hostile_values_as_text(
    page: Page, fake_console: ConsoleServer
) -> None:
    fake_console.client.put_template((ROOT / "examples" / "shop" / "customer.yaml").read_text())
    fake_console.client.put_template(HOSTILE_TEMPLATE)
    sign_in(page, fake_console)
    page.get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Templates")).to_be_visible()
    expect(page.get_by_role("cell", name="Customers of the shop")).to_be_visible()
    page.get_by_role("link", name="tmpl_customer").click()
    expect(page).to_have_url(re.compile(r"#/templates/tmpl_customer$"))
    expect(page.get_by_role("heading", name="Template tmpl_customer")).to_be_visible()
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(10)
    for column in ("id", "name", "email", "city", "country", "signup_date", "vip"):
        expect(page.get_by_role("columnheader", name=column, exact=True)).to_be_visible()
    expect(rows.first.locator("td").first).to_have_text("1")
    # The source beside the rows, line by line.
    source = page.locator("pre")
    expect(source).to_contain_text("id: tmpl_customer")
    assert "  email: {faker: email, unique: true}" in source.inner_text().splitlines()
    page.get_by_label("Rows").fill("3")
    page.get_by_role("button", name="Preview").click()
    expect(rows).to_have_count(3)
    expect(rows.last.locator("td").first).to_have_text("3")
    shot(page, "customer")

    page.get_by_role("link", name="Templates").click()
    expect(page.get_by_role("cell", name="<img src=x onerror='window.pwned = 1'>")).to_be_visible()
    page.get_by_role("link", name="tmpl_hostile").click()
    expect(rows).to_have_count(10)
    expect(page.get_by_role("cell", name="<b>x</b>").first).to_be_visible()
    assert page.locator("main b, main img").count() == 0
    assert page.evaluate("window.pwned") is None
    errors_of(page).assert_none()


def test_connections_keep_their_password_out_of_the_page_and_test_says_why(
    page: Page, fake_console: ConsoleServer, pg_database: str
) -> None:
    password = "Sesame-7c1e5f-open"
    pg = connection_pb2.CONNECTION_KIND_POSTGRESQL
    fake_console.client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_down",
            kind=pg,
            url=f"postgresql://seeder:{password}@127.0.0.1:1/shop",
            description="nothing listens there",
        )
    )
    reachable = sa.make_url(pg_database).set(drivername="postgresql").render_as_string(hide_password=False)
    fake_console.client.create_connection(
        connection_pb2.CreateConnectionRequest(connection_id="conn_up", kind=pg, url=reachable)
    )
    answers: list[str] = []
    page.on("response", lambda response: answers.append(response.text()) if "/v1/" in response.url else None)
    sign_in(page, fake_console)
    page.get_by_role("link", name="Connections").click()
    down = page.get_by_role("row").filter(has_text="conn_down")
    up = page.get_by_role("row").filter(has_text="conn_up")
    expect(down).to_contain_text("postgresql")
    expect(down).to_contain_text("127.0.0.1:1")
    expect(up).to_be_visible()
    assert password not in page.content()

    page.get_by_role("button", name="Test conn_down").click()
    outcome = down.get_by_role("status")
    expect(outcome).to_contain_text("✗", timeout=30_000)
    # The reason, not only that it failed: nothing accepts connections on port 1.
    expect(outcome).to_contain_text(re.compile("refused", re.IGNORECASE))
    assert "\u240a" not in outcome.inner_text()  # a line break in the reason is no symbol
    expect(page.get_by_role("button", name="Test conn_down")).to_be_enabled()
    page.get_by_role("button", name="Test conn_up").click()
    expect(up.get_by_role("status")).to_contain_text("✓ reachable", timeout=30_000)
    shot(page, "tested")

    assert password not in page.content()
    assert answers and not any(password in answer for answer in answers)
    errors_of(page).assert_none()


ORIGINAL = 'print("one")\nprint("two")\n'
THEIRS = 'print("one")\nprint("theirs")\n'
MINE = 'print("one")\nprint("mine")\n'
THEIRS_AGAIN = 'print("theirs again")\n'
MINE_AGAIN = 'print("one")\nprint("mine again")\n'


def _type_script(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Scenario script").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


def _editor_text(page: Page) -> str:
    text: str = page.evaluate("document.querySelector('.CodeMirror').CodeMirror.getValue()")
    return text


def _background(page: Page, selector: str) -> tuple[int, ...]:
    color: str = page.locator(selector).first.evaluate("el => getComputedStyle(el).backgroundColor")
    return tuple(int(n) for n in re.findall(r"\d+", color)[:3])


def test_save_over_someone_elses_change_shows_the_diff_then_takes_theirs_or_saves_mine(
    page: Page, fake_console: ConsoleServer
) -> None:
    client = fake_console.client
    client.put_scenario("scn_shared", script=ORIGINAL)
    sign_in(page, fake_console)
    page.goto(f"{fake_console.url}/console/#/scenarios/scn_shared")
    expect(page.locator(".editor-box[data-editor=ready]")).to_be_visible()
    expect(page.locator("h1")).to_contain_text("revision 1")

    _type_script(page, MINE)
    assert _editor_text(page) == MINE
    client.put_scenario("scn_shared", script=THEIRS)  # someone else, meanwhile
    page.get_by_role("button", name="Save").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("since you opened it")
    diff = dialog.get_by_role("region", name="Differences")
    expect(diff.locator(".del")).to_have_text(['- print("theirs")'])
    expect(diff.locator(".add")).to_have_text(['+ print("mine")'])
    red, green = _background(page, "dialog .diff .del"), _background(page, "dialog .diff .add")
    assert red[0] > red[1] and green[1] > green[0], (red, green)
    shot(page, "conflict")
    dialog.get_by_role("button", name="Take theirs").click()
    expect(dialog).to_have_count(0)
    assert _editor_text(page) == THEIRS
    expect(page.locator("h1")).to_contain_text("revision 2")
    assert client.get_scenario("scn_shared").script == THEIRS

    _type_script(page, MINE_AGAIN)
    client.put_scenario("scn_shared", script=THEIRS_AGAIN)
    page.keyboard.press("Control+s")  # the Save button's shortcut, from inside the editor
    expect(dialog).to_contain_text("since you opened it")
    page.keyboard.press("Escape")  # closing the dialog saves nothing
    expect(dialog).to_have_count(0)
    assert client.get_scenario("scn_shared").script == THEIRS_AGAIN
    page.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("region", name="Differences").locator(".add")).to_have_text(
        ['+ print("one")', '+ print("mine again")']
    )
    dialog.get_by_role("button", name="Save mine over theirs").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("Saved (revision 4)")).to_be_visible()
    expect(page.locator("h1")).to_contain_text("revision 4")
    saved = client.get_scenario("scn_shared")
    assert saved.script == MINE_AGAIN and saved.revision == 4
    assert _editor_text(page) == MINE_AGAIN
    # The page's answer to a conflict is a dialog, not an error.
    assert errors_of(page).failed_requests == []


def test_a_run_queued_behind_another_opens_its_page_when_it_starts(
    page: Page, fake_console: ConsoleServer
) -> None:
    client = fake_console.client
    queue_one = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_QUEUE_ONE)
    # The fake executor's script: a line, a wait, a line. The first run waits far longer than signing
    # in and opening the page can take, however loaded the machine; it is aborted once the page
    # says the second waits behind it.
    client.put_scenario("scn_queued", script="print started\nsleep 60\nprint finished\n", settings=queue_one)
    running = client.run("scn_queued").run_id
    eventually(lambda: client.get_run(running).state == run_pb2.RUN_STATE_RUNNING)
    # A run is the scenario as it was when the run began: the queued one waits a moment only.
    client.put_scenario("scn_queued", script="print started\nsleep 1\nprint finished\n", settings=queue_one)
    sign_in(page, fake_console)
    page.goto(f"{fake_console.url}/console/#/scenarios/scn_queued")
    # Recent runs load once with the page: the first run was RUNNING before it opened.
    expect(page.get_by_role("cell", name="RUNNING")).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    # The page says what it waits behind, and waits.
    expect(
        page.get_by_text(re.compile(f"^Queued: .*{running}.*the run page opens when it starts"))
    ).to_be_visible()
    shot(page, "queued")
    assert "#/runs/" not in page.url
    # The first run ends; the queued one starts and its page opens on its own.
    client.abort(running, "the test is done with it")
    expect(page).to_have_url(re.compile(r"#/runs/run_"), timeout=30_000)
    queued = page.url.rpartition("/")[2]
    assert queued != running
    assert client.get_run(running).state == run_pb2.RUN_STATE_ABORTED
    expect(page.locator("h1 .badge")).to_have_text("SUCCESS", timeout=30_000)
    assert [line["text"] for line in _log_lines(page) if line["text"] in ("started", "finished")] == [
        "started",
        "finished",
    ]


SHORT_SESSION_SECONDS = 6  # long enough for the scenario list to load on a loaded machine


def test_a_session_that_ends_while_a_page_is_open_asks_to_sign_in_again(page: Page, tmp_path: Path) -> None:
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}",
        tmp_path,
        rest_listen="127.0.0.1:0",
        console_session_seconds=SHORT_SESSION_SECONDS,
    )
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        console = ConsoleServer(f"http://{coordinator.rest_address}", coordinator, client, ADMIN_API_KEY)
        client.put_scenario("scn_later", script="print later\n")
        sign_in(page, console)
        signed_in = time.time()  # the cookie was made before this
        expect(page).to_have_url(re.compile(r"#/scenarios$"))
        row = page.get_by_role("row").filter(has_text="scn_later")
        expect(row).to_contain_text("idle")  # every request of the page is answered
        # The session ends (its cookie's time is whole seconds) while the list is on screen.
        time.sleep(max(0.0, signed_in + SHORT_SESSION_SECONDS + 1.5 - time.time()))
        row.get_by_role("link", name="scn_later").click()
        key = page.get_by_label("API key")
        expect(key).to_be_visible()
        expect(page.get_by_role("alert").filter(has_text="session")).to_be_visible()
        expect(key).to_have_value("")
        shot(page, "session-ended")
        # What a person types stays: nothing draws the form again behind their back.
        key.press_sequentially(ADMIN_API_KEY)
        page.wait_for_timeout(12_000)
        expect(key).to_have_value(ADMIN_API_KEY)
        page.get_by_role("button", name="Sign in").click()
        expect(key).to_have_count(0)
        expect(page).to_have_url(re.compile(r"#/scenarios/scn_later$"))
        expect(page.locator("h1")).to_contain_text("revision 1")
        # The refusals were 401s the page answered with its sign-in form, not failures.
        assert errors_of(page).failed_requests == []
