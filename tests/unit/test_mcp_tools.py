"""The MCP tools over a fake backend, in process: arguments, answers, waits and errors, without a
coordinator (tests/integration/test_mcp.py runs them against a real one, over HTTP and stdio)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from mcp import Client

from seedbed.api.v1 import asset_pb2, dryrun_pb2, run_pb2, scenario_pb2
from seedbed.coordinator.faces.mcp import (
    MAX_ASSET_READ_BYTES,
    MAX_LISTED_SCENARIOS,
    LogPage,
    RunInfo,
    ScenarioPage,
    build_mcp_server,
    refusal,
)

MAX_SEQUENCE = 2**63 - 1  # a log sequence is an int64
RUNNING = run_pb2.Run(id="run_1", scenario_id="scn_a", fire_id="fire_1", state=run_pb2.RUN_STATE_RUNNING)
FAILED = run_pb2.Run(
    id="run_1",
    scenario_id="scn_a",
    fire_id="fire_1",
    state=run_pb2.RUN_STATE_FAILED,
    first_error=run_pb2.ErrorDetails(
        reason=run_pb2.FAILURE_REASON_SCRIPT_ERROR, type="ValueError", message="bad", line=3
    ),
)


class FakeBackend:
    """Records calls; answers a fire whose run goes RUNNING, then FAILED after ``run_seconds``."""

    def __init__(
        self,
        run_seconds: float = 0.0,
        cancelled: bool = False,
        watch_fails: bool = False,
        scenario_count: int = 1,
    ) -> None:
        self.run_seconds = run_seconds
        self.cancelled = cancelled
        self.watch_fails = watch_fails
        self.scenarios = [
            scenario_pb2.Scenario(id=f"scn_{n:04}", name=f"S{n}", project_key="default", revision=2)
            for n in range(scenario_count)
        ]
        self.calls: list[tuple[Any, ...]] = []
        self.log = [run_pb2.LogLine(sequence=n, text=f"line {n}") for n in range(1, 6)]
        self.dry_runs: list[bool] = []

    @contextlib.asynccontextmanager
    async def as_caller(self, headers: Mapping[str, str] | None) -> AsyncIterator[None]:
        self.calls.append(("as_caller", headers))
        yield

    async def run_scenario(
        self, scenario_id: str, params: Mapping[str, str], idempotency_key: str, *, dry_run: bool = False
    ) -> run_pb2.TriggerFire:
        self.calls.append(("run_scenario", scenario_id, dict(params), idempotency_key))
        self.dry_runs.append(dry_run)
        if self.cancelled:
            return run_pb2.TriggerFire(
                id="fire_1",
                scenario_id="scn_a",
                state=run_pb2.TRIGGER_FIRE_STATE_CANCELLED,
                cancel_reason="a run is active",
            )
        return run_pb2.TriggerFire(
            id="fire_1", scenario_id="scn_a", state=run_pb2.TRIGGER_FIRE_STATE_RUN_CREATED, run_id="run_1"
        )

    async def watch_fire(self, fire_id: str) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        if self.watch_fails:
            raise refusal("unavailable", "the store could not be reached")
        fire = await self.run_scenario("scn_a", {}, "")

        async def events() -> AsyncIterator[run_pb2.WatchRunsResponse]:
            yield run_pb2.WatchRunsResponse(fire=fire, done=self.cancelled)
            if self.cancelled:
                return
            yield run_pb2.WatchRunsResponse(run=RUNNING)
            await asyncio.sleep(self.run_seconds)
            yield run_pb2.WatchRunsResponse(run=FAILED, done=True)

        return events()

    async def get_run(self, run_id: str) -> run_pb2.Run:
        if run_id != "run_1":
            raise refusal("not_found", f"run {run_id!r} not found")
        return RUNNING

    async def read_logs(self, run_id: str, after_sequence: int, limit: int) -> LogPage:
        self.calls.append(("read_logs", run_id, after_sequence, limit))
        lines = [line for line in self.log if line.sequence > after_sequence]
        if len(lines) > limit:
            return LogPage(lines[:limit], None)
        end = run_pb2.StreamEnd(
            reason=run_pb2.STREAM_END_REASON_RUN_FINISHED, run=FAILED, last_sequence=len(self.log)
        )
        return LogPage(lines, end)

    async def list_scenarios(self, project_key: str, limit: int) -> ScenarioPage:
        self.calls.append(("list_scenarios", project_key, limit))
        return ScenarioPage(self.scenarios[:limit], more=len(self.scenarios) > limit)

    async def abort_run(self, run_id: str, reason: str) -> tuple[run_pb2.Run, bool]:
        self.calls.append(("abort_run", run_id, reason))
        return FAILED, True

    async def list_assets(self, run_id: str) -> list[asset_pb2.RunAsset]:
        if run_id != "run_1":
            raise refusal("not_found", f"run {run_id!r} not found")
        return [
            asset_pb2.RunAsset(name=name, size_bytes=len(data), content_type=kind, attempt=1)
            for name, (kind, data) in sorted(ASSETS.items())
        ]

    async def read_asset(self, run_id: str, name: str, max_bytes: int) -> bytes:
        self.calls.append(("read_asset", run_id, name, max_bytes))
        return ASSETS[name][1][:max_bytes]


ASSETS = {
    "report/summary.txt": ("text/plain; charset=utf-8", "héllo wörld\n".encode()),
    "old.txt": ("text/plain; charset=latin-1", "café".encode("latin-1")),
    "fixture.bin": ("application/octet-stream", b"\x00\xff" * 10),
}


def text_of(result: Any) -> str:
    assert result.is_error
    return " ".join(block.text for block in result.content)


async def test_tools_are_described_and_annotated() -> None:
    async with Client(build_mcp_server(FakeBackend())) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert set(tools) == {
        "execute_scenario",
        "get_scenario_run",
        "get_scenario_run_logs",
        "list_scenarios",
        "abort_scenario_run",
        "get_scenario_run_assets",
    }
    for tool in tools.values():
        assert tool.description and tool.output_schema
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
    assert tools["get_scenario_run"].annotations.read_only_hint
    assert tools["abort_scenario_run"].annotations.destructive_hint
    assert tools["get_scenario_run_assets"].annotations.read_only_hint


async def test_params_become_strings_and_the_wait_follows_the_run() -> None:
    backend = FakeBackend(run_seconds=0.05)
    async with Client(build_mcp_server(backend)) as mcp:
        arguments = {"scenario_id": "a", "params": {"n": 5, "ok": True, "x": 1.5, "s": "t"}, "wait": True}
        notes: list[str | None] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            notes.append(message)

        called = await mcp.call_tool("execute_scenario", arguments, progress_callback=progress)
        result = called.structured_content
    assert notes == ["run run_1 RUNNING", "run run_1 FAILED"]  # a waiting agent sees the run move
    assert backend.calls[1] == ("run_scenario", "a", {"n": "5", "ok": "true", "x": "1.5", "s": "t"}, "")
    assert backend.calls[0] == ("as_caller", None)  # in process: no HTTP request, no headers
    assert result is not None
    assert (result["outcome"], result["waited"], result["wait_timed_out"]) == ("FAILED", True, False)
    assert result["first_error"] == {
        "reason": "SCRIPT_ERROR",
        "type": "ValueError",
        "message": "bad",
        "line": 3,
        "step": None,
        "traceback": "",
    }


async def test_a_wait_that_times_out_says_so_with_the_latest_state() -> None:
    async with Client(build_mcp_server(FakeBackend(run_seconds=30))) as mcp:
        arguments = {"scenario_id": "a", "wait": True, "timeout_seconds": 0.2}
        result = (await mcp.call_tool("execute_scenario", arguments)).structured_content
    assert result is not None
    assert (result["state"], result["outcome"], result["wait_timed_out"]) == ("RUNNING", None, True)


async def test_a_refusal_during_a_wait_is_a_tool_error() -> None:
    async with Client(build_mcp_server(FakeBackend(watch_fails=True))) as mcp:
        result = await mcp.call_tool("execute_scenario", {"scenario_id": "a", "wait": True})
    assert "unavailable: the store could not be reached" in text_of(result)


async def test_a_cancelled_fire_has_no_run() -> None:
    async with Client(build_mcp_server(FakeBackend(cancelled=True))) as mcp:
        for wait in (False, True):
            result = (
                await mcp.call_tool("execute_scenario", {"scenario_id": "a", "wait": wait})
            ).structured_content
            assert result is not None
            assert (result["fire_state"], result["run_id"], result["state"]) == ("CANCELLED", None, None)
            assert result["cancel_reason"] == "a run is active"


async def test_log_pages_say_where_to_resume_and_when_nothing_more_comes() -> None:
    async with Client(build_mcp_server(FakeBackend())) as mcp:
        first = (
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_1", "limit": 3})
        ).structured_content
        assert first is not None
        assert [line["sequence"] for line in first["lines"]] == [1, 2, 3]
        assert (first["next_after_sequence"], first["caught_up"], first["run_finished"]) == (3, False, False)
        rest = (
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_1", "after_sequence": 3})
        ).structured_content
        assert rest is not None
        assert [line["sequence"] for line in rest["lines"]] == [4, 5]
        assert (rest["next_after_sequence"], rest["run_finished"], rest["run_state"]) == (5, True, "FAILED")
        after_end = (
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_1", "after_sequence": 5})
        ).structured_content
        assert after_end is not None and after_end["lines"] == [] and after_end["next_after_sequence"] == 5


async def test_refusals_and_bad_arguments_are_tool_errors() -> None:
    backend = FakeBackend()
    async with Client(build_mcp_server(backend)) as mcp:
        assert "not_found: run 'run_2' not found" in text_of(
            await mcp.call_tool("get_scenario_run", {"run_id": "run_2"})
        )
        assert "timeout_seconds" in text_of(
            await mcp.call_tool("execute_scenario", {"scenario_id": "a", "timeout_seconds": 7200})
        )
        assert "after_sequence" in text_of(
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_1", "after_sequence": -1})
        )
        assert "params" in text_of(
            await mcp.call_tool("execute_scenario", {"scenario_id": "a", "params": {"k": [1]}})
        )
        answer = (await mcp.call_tool("abort_scenario_run", {"run_id": "run_1"})).structured_content
    assert answer is not None and answer["already_finished"] is True
    assert backend.calls[-1] == ("abort_run", "run_1", "")
    assert "Unknown tool" in text_of(await _call_unknown())


async def test_an_argument_a_tool_does_not_take_is_refused_before_the_backend() -> None:
    backend = FakeBackend()
    async with Client(build_mcp_server(backend)) as mcp:
        tools = (await mcp.list_tools()).tools
        # A misspelt params would otherwise run the scenario without them.
        misspelt = {"scenario_id": "a", "param": {"who": "x"}}
        refused = text_of(await mcp.call_tool("execute_scenario", misspelt))
        for tool in tools:
            assert tool.input_schema["additionalProperties"] is False, tool.name
            arguments = {"run_id": "run_1"} if "run_id" in tool.input_schema["properties"] else {}
            extra = text_of(await mcp.call_tool(tool.name, {**arguments, "bogus": 1, "also": 2}))
            assert "unknown arguments 'bogus', 'also'" in extra, extra
            assert ", ".join(tool.input_schema["properties"]) in extra, extra
    assert "unknown argument 'param'" in refused
    assert "scenario_id, params, wait, timeout_seconds, idempotency_key" in refused
    assert [call for call in backend.calls if call[0] != "as_caller"] == []


async def test_numbers_are_bounded_in_the_schema_and_refused_past_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend()
    async with Client(build_mcp_server(backend)) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        logs = tools["get_scenario_run_logs"].input_schema["properties"]
        assert (logs["after_sequence"]["minimum"], logs["after_sequence"]["maximum"]) == (0, 2**63 - 1)
        assert (logs["limit"]["minimum"], logs["limit"]["maximum"]) == (1, 1000)
        timeout = tools["execute_scenario"].input_schema["properties"]["timeout_seconds"]
        assert (timeout["exclusiveMinimum"], timeout["maximum"]) == (0, 3600)

        huge = text_of(
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_1", "after_sequence": 10**30})
        )
        assert "after_sequence" in huge and "less than or equal to 9223372036854775807" in huge
        assert "1000" in text_of(
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_1", "limit": 1001})
        )
        long_wait = {"scenario_id": "a", "wait": True, "timeout_seconds": 3601}
        assert "less than or equal to 3600" in text_of(await mcp.call_tool("execute_scenario", long_wait))
        at_the_end = {"run_id": "run_1", "after_sequence": MAX_SEQUENCE, "limit": 1000}
        last = await mcp.call_tool("get_scenario_run_logs", at_the_end)
    assert not last.is_error and last.structured_content is not None
    assert last.structured_content["next_after_sequence"] == MAX_SEQUENCE
    assert [call for call in backend.calls if call[0] == "read_logs"] == [
        ("read_logs", "run_1", MAX_SEQUENCE, 1000)
    ]
    # Refused as the agent's mistake, not logged as a crash.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_the_scenario_list_is_capped_and_says_how_to_narrow() -> None:
    many = FakeBackend(scenario_count=MAX_LISTED_SCENARIOS + 50)
    async with Client(build_mcp_server(many)) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert str(MAX_LISTED_SCENARIOS) in (tools["list_scenarios"].description or "")
        everything = (await mcp.call_tool("list_scenarios", {})).structured_content
        one_project = (await mcp.call_tool("list_scenarios", {"project_key": "default"})).structured_content
    assert everything is not None and one_project is not None
    assert ("list_scenarios", "", MAX_LISTED_SCENARIOS) in many.calls
    assert len(everything["scenarios"]) == MAX_LISTED_SCENARIOS and everything["truncated"] is True
    assert everything["scenarios"][-1]["id"] == f"scn_{MAX_LISTED_SCENARIOS - 1:04}"
    assert "project_key" in everything["hint"] and str(MAX_LISTED_SCENARIOS) in everything["hint"]
    assert one_project["truncated"] is True and "'default' has more" in one_project["hint"]

    async with Client(build_mcp_server(FakeBackend(scenario_count=3))) as mcp:
        few = (await mcp.call_tool("list_scenarios", {})).structured_content
    assert few is not None
    assert (len(few["scenarios"]), few["truncated"], few["hint"]) == (3, False, None)


async def _call_unknown() -> Any:
    async with Client(build_mcp_server(FakeBackend())) as mcp:
        return await mcp.call_tool("drop_database", {})


def test_a_refusal_names_when_to_retry() -> None:
    assert str(refusal("resource_exhausted", "too many fires", 2.4)) == (
        "resource_exhausted: too many fires (retry after 3 s)"
    )


async def test_a_dry_run_goes_to_the_backend_and_its_report_comes_back() -> None:
    backend = FakeBackend()
    async with Client(build_mcp_server(backend)) as mcp:
        await mcp.call_tool("execute_scenario", {"scenario_id": "a", "dry_run": True})
        await mcp.call_tool("execute_scenario", {"scenario_id": "a"})
    assert backend.dry_runs == [True, False]
    problem = dryrun_pb2.DryRunProblem(
        kind=dryrun_pb2.DRY_RUN_PROBLEM_KIND_NOT_NULL, row=3, field="name", message="NULL into customers.name"
    )
    target = dryrun_pb2.DryRunTarget(
        connection_id="conn_pg",
        operation="insert",
        target="customers",
        rows=10,
        problem_count=1,
        problems=[problem],
    )
    run = run_pb2.Run(
        id="run_1", dry_run=True, dry_run_report=dryrun_pb2.DryRunReport(targets=[target], problem_count=1)
    )
    info = RunInfo.of(run)
    assert info.dry_run and info.dry_run_report is not None
    listed = info.dry_run_report["targets"][0]
    assert (listed["rows"], listed["problems"][0]["kind"], listed["problems"][0]["row"]) == (
        "10",
        "DRY_RUN_PROBLEM_KIND_NOT_NULL",
        "3",
    )
    assert RunInfo.of(run_pb2.Run(id="run_2")).dry_run_report is None


async def test_a_runs_assets_are_listed_and_a_text_one_read_within_its_bound() -> None:
    backend = FakeBackend()
    async with Client(build_mcp_server(backend)) as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        bound = tools["get_scenario_run_assets"].input_schema["properties"]["max_bytes"]
        assert (bound["minimum"], bound["maximum"]) == (1, MAX_ASSET_READ_BYTES)
        listed = (await mcp.call_tool("get_scenario_run_assets", {"run_id": "run_1"})).structured_content
        whole = (
            await mcp.call_tool("get_scenario_run_assets", {"run_id": "run_1", "name": "report/summary.txt"})
        ).structured_content
        # 'héllo' is 6 bytes in UTF-8: a cut inside 'ö' leaves the half character out.
        cut = {"run_id": "run_1", "name": "report/summary.txt", "max_bytes": 9}
        start = (await mcp.call_tool("get_scenario_run_assets", cut)).structured_content
        latin = {"run_id": "run_1", "name": "old.txt"}
        old = (await mcp.call_tool("get_scenario_run_assets", latin)).structured_content
        binary = {"run_id": "run_1", "name": "fixture.bin"}
        raw = (await mcp.call_tool("get_scenario_run_assets", binary)).structured_content
        missing = text_of(
            await mcp.call_tool("get_scenario_run_assets", {"run_id": "run_1", "name": "no.txt"})
        )
        too_much = {"run_id": "run_1", "name": "old.txt", "max_bytes": MAX_ASSET_READ_BYTES + 1}
        over = text_of(await mcp.call_tool("get_scenario_run_assets", too_much))
        unknown_run = text_of(await mcp.call_tool("get_scenario_run_assets", {"run_id": "run_2"}))
    assert listed is not None and listed["content"] is None
    assert [a["name"] for a in listed["assets"]] == ["fixture.bin", "old.txt", "report/summary.txt"]
    assert whole is not None and whole["content"] == {
        "name": "report/summary.txt",
        "text": "héllo wörld\n",
        "truncated": False,
        "note": None,
    }
    assert start is not None and start["content"]["text"] == "héllo w" and start["content"]["truncated"]
    assert (
        "the first 9 of 14 bytes" in start["content"]["note"]
        and "seedbed run download" in start["content"]["note"]
    )
    assert old is not None and old["content"]["text"] == "café"
    assert raw is not None and raw["content"]["text"] is None and "not text" in raw["content"]["note"]
    assert "not_found" in missing and "no.txt" in missing
    assert "less than or equal to 1048576" in over
    assert "not_found: run 'run_2' not found" in unknown_run
    # Only the text assets were read, each no further than asked.
    reads = [call for call in backend.calls if call[0] == "read_asset"]
    assert reads == [
        ("read_asset", "run_1", "report/summary.txt", 65536),
        ("read_asset", "run_1", "report/summary.txt", 9),
        ("read_asset", "run_1", "old.txt", 65536),
    ]
