"""Reporters: validation, templates, webhook and e-mail delivery against local servers, retries, a
target that is down, the outcome condition, once-only delivery; and the job ids, first-error step
and step logs of a run's steps."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.cli import main
from seedbed.client import Client, ClientError
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.model import RunState
from seedbed.coordinator.reporters import FIELDS, render, render_json, run_fields, validate_reporters
from seedbed.coordinator.reporting import NO_SMTP, ReportSender, _retry_after
from seedbed.coordinator.store import ErrorInfo, RunRecord, ScenarioSettingsValue
from tests.conftest import eventually, settings_for

FINISHED = scenario_pb2.REPORTER_EVENT_RUN_FINISHED
STARTED = scenario_pb2.REPORTER_EVENT_RUN_STARTED


# -- local servers -------------------------------------------------------------------------------


@dataclass
class Hook:
    """A local webhook receiver: answers with ``statuses`` in turn (then 200), records requests."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.received.append((dict(self.headers.items()), json.loads(body)))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/seedbed?token=s3cret"
    yield state
    server.shutdown()
    server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def _coordinator(store_url: str, tmp_path: Path, **overrides: Any) -> Any:
    settings = settings_for(
        store_url,
        tmp_path,
        reporter_initial_backoff_seconds=0.01,
        reporter_max_tries=3,
        reporter_timeout_seconds=5,
        webhook_allowed_hosts=["127.0.0.1"],  # the local receivers: internal, so listed
        **overrides,
    )
    return running_in_thread(settings, FakeDispatcher())


@pytest.fixture
def reporting(store_url: str, tmp_path: Path, mailbox: tuple[Mailbox, int]) -> Iterator[tuple[Any, Client]]:
    """A coordinator (fake dispatcher) with an SMTP server and fast reporter retries."""
    smtp = f"smtp://127.0.0.1:{mailbox[1]}"
    with (
        _coordinator(
            store_url, tmp_path, smtp_url=smtp, smtp_sender="Seedbed <seedbed@ops.example>"
        ) as coord,
        Client(coord.address) as client,
    ):
        yield coord, client


def _webhook(url: str, **kw: Any) -> scenario_pb2.Reporter:
    body = kw.pop("body_template", "")
    headers = kw.pop("headers", {})
    return scenario_pb2.Reporter(
        webhook=scenario_pb2.WebhookTarget(url=url, headers=headers, body_template=body), **kw
    )


def _run(client: Client, scenario: str, script: str, reporters: list[scenario_pb2.Reporter]) -> run_pb2.Run:
    client.put_scenario(scenario, script=script, settings=scenario_pb2.ScenarioSettings(reporters=reporters))
    run_id = client.run(scenario).run_id
    return client.wait(run_id)


def _reports(client: Client, run_id: str, count: int) -> list[run_pb2.ReporterDelivery]:
    def done() -> list[run_pb2.ReporterDelivery]:
        reports = list(client.get_run(run_id).reports)
        assert len(reports) == count and all(r.status != "SENDING" for r in reports), reports
        return reports

    return eventually(done)  # type: ignore[no-any-return]


