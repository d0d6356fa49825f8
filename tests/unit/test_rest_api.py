"""The REST face over a real coordinator (real store, real HTTP on loopback) whose attempts run on
the fake executor: authentication, the error envelope, limits, idempotency, SSE resumption, the
scenario definitions and the OpenAPI document. The same behaviour over real runs is in
tests/integration/test_faces.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from seedbed.coordinator.access import Role
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.server import running_in_thread
from tests.conftest import ADMIN_API_KEY, eventually, settings_for
from tests.unit.test_access import make_user

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": f"Bearer {ADMIN_API_KEY}"}


@pytest.fixture
def rest(tmp_path: Path) -> Iterator[tuple[Any, httpx.Client]]:
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, max_message_bytes=1024 * 1024
    )
    with (
        running_in_thread(settings, FakeDispatcher()) as coordinator,
        httpx.Client(base_url=f"http://{coordinator.rest_address}", headers=ADMIN, timeout=30) as http,
    ):
        yield coordinator, http


def put(http: httpx.Client, scenario_id: str, script: str, **body: Any) -> httpx.Response:
    answer = http.put(f"/v1/scenarios/{scenario_id}", json={"script": script, **body})
    assert answer.status_code in (200, 201), answer.text
    return answer


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return dict(error)


def wait_run(http: httpx.Client, run_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any]:
        run = http.get(f"/v1/runs/{run_id}").json()
        assert run["state"] in (
            "RUN_STATE_SUCCESS",
            "RUN_STATE_FAILED",
            "RUN_STATE_ABORTED",
            "RUN_STATE_WARNING",
        )
        return dict(run)

    return dict(eventually(ended))


def test_missing_or_bad_key_is_401_with_www_authenticate(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer sbk_0000000000000000_nope"},
        {"Authorization": "Basic eDp5"},
    ):
        answer = http.get("/v1/runs", headers=headers)
        error = error_of(answer, 401)
        assert error["code"] == "unauthenticated"
        assert "API key" in error["message"]
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    without = httpx.get(f"{str(http.base_url).rstrip('/')}/v1/scenarios", timeout=10)
    assert error_of(without, 401)["code"] == "unauthenticated"
    # Health needs no key; nothing else is open.
    assert httpx.get(f"{str(http.base_url).rstrip('/')}/v1/healthz", timeout=10).json() == {"status": "ok"}


def test_a_role_too_low_is_403_and_runs_nothing(rest: tuple[Any, httpx.Client]) -> None:
    coordinator, http = rest
    put(http, "scn_ro", "print hi")
    from seedbed.client import Client

    with Client(coordinator.address) as admin:
        viewer_key = make_user(admin, "vera", "default", Role.VIEWER)
    viewer = {"Authorization": f"Bearer {viewer_key}"}
    error = error_of(http.post("/v1/scenarios/scn_ro/run", headers=viewer, json={}), 403)
    assert error["code"] == "permission_denied" and "RUNNER" in error["message"]
    assert http.get("/v1/scenarios/scn_ro", headers=viewer).status_code == 200
    assert http.get("/v1/runs", params={"scenario_id": "scn_ro"}).json()["runs"] == []


def test_unknown_scenario_run_and_route_are_404_in_the_envelope(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    error = error_of(http.post("/v1/scenarios/scn_missing/run", json={}), 404)
    assert error["code"] == "not_found" and error["details"] == {"kind": "scenario", "id": "scn_missing"}
    assert error_of(http.get("/v1/runs/run_missing"), 404)["details"]["id"] == "run_missing"
    assert error_of(http.get("/v1/runs/run_missing/logs"), 404)["code"] == "not_found"
    assert error_of(http.post("/v1/runs/run_missing/abort"), 404)["code"] == "not_found"
    assert error_of(http.get("/v1/nothing-here"), 404)["code"] == "not_found"
    # A scenario of another project is not found under this project's path.
    put(http, "scn_elsewhere", "print hi")
    assert (
        error_of(http.post("/v1/projects/other/scenarios/scn_elsewhere/run", json={}), 404)["code"]
        == "not_found"
    )


def test_malformed_and_oversized_bodies_name_the_problem(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    put(http, "scn_body", "print hi")
    malformed = http.post(
        "/v1/scenarios/scn_body/run", content=b'{"params": {', headers={"Content-Type": "application/json"}
    )
    assert error_of(malformed, 400)["code"] == "invalid_argument"
    wrong = error_of(http.post("/v1/scenarios/scn_body/run", json={"params": {"rows": [1, 2]}}), 400)
    assert wrong["details"]["field"].startswith("body.params.rows"), wrong
    unknown = error_of(http.post("/v1/scenarios/scn_body/run", json={"parms": {}}), 400)
    assert "parms" in unknown["message"]
    bad_key = error_of(http.post("/v1/scenarios/scn_body/run", json={"params": {"9bad": "x"}}), 400)
    assert bad_key["details"]["field"].startswith("params[")
    limit = 1024 * 1024
    big = error_of(http.post("/v1/scenarios/scn_body/run", json={"params": {"x": "y" * (limit + 10)}}), 413)
    assert big["code"] == "payload_too_large" and str(limit) in big["message"]
    assert "SEEDBED_MAX_MESSAGE_BYTES" in big["message"] and big["details"]["limit_bytes"] == limit

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"params": {"x": "'
        for _ in range(20):
            yield b"z" * 65536
        yield b'"}}'

    streamed = http.post(
        "/v1/scenarios/scn_body/run", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert error_of(streamed, 413)["code"] == "payload_too_large"
    assert http.get("/v1/runs", params={"scenario_id": "scn_body"}).json()["runs"] == []


def test_idempotency_key_answers_the_same_fire_and_refuses_another_body(
    rest: tuple[Any, httpx.Client],
) -> None:
    _coordinator, http = rest
    put(http, "scn_idem", "print hi")
    headers = {"Idempotency-Key": "ci-job-4711"}
    first = http.post("/v1/scenarios/scn_idem/run", json={"params": {"rows": 10}}, headers=headers)
    again = http.post("/v1/scenarios/scn_idem/run", json={"params": {"rows": "10"}}, headers=headers)
    assert first.status_code in (200, 202) and again.status_code in (200, 202)
    assert first.json()["fire"]["id"] == again.json()["fire"]["id"]
    assert first.json()["fire"]["params"] == {"rows": "10"}
    error = error_of(
        http.post("/v1/scenarios/scn_idem/run", json={"params": {"rows": 11}}, headers=headers), 409
    )
    assert error["code"] == "already_exists" and "ci-job-4711" in error["message"]
    assert len(http.get("/v1/runs", params={"scenario_id": "scn_idem"}).json()["runs"]) == 1


def test_run_and_wait_answers_the_finished_run(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    put(http, "scn_wait", "print one\nprint two")
    answer = http.post("/v1/scenarios/scn_wait/run?wait=true&timeout_seconds=30", json={})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["run"]["state"] == "RUN_STATE_SUCCESS"
    assert answer.headers["Location"] == f"/v1/runs/{body['run']['id']}"
    failed = http.post("/v1/scenarios/scn_wait/run", params={"wait": "true"}, json={"params": {"x": 1}})
    assert failed.json()["run"]["state"] == "RUN_STATE_SUCCESS"
    put(http, "scn_fails", "fail boom")
    broken = http.post("/v1/scenarios/scn_fails/run?wait=true", json={}).json()["run"]
    assert broken["state"] == "RUN_STATE_FAILED" and "boom" in json.dumps(broken["first_error"])


def _log_events(
    http: httpx.Client, run_id: str, headers: dict[str, str], stop_after: int | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    seen = []
    with connect_sse(
        http, "GET", f"/v1/runs/{run_id}/logs", params={"follow": "true"}, headers=headers
    ) as source:
        assert source.response.status_code == 200
        for event in source.iter_sse():
            if not event.data:  # a keep-alive comment (the decoder reports it as an empty message)
                continue
            seen.append((event.event, event.id, event.json()))
            if event.event == "end" or (stop_after is not None and len(seen) >= stop_after):
                break
    return seen


def test_an_sse_client_that_disconnects_resumes_with_no_gap_and_no_repeat(
    rest: tuple[Any, httpx.Client],
) -> None:
    _coordinator, http = rest
    script = "\n".join(
        [*(f"print line {i}" for i in range(1, 6)), "sleep 1", *(f"print line {i}" for i in range(6, 11))]
    )
    put(http, "scn_sse", script)
    run_id = http.post("/v1/scenarios/scn_sse/run", json={}).json()["fire"]["run_id"]
    first = _log_events(http, run_id, {}, stop_after=3)  # the client goes away after three lines
    assert [e for e, _id, _data in first] == ["log"] * 3
    rest_of = _log_events(http, run_id, {"Last-Event-ID": first[-1][1]})
    assert rest_of[-1][0] == "end"
    lines = [data["text"] for event, _id, data in first + rest_of if event == "log"]
    texts = [text for text in lines if text.startswith("line ")]
    assert texts == [f"line {i}" for i in range(1, 11)], lines
    sequences = [int(i) for event, i, _data in first + rest_of if event == "log"]
    assert sequences == sorted(set(sequences))
    assert rest_of[-1][2]["reason"] == "STREAM_END_REASON_RUN_FINISHED"
    assert rest_of[-1][2]["run"]["state"] == "RUN_STATE_SUCCESS"
    bad = error_of(http.get(f"/v1/runs/{run_id}/logs", headers={"Last-Event-ID": "x1"}), 400)
    assert bad["details"]["field"] == "Last-Event-ID"


def test_open_log_streams_end_with_a_shutdown_event_when_the_coordinator_stops(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path)
    events: list[str] = []
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        http = httpx.Client(base_url=f"http://{coordinator.rest_address}", headers=ADMIN, timeout=30)
        put(http, "scn_long", "print started\nsleep 60")
        run_id = http.post("/v1/scenarios/scn_long/run", json={}).json()["fire"]["run_id"]

        def follow() -> None:
            with connect_sse(http, "GET", f"/v1/runs/{run_id}/logs", params={"follow": "true"}) as source:
                events.extend(event.event for event in source.iter_sse() if event.data)

        reader = threading.Thread(target=follow)
        reader.start()
        eventually(lambda: "log" in events or (_ for _ in ()).throw(AssertionError(events)))
    reader.join(timeout=20)
    assert not reader.is_alive()
    assert events[-1] == "shutdown" and set(events[:-1]) == {"log"}, events


def test_put_and_get_scenario_definitions_with_revisions(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    created = http.put(
        "/v1/scenarios/scn_def",
        json={
            "script": "print hi",
            "name": "Def",
            "settings": {"overlap_policy": "OVERLAP_POLICY_QUEUE_ALL"},
            "expected_revision": 0,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["revision"] == "1" and created.headers["ETag"] == '"1"'
    got = http.get("/v1/scenarios/scn_def").json()
    assert got["settings"]["overlap_policy"] == "OVERLAP_POLICY_QUEUE_ALL" and got["name"] == "Def"
    again = error_of(
        http.put("/v1/scenarios/scn_def", json={"script": "print x", "expected_revision": 0}), 409
    )
    assert again["code"] == "aborted" and again["details"]["actual_revision"] == 1
    changed = http.put("/v1/scenarios/scn_def", json={"script": "print two", "expected_revision": 1})
    assert changed.status_code == 200 and changed.json()["revision"] == "2"
    stale = error_of(http.put("/v1/scenarios/scn_def", json={"name": "late", "expected_revision": 1}), 409)
    assert stale["details"] == {
        "kind": "scenario",
        "id": "scn_def",
        "expected_revision": 1,
        "actual_revision": 2,
    }
    assert http.get("/v1/scenarios/scn_def").json()["name"] == "Def"  # the stale write changed nothing
    bad = error_of(http.put("/v1/scenarios/scn_def", json={"settings": {"overlap_policy": "SOMETIMES"}}), 400)
    assert bad["details"]["field"] == "settings"
    assert (
        error_of(http.put("/v1/scenarios/scn_new", json={"name": "no script"}), 400)["details"]["field"]
        == "script"
    )
    checked = http.put(
        "/v1/scenarios/scn_def?validate_only=true", json={"name": "Checked", "expected_revision": 2}
    )
    assert checked.status_code == 200 and checked.json()["name"] == "Checked"
    assert http.get("/v1/scenarios/scn_def").json()["name"] == "Def"  # nothing written
    new = http.put("/v1/scenarios/scn_new?validate_only=true", json={"script": "print hi"})
    assert new.status_code == 200 and new.json()["id"] == "scn_new"
    invalid = http.put(
        "/v1/scenarios/scn_new?validate_only=true",
        json={"script": "x", "settings": {"timeout_seconds": 10**9}},
    )
    assert error_of(invalid, 400)["details"]["field"] == "settings.timeout_seconds"
    listed = http.get("/v1/scenarios").json()["scenarios"]
    assert [s["id"] for s in listed] == ["scn_def"]
    assert http.delete("/v1/scenarios/scn_def").status_code == 204
    assert error_of(http.get("/v1/scenarios/scn_def"), 404)["code"] == "not_found"


def test_list_and_abort_runs(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    put(http, "scn_abort", "print started\nsleep 60")
    run_id = http.post("/v1/scenarios/scn_abort/run", json={}).json()["fire"]["run_id"]
    eventually(
        lambda: (
            http.get(f"/v1/runs/{run_id}").json()["state"] == "RUN_STATE_RUNNING"
            or (_ for _ in ()).throw(AssertionError())
        )
    )
    aborted = http.post(f"/v1/runs/{run_id}/abort", json={"reason": "from CI"}).json()
    assert aborted["already_finished"] is False
    assert wait_run(http, run_id)["state"] == "RUN_STATE_ABORTED"
    again = http.post(f"/v1/runs/{run_id}/abort").json()
    assert again["already_finished"] is True
    only = http.get("/v1/runs", params={"state": "ABORTED"}).json()["runs"]
    assert [r["id"] for r in only] == [run_id]
    assert http.get("/v1/runs", params={"state": "SUCCESS"}).json()["runs"] == []
    assert error_of(http.get("/v1/runs", params={"state": "SOMETIMES"}), 400)["details"]["field"] == "state"


def test_the_openapi_document_is_served_and_committed(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    served = httpx.get(f"{str(http.base_url).rstrip('/')}/v1/openapi.json", timeout=10).json()
    committed = json.loads((ROOT / "proto" / "openapi" / "seedbed-v1.json").read_text())
    assert served == committed, "the REST API changed: run tools/openapigen.py and commit the result"
    paths = served["paths"]
    assert (
        "/v1/scenarios/{scenario_id}/run" in paths
        and "/v1/projects/{project}/scenarios/{scenario_id}/run" in paths
    )
    assert (
        served["components"]["schemas"]["seedbed.api.v1.Run"]["properties"]["state"]["enum"][1]
        == "RUN_STATE_QUEUED"
    )


def _calls(coordinator: Any, method: str, code: str) -> float:
    return float(coordinator.metrics.api_calls.labels(method, code)._value.get())


def test_a_worker_token_is_refused_and_no_body_is_read_before_the_key(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    worker = error_of(http.get("/v1/runs", headers={"Authorization": "Bearer sbw_claims.mac"}), 403)
    assert worker["code"] == "permission_denied" and "worker token" in worker["message"]
    # Authentication comes first: a malformed body without a key is 401, not 400.
    anonymous = http.post(
        "/v1/scenarios/scn_x/run",
        content=b"{not json",
        headers={"Authorization": "", "Content-Type": "application/json"},
    )
    assert error_of(anonymous, 401)["code"] == "unauthenticated"


def test_hostile_numbers_and_times_are_400_not_500(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    put(http, "scn_num", "print one")
    run_id = http.post("/v1/scenarios/scn_num/run?wait=true", json={}).json()["run"]["id"]
    for bad in ("\u00b2", "1" * 20, "9" * 5000, "-1"):
        answer = http.get(f"/v1/runs/{run_id}/logs", headers={"Last-Event-ID": bad.encode()})
        assert error_of(answer, 400)["details"]["field"] == "Last-Event-ID", bad
    huge = error_of(http.get(f"/v1/runs/{run_id}/logs", params={"after_sequence": 10**30}), 400)
    assert "after_sequence" in huge["details"]["field"]
    revision = error_of(
        http.put("/v1/scenarios/scn_num", json={"name": "x", "expected_revision": 10**30}), 400
    )
    assert "expected_revision" in revision["details"]["field"]
    negative = error_of(http.put("/v1/scenarios/scn_num", json={"name": "x", "expected_revision": -1}), 400)
    assert "expected_revision" in negative["details"]["field"]
    mixed = http.get(
        "/v1/runs",
        params={"created_after": "2026-01-01T00:00:00", "created_before": "2099-01-01T00:00:00+00:00"},
    )
    assert mixed.status_code == 200 and [r["id"] for r in mixed.json()["runs"]] == [run_id]
    assert error_of(http.get("/v1/runs", params={"page_size": 5000}), 400)["code"] == "invalid_argument"
    assert error_of(http.get("/v1/scenarios", params={"page_size": 101}), 400)["code"] == "invalid_argument"


def test_a_waiting_client_that_goes_away_stops_the_wait(rest: tuple[Any, httpx.Client]) -> None:
    coordinator, http = rest
    put(http, "scn_gone", "print started\nsleep 60")
    method = "REST POST /v1/scenarios/{scenario_id}/run"
    before = _calls(coordinator, method, "HTTP_499")
    with pytest.raises(httpx.ReadTimeout):
        http.post("/v1/scenarios/scn_gone/run?wait=true&timeout_seconds=3600", json={}, timeout=2)
    # The server notices within a second or two, not when timeout_seconds runs out.
    eventually(
        lambda: (
            _calls(coordinator, method, "HTTP_499") == before + 1 or (_ for _ in ()).throw(AssertionError())
        ),
        timeout=10,
    )


def test_concurrent_puts_of_a_new_scenario_all_succeed_once_created(rest: tuple[Any, httpx.Client]) -> None:
    coordinator, http = rest
    from concurrent.futures import ThreadPoolExecutor

    def put_once(i: int) -> httpx.Response:
        with httpx.Client(base_url=str(http.base_url), headers=ADMIN, timeout=30) as own:
            return own.put("/v1/scenarios/scn_race", json={"script": f"print {i}"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(put_once, range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
    assert http.get("/v1/scenarios/scn_race").json()["revision"] == "8"
    moved = error_of(http.put("/v1/scenarios/scn_race", json={"project_key": "other", "name": "x"}), 400)
    assert moved["details"]["field"] == "project_key" and "default" in moved["message"]
    stale = error_of(http.put("/v1/scenarios/scn_race", json={"name": "x"}, headers={"If-Match": '"3"'}), 409)
    assert stale["details"]["actual_revision"] == 8
    fresh = http.put("/v1/scenarios/scn_race", json={"name": "x"}, headers={"If-Match": '"8"'})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"9"'
    assert (
        error_of(http.put("/v1/scenarios/scn_race", json={"name": "y"}, headers={"If-Match": "soon"}), 400)[
            "details"
        ]["field"]
        == "If-Match"
    )
    from seedbed.client import Client

    with Client(coordinator.address) as admin:
        viewer = {"Authorization": f"Bearer {make_user(admin, 'vik', 'default', Role.VIEWER)}"}
    refused = http.put("/v1/scenarios/scn_race", json={"name": "z", "expected_revision": 0}, headers=viewer)
    assert error_of(refused, 403)["code"] == "permission_denied"


def test_rest_calls_are_counted_with_their_route_and_code(rest: tuple[Any, httpx.Client]) -> None:
    coordinator, http = rest
    method = "REST GET /v1/runs/{run_id}"
    before = _calls(coordinator, method, "NOT_FOUND")
    http.get("/v1/runs/run_nope")
    http.get("/v1/runs/run_nope")
    # Counted once the answer is sent: just after the client has it.
    eventually(lambda: _calls(coordinator, method, "NOT_FOUND") == before + 2 or _fail())
    http.get("/v1/runs", headers={"Authorization": "Bearer nope"})  # refused before routing
    eventually(lambda: _calls(coordinator, "REST GET /v1/runs", "UNAUTHENTICATED") == 1 or _fail())
    http.get("/v1/runs")
    eventually(lambda: _calls(coordinator, "REST GET /v1/runs", "OK") == 1 or _fail())


def _fail() -> None:
    raise AssertionError("not yet")


def test_an_anonymous_caller_never_makes_the_coordinator_read_a_body(rest: tuple[Any, httpx.Client]) -> None:
    _coordinator, http = rest
    big = b"x" * (2 * 1024 * 1024)  # over the 1 MiB limit of this coordinator
    for path in ("/v1/scenarios/scn_x/run", "/mcp"):
        anonymous = http.post(
            path, content=big, headers={"Authorization": "", "Content-Type": "application/json"}
        )
        assert anonymous.status_code == 401, (path, anonymous.text)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    # With a key, the limit answers (the MCP endpoint's too).
    for path in ("/v1/scenarios/scn_x/run", "/mcp"):
        answer = http.post(path, content=big, headers={"Content-Type": "application/json"})
        assert error_of(answer, 413)["code"] == "payload_too_large", path


def test_more_hostile_queries_and_headers(rest: tuple[Any, httpx.Client]) -> None:
    coordinator, http = rest
    for path in ("/v1/runs", "/v1/scenarios"):
        assert (
            error_of(http.get(path, params={"page_token": "\u00b2"}), 400)["details"]["field"] == "page_token"
        )
    put(http, "scn_tz", "print one")
    run = http.post("/v1/scenarios/scn_tz/run?wait=true", json={}).json()["run"]
    from datetime import datetime, timedelta, timezone

    created = datetime.fromisoformat(run["create_time"].replace("Z", "+00:00"))
    plus5, minus5 = timezone(timedelta(hours=5)), timezone(timedelta(hours=-5))
    after = (created - timedelta(hours=1)).astimezone(plus5).isoformat()
    before = (created + timedelta(hours=1)).astimezone(minus5).isoformat()
    found = http.get("/v1/runs", params={"created_after": after, "created_before": before}).json()["runs"]
    assert [r["id"] for r in found] == [run["id"]]
    later = (created + timedelta(minutes=1)).astimezone(plus5).isoformat()
    assert http.get("/v1/runs", params={"created_after": later}).json()["runs"] == []
    both = http.put(
        "/v1/scenarios/scn_tz", json={"name": "x", "expected_revision": 1}, headers={"If-Match": '"2"'}
    )
    assert error_of(both, 400)["details"]["field"] == "If-Match"
    for bad in ("*", 'W/"1"', '"1", "2"'):
        assert error_of(http.put("/v1/scenarios/scn_tz", json={"name": "x"}, headers={"If-Match": bad}), 400)
    checked = http.put("/v1/scenarios/scn_tz?validate_only=true", json={"name": "checked"})
    assert checked.status_code == 200 and "ETag" not in checked.headers
    token = "glpat-SuperSecretToken123"
    hook = {"reporters": [{"webhook": {"url": token}}]}
    refused = error_of(http.put("/v1/scenarios/scn_tz", json={"settings": hook}), 400)
    assert token not in json.dumps(refused), "a value put where a URL belongs is never repeated"
    # A method name is a label value: an unknown one is counted as OTHER, adding no series.
    http.request("FROBNICATE", "/v1/runs")
    eventually(
        lambda: (
            _calls(coordinator, "REST OTHER /v1/runs", "HTTP_405")
            + _calls(coordinator, "REST OTHER /v1/runs", "METHOD_NOT_ALLOWED")
            >= 1
            or _fail()
        )
    )
