"""Benchmark: the web console against the terminal, and what the console's pages weigh.

    .venv/bin/python -m tests.bench.bench_console [--runs 5] [--loads 5]

A coordinator on embedded defaults (SQLite store, local Ray, local Docker sandboxes) serving REST
and the console; Debian's chromium, headless, driven by Playwright from the system's binary (as the
browser tests do). Two tables:

1. Run to first log line (median and worst of ``--runs`` each, ms), the terminal as the baseline
   measured in the same run: one scenario whose script prints a line at once, sleeps 3 s and prints
   another, run the two ways in turn (each run waited for before the next; one of each first, not
   counted: the image, Ray's workers, the command's bytecode, the editor's files):
   - terminal: ``seedbed run submit FILE --scenario ID`` as a subprocess, from its start to the
     first stdout line holding the text (the command's start-up counts: a person waits for it);
   - console: signed in, on the scenario's page with its editor loaded, from the click on Run to
     the text in the "Run log" element, both taken in the page with ``performance.now()`` (a
     capturing click listener, a MutationObserver), so Playwright's polling adds nothing.
2. The run page of an ended run and the scenario page (which loads the editor), each opened
   ``--loads`` times in a fresh signed-in context with the browser's cache disabled (a first
   visit): requests, bytes transferred (bodies as received, so gzip counts as sent; headers left
   out) from Chrome's own network events, and time to interactive: navigation start to the moment
   the page is usable, taken in the page by a MutationObserver installed before the page's own
   script — for the run page its state badge (``h1 .badge``) and the log's last line rendered, for
   the scenario page the editor ready. Their ratio (run page ÷ scenario page) shows what the
   editor costs.

Rejected: Playwright's ``request.sizes()`` for the weight (it is asked per request after the fact and
has no figure for the log stream the page closes itself once the run has ended); timing from the
test's side with ``wait_for_function`` (its polling interval would be part of every figure).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from seedbed.api.v1 import scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.worker.images import ensure_image

SCENARIO = "scn_bench_console"
FIRST, LAST = "console bench: first line", "console bench: last line"
SCRIPT = f"""\
import time
print({FIRST!r}, flush=True)
time.sleep(3)
print({LAST!r}, flush=True)
"""
LINE_TIMEOUT_MS = 120_000  # a first run may wait for a sandbox's image and Ray's workers
_KB = 1024

# Installed in the scenario's page before the click: when the click on Run happened and when the
# first line's text was first in the run's log, both on the page's clock.
WATCH_THE_RUN = """
(text) => {
  const bench = (window.seedbedBench = {});
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button");
    if (button && button.textContent.trim() === "Run" && bench.clicked === undefined) {
      bench.clicked = performance.now();
    }
  }, true);
  new MutationObserver((records, observer) => {
    const log = document.querySelector('[role=log][aria-label="Run log"]');
    if (log && log.textContent.includes(text)) {
      bench.seen = performance.now();
      observer.disconnect();
    }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
}
"""

# Run before the page's own script (an init script): the moment READY first holds, on the page's
# clock (0 = navigation start).
WATCH_THE_LOAD = """
(() => {
  const ready = () => %s;
  window.seedbedReady = null;
  const observer = new MutationObserver(() => {
    if (window.seedbedReady === null && ready()) {
      window.seedbedReady = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, { childList: true, subtree: true, characterData: true, attributes: true });
})();
"""


def run_page_ready(state: str, last_line: str) -> str:
    return (
        f'(document.querySelector("h1 .badge") || {{}}).textContent === {json.dumps(state)} && '
        f"[...document.querySelectorAll('[role=log][aria-label=\"Run log\"] .line:not([hidden])')]"
        f".some((line) => line.textContent.endsWith({json.dumps(last_line)}))"
    )


SCENARIO_PAGE_READY = (
    'document.querySelector(".editor-box[data-editor=ready]") !== null && '
    '[...document.querySelectorAll("button")].some((b) => b.textContent.trim() === "Run")'
)


def terminal_first_line(seedbed: list[str], script: Path, env: dict[str, str]) -> float:
    """Seconds from starting ``seedbed run submit`` to its first stdout line holding FIRST; the
    command is then let run to its end (the run's)."""
    start = time.perf_counter()
    command = subprocess.Popen(
        [*seedbed, "run", "submit", str(script), "--scenario", SCENARIO],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert command.stdout is not None
    seconds = None
    for line in command.stdout:
        if seconds is None and FIRST in line:
            seconds = time.perf_counter() - start
    if command.wait() != 0 or seconds is None:
        raise AssertionError(f"seedbed run submit exited {command.returncode}, first line seen: {seconds}")
    return seconds


def sign_in(context: BrowserContext, url: str, key: str) -> None:
    """The console's sign-in call (what its form sends): the context's cookie jar gets the session."""
    answer = context.request.post(f"{url}/console/session", data={"api_key": key})
    if not answer.ok:
        raise AssertionError(f"sign-in refused: {answer.status} {answer.text()}")


def console_first_line(page: Page, url: str, client: Client) -> float:
    """Seconds from the click on Run on the scenario's page to FIRST in its run's log."""
    page.goto(f"{url}/console/#/scenarios/{SCENARIO}")
    page.locator(".editor-box[data-editor=ready]").wait_for()
    page.evaluate(WATCH_THE_RUN, FIRST)
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("() => window.seedbedBench.seen !== undefined", timeout=LINE_TIMEOUT_MS)
    clicked, seen = page.evaluate("[window.seedbedBench.clicked, window.seedbedBench.seen]")
    run_id = page.url.rsplit("/", 1)[1]
    client.wait(run_id)
    return float(seen - clicked) / 1000


@dataclass
class Load:
    """One cold load of a page: what it asked for and when it was usable."""

    requests: int = 0
    body_bytes: int = 0
    ready_ms: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)


def cold_load(browser: Browser, url: str, key: str, ready: str) -> Load:
    """Open ``url`` in a fresh signed-in context with the cache disabled; its figures."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        sign_in(context, url.split("/console/")[0], key)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        load = Load()
        kinds: dict[str, str] = {}
        headers: dict[str, int] = {}
        chunks: dict[str, int] = {}
        totals: dict[str, int] = {}

        def sent(event: dict[str, Any]) -> None:
            if event["request"]["url"].startswith("http"):
                load.requests += 1
                kinds[event["requestId"]] = event.get("type", "Other")

        def answered(event: dict[str, Any]) -> None:
            headers[event["requestId"]] = int(event["response"].get("encodedDataLength", 0))

        def chunk(event: dict[str, Any]) -> None:
            request = event["requestId"]
            chunks[request] = chunks.get(request, 0) + int(event.get("encodedDataLength", 0))

        def finished(event: dict[str, Any]) -> None:
            totals[event["requestId"]] = int(event["encodedDataLength"])

        cdp.on("Network.requestWillBeSent", sent)
        cdp.on("Network.responseReceived", answered)
        cdp.on("Network.dataReceived", chunk)
        cdp.on("Network.loadingFinished", finished)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        page.add_init_script(WATCH_THE_LOAD % ready)
        page.goto(url)
        page.wait_for_function("() => window.seedbedReady !== null", timeout=60_000)
        load.ready_ms = float(page.evaluate("window.seedbedReady"))
        page.wait_for_load_state("networkidle")
        for request in totals.keys() | chunks.keys():
            # A finished request's total as received (encoded), headers included: the body is the
            # rest. A stream the page closed itself only ever has its chunks counted.
            size = totals[request] - headers.get(request, 0) if request in totals else chunks[request]
            kind = kinds.get(request, "Other")
            load.body_bytes += size
            load.by_type[kind] = load.by_type.get(kind, 0) + size
        return load
    finally:
        context.close()


def last_line_of(client: Client, run_id: str) -> str:
    lines = [e.line.text for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent)]
    return lines[-1].rstrip("\n")


def median_load(loads: list[Load]) -> Load:
    """The figures of the load with the median time to interactive (requests and bytes hardly vary)."""
    return sorted(loads, key=lambda load: load.ready_ms)[len(loads) // 2]


def chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        sys.exit("this benchmark drives Debian's chromium: run ./scripts/setup (or apt-get install chromium)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    executable = chromium()
    ensure_image(docker.from_env())  # built beforehand: not part of any figure
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        script = data / "bench_console.py"
        script.write_text(SCRIPT)
        settings = CoordinatorSettings(
            listen="127.0.0.1:0",
            rest_listen="127.0.0.1:0",
            metrics_listen="",
            store_url=f"sqlite+aiosqlite:///{data / 'store.db'}",
            data_dir=data / "coordinator",
        )
        with running_in_thread(settings) as coordinator, sync_playwright() as driver:
            # The admin key configured, else the one the coordinator wrote at its first start.
            key = settings.admin_api_key or (data / "coordinator" / "admin-api-key").read_text().strip()
            url = f"http://{coordinator.rest_address}"
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", tmp),
                "LANG": "C.UTF-8",
                "XDG_CONFIG_HOME": str(data / "config"),
                "SEEDBED_API_KEY": key,
                "NO_COLOR": "1",
            }
            seedbed = [str(Path(sys.executable).parent / "seedbed"), "--address", coordinator.address]
            # --no-sandbox: chromium's own sandbox needs user namespaces a container rarely grants;
            # it only opens the coordinator's pages, on loopback.
            browser = driver.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
            with Client(coordinator.address, api_key=key) as client:
                client.put_scenario(
                    SCENARIO,
                    script=SCRIPT,
                    settings=scenario_pb2.ScenarioSettings(
                        overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT
                    ),
                )
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                sign_in(context, url, key)
                page = context.new_page()
                terminal_first_line(seedbed, script, env)  # warm
                console_first_line(page, url, client)
                latency: dict[str, list[float]] = {"terminal": [], "console": []}
                for _ in range(args.runs):
                    latency["terminal"].append(terminal_first_line(seedbed, script, env))
                    latency["console"].append(console_first_line(page, url, client))
                context.close()

                ended = client.list_runs(scenario_id=SCENARIO, limit=1)[0]
                pages = {
                    "run page (ended run)": (
                        f"{url}/console/#/runs/{ended.id}",
                        run_page_ready("SUCCESS", last_line_of(client, ended.id)),
                    ),
                    "scenario page (editor)": (f"{url}/console/#/scenarios/{SCENARIO}", SCENARIO_PAGE_READY),
                }
                loads: dict[str, list[Load]] = {name: [] for name in pages}
                for _ in range(args.loads):
                    for name, (address, ready) in pages.items():
                        loads[name].append(cold_load(browser, address, key, ready))
            browser.close()
    report(args, latency, loads)


def report(args: argparse.Namespace, latency: dict[str, list[float]], loads: dict[str, list[Load]]) -> None:
    base = statistics.median(latency["terminal"])
    print(f"\nRun to first log line, {args.runs} runs each, taking turns (ms)\n")
    print("| way | median | worst | × terminal (median) |")
    print("|---|---:|---:|---:|")
    for way, values in latency.items():
        median = statistics.median(values)
        label = "`seedbed run submit` (process start)" if way == "terminal" else "console (click on Run)"
        print(f"| {label} | {median * 1000:,.0f} | {max(values) * 1000:,.0f} | {median / base:.2f} |")
    run_name, scenario_name = list(loads)
    run_load, scenario_load = median_load(loads[run_name]), median_load(loads[scenario_name])
    print(
        f"\nA first visit (cache disabled), {args.loads} loads each: requests, bytes as transferred "
        "(bodies, gzip counted as sent) and time to interactive (navigation start to the state badge "
        "and the log's last line, or to the editor ready). Absolute figures; the last row is the "
        "run page ÷ the scenario page, what the editor costs.\n"
    )
    print("| page | requests | KB transferred | of it script | TTI median (ms) | TTI worst (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    figures: dict[str, dict[str, float]] = {}
    for name, load in ((run_name, run_load), (scenario_name, scenario_load)):
        times = [one.ready_ms for one in loads[name]]
        figures[name] = {
            "requests": load.requests,
            "kb": load.body_bytes / _KB,
            "tti_ms": statistics.median(times),
        }
        print(
            f"| {name} | {load.requests} | {load.body_bytes / _KB:,.1f} "
            f"| {load.by_type.get('Script', 0) / _KB:,.1f} "
            f"| {statistics.median(times):,.0f} | {max(times):,.0f} |"
        )
    run_f, scenario_f = figures[run_name], figures[scenario_name]
    print(
        f"| run page ÷ scenario page | {run_f['requests'] / scenario_f['requests']:.2f} "
        f"| {run_f['kb'] / scenario_f['kb']:.2f} | — | {run_f['tti_ms'] / scenario_f['tti_ms']:.2f} | — |"
    )
    print(
        json.dumps(
            {
                "first_line_ms": {way: statistics.median(v) * 1000 for way, v in latency.items()},
                "pages": figures,
            }
        )
    )


if __name__ == "__main__":
    main()