# -- validation and templates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reporter", "fragment"),
    [
        (_webhook("ftp://example.com/x"), "http:// or https://"),
        (_webhook("https://example.com/" + "a" * 2048), "at most 2048"),
        (_webhook("https://example.com", headers={"Idempotency-Key": "x"}), "set by Seedbed"),
        (_webhook("https://example.com", headers={"bad name": "x"}), "not a valid header name"),
        (_webhook("https://example.com", headers={"X-A": "a\r\nB: c"}), "no line breaks"),
        (_webhook("https://example.com", body_template='{"a": ${nope}}'), "unknown placeholder ${nope}"),
        (_webhook("https://example.com", body_template='{"a": "${run_id}"'), "not JSON"),
        (_webhook("https://example.com", body_template="cost: 5$ "), "write $$"),
        (
            scenario_pb2.Reporter(email=scenario_pb2.EmailTarget(recipients=["not-an-address"])),
            "e-mail address",
        ),
        (scenario_pb2.Reporter(email=scenario_pb2.EmailTarget()), "at least one recipient"),
        (
            scenario_pb2.Reporter(
                email=scenario_pb2.EmailTarget(recipients=[f"u{i}@x.org" for i in range(51)])
            ),
            "at most 50",
        ),
        (
            scenario_pb2.Reporter(
                email=scenario_pb2.EmailTarget(recipients=["a@x.org"], body_template="x" * (64 * 1024 + 1))
            ),
            "at most 65536",
        ),
        (
            scenario_pb2.Reporter(email=scenario_pb2.EmailTarget(recipients=["a@x.org"], sender="nobody")),
            "sender",
        ),
        (
            scenario_pb2.Reporter(
                outcomes=[run_pb2.RUN_STATE_RUNNING], webhook=scenario_pb2.WebhookTarget(url="https://x.org")
            ),
            "not a terminal state",
        ),
        (scenario_pb2.Reporter(name="no target"), "set webhook or email"),
    ],
)
def test_invalid_reporters_are_refused(reporter: scenario_pb2.Reporter, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_reporters([reporter])
    assert fragment in str(info.value)
    assert str(info.value).startswith("settings.reporters[0]")


def test_unknown_placeholder_lists_the_known_ones_and_defaults_are_filled() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_reporters(
            [
                scenario_pb2.Reporter(
                    email=scenario_pb2.EmailTarget(recipients=["a@x.org"], subject_template="${nme}")
                )
            ]
        )
    assert all(f"${{{name}}}" in str(info.value) for name in FIELDS)
    (saved,) = validate_reporters(
        [scenario_pb2.Reporter(email=scenario_pb2.EmailTarget(recipients=["Ops <ops@x.org>"]))]
    )
    assert saved["events"] == ["REPORTER_EVENT_RUN_FINISHED"]
    assert saved["active"] is True and saved["id"].startswith("rep_")


def test_invalid_reporter_over_the_api(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    settings = scenario_pb2.ScenarioSettings(
        reporters=[_webhook("https://example.com", body_template='{"x": "${outcom}"}')]
    )
    with pytest.raises(ClientError) as info:
        client.put_scenario("bad-reporter", script="print x", settings=settings)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown placeholder ${outcom}" in info.value.details and "${outcome}" in info.value.details


def _record(**kw: Any) -> RunRecord:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": "run_1",
        "scenario_id": "scn_a",
        "fire_id": "fire_1",
        "run_key": "k",
        "state": RunState.FAILED,
        "params": {},
        "script": "",
        "settings": ScenarioSettingsValue(),
        "scenario_revision": 1,
        "created_at": at,
        "started_at": at,
        "ended_at": at + timedelta(seconds=2.5),
        "error": ErrorInfo(None, "ValueError", 'bad "quote"\nsecond line', step="load"),
        "attempt_count": 1,
        "logs_truncated": False,
        "dropped_log_lines": 0,
        "warning_count": 0,
        "exit_code": 1,
        "last_sequence": 0,
        "abort_reason": None,
        "run_as": "u1",
    }
    values.update(kw)
    return RunRecord(**values)


def test_templates_render_run_fields() -> None:
    fields = run_fields(_record(), "Nightly load", "RUN_FINISHED")
    assert set(fields) == set(FIELDS)
    text = render("${scenario_name} ${outcome} in ${duration_seconds}s at step ${error_step}; $$5", fields)
    assert text == "Nightly load FAILED in 2.500s at step load; $5"
    document = render_json('{"text": "${run_id}: ${error_message}", "by": "${run_as}"}', fields)
    assert document == {"text": 'run_1: bad "quote"\nsecond line', "by": "u1"}
    assert _retry_after("3") == 3.0 and _retry_after(None) is None


# -- webhook -------------------------------------------------------------------------------------


def test_webhook_retried_after_500_and_429_then_delivered_once(
    reporting: tuple[Any, Client], hook: Hook
) -> None:
    coordinator, client = reporting
    hook.statuses = [500, 429]
    reporters = [
        _webhook(hook.url, id="hook", headers={"X-Team": "data"}),
        _webhook(
            hook.url,
            id="started",
            events=[STARTED],
            body_template='{"text": "${scenario_name} ${event} ${state}", "run": "${run_id}"}',
        ),
    ]
    run = _run(client, "hooked", "print hi", reporters)
    assert run.state == run_pb2.RUN_STATE_SUCCESS
    reports = {r.reporter_id: r for r in _reports(client, run.id, 2)}
    assert (reports["hook"].event, reports["hook"].status, reports["hook"].error) == (
        "RUN_FINISHED",
        "DELIVERED",
        "",
    )
    assert (reports["started"].event, reports["started"].status) == ("RUN_STARTED", "DELIVERED")
    assert reports["hook"].tries + reports["started"].tries == 4  # the first two were refused
    finished = [(h, b) for h, b in hook.received if h["Idempotency-Key"].endswith(":RUN_FINISHED")]
    assert {h["Idempotency-Key"] for h, _ in finished} == {f"{run.id}:hook:RUN_FINISHED"}
    headers, body = finished[-1]
    assert headers["Content-Type"] == "application/json" and headers["X-Team"] == "data"
    assert body["event"] == "RUN_FINISHED" and body["run_id"] == run.id and body["state"] == "SUCCESS"
    assert body["scenario_id"] == "scn_hooked" and body["scenario_name"] == "hooked"
    assert body["outcome"] == "SUCCESS" and body["first_error"] is None and body["duration_seconds"] >= 0
    started = [b for h, b in hook.received if h["Idempotency-Key"] == f"{run.id}:started:RUN_STARTED"]
    assert started[-1] == {"text": "hooked RUN_STARTED RUNNING", "run": run.id}

    # A second sender (another coordinator, or this one told again) finds the report taken.
    count = len(hook.received)
    record = asyncio.run_coroutine_threadsafe(coordinator.store.get_run(run.id), coordinator.loop).result()
    sender = ReportSender(coordinator.store, coordinator.settings)
    asyncio.run_coroutine_threadsafe(sender.run_finished(record), coordinator.loop).result()
    assert len(hook.received) == count
    assert [r.tries for r in client.get_run(run.id).reports if r.reporter_id == "hook"] == [
        reports["hook"].tries
    ]


def test_target_down_leaves_the_outcome_and_logs_a_warning(
    reporting: tuple[Any, Client], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, client = reporting
    caplog.set_level(logging.WARNING, logger="seedbed.coordinator.reporting")
    down = f"http://127.0.0.1:{_free_port()}/hook"
    run = _run(client, "down", "print hi", [_webhook(down, id="down")])
    assert run.state == run_pb2.RUN_STATE_SUCCESS
    (report,) = _reports(client, run.id, 1)
    assert (report.status, report.tries) == ("FAILED", 3)
    watched = [e.run for e in client._runs.WatchRuns(run_pb2.WatchRunsRequest(run_ids=[run.id]))]
    assert [(r.reporter_id, r.status) for r in watched[-1].reports] == [("down", "FAILED")]
    assert "ConnectError" in report.error and "gave up after 3 tries" in report.error
    assert client.get_run(run.id).state == run_pb2.RUN_STATE_SUCCESS

    def warned() -> bool:
        return any(
            r.levelno == logging.WARNING and run.id in r.getMessage() and "reporter down" in r.getMessage()
            for r in caplog.records
        )

    eventually(warned)
    capsys.readouterr()
    assert main(["--address", coordinator.address, "run", "show", run.id]) == 0
    shown = capsys.readouterr().out
    (row,) = [line for line in shown.splitlines() if line.startswith("down ")]
    assert row.split()[1:4] == ["RUN_FINISHED", "FAILED", "3"]
    # The error column wraps to the table's width (80 columns off a terminal).
    assert "gave up after 3 tries" in " ".join(shown.split())


def test_outcome_condition_is_honoured(reporting: tuple[Any, Client], hook: Hook) -> None:
    _, client = reporting
    only_failed = [_webhook(hook.url, id="failures", outcomes=[run_pb2.RUN_STATE_FAILED])]
    ok = _run(client, "conditional", "print fine", only_failed)
    assert ok.state == run_pb2.RUN_STATE_SUCCESS
    failed = _run(client, "conditional", "step load\nfail boom", only_failed)
    assert failed.state == run_pb2.RUN_STATE_FAILED
    (report,) = _reports(client, failed.id, 1)
    assert report.status == "DELIVERED"
    assert [b["run_id"] for _, b in hook.received] == [failed.id]  # nothing for the successful run
    assert list(client.get_run(ok.id).reports) == []
    error = hook.received[0][1]["first_error"]
    assert (error["type"], error["message"], error["step"]) == ("RuntimeError", "boom", "load")


# -- e-mail --------------------------------------------------------------------------------------


def test_email_reports_on_start_and_end(reporting: tuple[Any, Client], mailbox: tuple[Mailbox, int]) -> None:
    _, client = reporting
    box, _ = mailbox
    reporters = [
        scenario_pb2.Reporter(
            id="default-mail",
            events=[STARTED, FINISHED],
            email=scenario_pb2.EmailTarget(recipients=["ops@x.org"]),
        ),
        scenario_pb2.Reporter(
            id="team-mail",
            email=scenario_pb2.EmailTarget(
                sender="Data Team <data@team.example>",
                recipients=["a@x.org", "B <b@x.org>"],
                subject_template="${scenario_name} ended ${outcome}",
                body_template="Run ${run_id} of ${scenario_id}: ${state} (${event}); costs $$0",
            ),
        ),
    ]
    run = _run(client, "mailed", "print hi", reporters)
    reports = _reports(client, run.id, 3)
    assert {(r.reporter_id, r.event, r.status, r.tries) for r in reports} == {
        ("default-mail", "RUN_STARTED", "DELIVERED", 1),
        ("default-mail", "RUN_FINISHED", "DELIVERED", 1),
        ("team-mail", "RUN_FINISHED", "DELIVERED", 1),
    }
    eventually(lambda: len(box.messages) == 3)
    by_subject = {m["Subject"]: (rcpt, m) for rcpt, m in box.messages}
    rcpt, team = by_subject["mailed ended SUCCESS"]
    assert team["From"] == "Data Team <data@team.example>" and rcpt == ["a@x.org", "b@x.org"]
    assert team["To"] == "a@x.org, B <b@x.org>"
    assert team.get_content().strip() == f"Run {run.id} of scn_mailed: SUCCESS (RUN_FINISHED); costs $0"
    defaults = [m for rcpt, m in box.messages if rcpt == ["ops@x.org"]]
    assert {m["From"] for m in defaults} == {"Seedbed <seedbed@ops.example>"}
    assert sorted(m["Subject"] for m in defaults) == sorted(
        [
            f"[Seedbed] mailed: RUN_STARTED RUNNING ({run.id})",
            f"[Seedbed] mailed: RUN_FINISHED SUCCESS ({run.id})",
        ]
    )
    assert all(f"Run: {run.id}" in m.get_content() for m in defaults)


def test_email_without_smtp_fails_clearly(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    mail = scenario_pb2.Reporter(id="mail", email=scenario_pb2.EmailTarget(recipients=["ops@x.org"]))
    run = _run(client, "no-smtp", "print hi", [mail])
    (report,) = _reports(client, run.id, 1)
    assert (report.status, report.tries, report.error) == ("FAILED", 0, NO_SMTP)
    assert client.get_run(run.id).state == run_pb2.RUN_STATE_SUCCESS


# -- steps: job ids, the first error's step, step logs -------------------------------------------

STEPS = """\
print before
step load
print loading
batch conn_pg customers 1 1 100
batch conn_pg customers 1 2 50
end
print between
step orders
print ordering
batch conn_pg orders 2 1 10
fail orders broke
"""


def test_steps_carry_job_ids_and_the_first_error_names_its_step(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    client.put_scenario("stepped", script=STEPS)
    run = client.wait(client.run("stepped").run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert (run.first_error.message, run.first_error.step) == ("orders broke", "orders")
    task = f"fake-task-{run.id}-1"
    assert run.attempts[0].task_id == task
    assert [(s.number, s.name, s.outcome, list(s.task_ids), list(s.batch_ids)) for s in run.steps] == [
        (1, "load", "SUCCESS", [task], ["conn_pg/1/1", "conn_pg/1/2"]),
        (2, "orders", "FAILED", [task], ["conn_pg/2/1"]),
    ]
    listed = {f"{b.connection_id}/{b.call}/{b.batch}" for b in client.write_batches(run.id)}
    assert {b for s in run.steps for b in s.batch_ids} == listed

    def lines(step: str) -> list[str]:
        request = run_pb2.StreamRunLogsRequest(run_id=run.id, step=step)
        return [r.line.text for r in client._runs.StreamRunLogs(request) if r.HasField("line")]

    assert lines("load") == lines("1") == ["loading"]
    assert lines("2") == ["ordering"]
    with pytest.raises(grpc.RpcError) as info:
        lines("publish")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'publish'" in info.value.details() and "1 'load', 2 'orders'" in info.value.details()
