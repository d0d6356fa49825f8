"""The MCP face with the `mcp` client library: over streamable HTTP (the coordinator's endpoint, served
on loopback) and over stdio (`seedbed mcp`, spawned as an agent host would), against a real
coordinator with Ray and Docker sandboxes.

Only the SQLite store: the MCP face adds nothing store-specific (the use cases it calls are tested
on both), and each real run costs seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from seedbed.api.v1 import access_pb2, scenario_pb2
from seedbed.client import Client as SeedbedClient
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.faces.mcp import MAX_LISTED_SCENARIOS
from seedbed.coordinator.fakes import FakeDispatcher
from tests.conftest import ADMIN_API_KEY, ROOT, settings_for

pytestmark = pytest.mark.integration

TOOLS = {
    "execute_scenario",
    "get_scenario_run",
    "get_scenario_run_logs",
    "list_scenarios",
    "abort_scenario_run",
    "get_scenario_run_assets",
}
HELLO = (
    "from seedbed.sdk import log, params\n"
    "print('hello', params['who'])\n"
    "for i in range(int(params['lines'])):\n"
    "    print('line', i)\n"
    "log.info('done', lines=int(params['lines']))\n"
)
FAILING = "print('about to fail')\nraise ValueError('no such customer')\n"
SLEEPING = "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n"
BAD_KEY = "sbk_00000000000000ff_not-a-key-this-coordinator-issued"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"


@dataclass(frozen=True)
class Seeded:
    coordinator: Any
    viewer_key: str


@pytest.fixture
def seeded(coordinator: tuple[Any, SeedbedClient]) -> Seeded:
    """The coordinator with scenarios hello, failing and sleeping, and a viewer of project default."""
    coord, client = coordinator
    concurrent = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)
    for name, script in (("hello", HELLO), ("failing", FAILING), ("sleeping", SLEEPING)):
        client.put_scenario(name, script=script, settings=concurrent)
    client._call(client._access.CreateUser, access_pb2.CreateUserRequest(user_id="vera"))
    client._call(
        client._access.SetMembership,
        access_pb2.SetMembershipRequest(user_id="vera", project_key="default", role=access_pb2.ROLE_VIEWER),
    )
    created = client._call(client._access.CreateApiKey, access_pb2.CreateApiKeyRequest(user_id="vera"))
    return Seeded(coord, created.secret)


@pytest.fixture
def mcp_url(seeded: Seeded) -> str:
    """The coordinator's own MCP endpoint (/mcp on its REST address)."""
    return f"http://{seeded.coordinator.rest_address}/mcp"


@contextlib.asynccontextmanager
async def over_http(url: str, key: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def over_stdio(address: str, key: str, errors: Path) -> AsyncIterator[Client]:
    """`seedbed mcp` spawned with the little environment an agent host gives it."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "seedbed.cli", "mcp"],
        env={"SEEDBED_ADDRESS": address, "SEEDBED_API_KEY": key},
        cwd=str(ROOT),
    )
    with errors.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            yield client


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content)


async def test_http_runs_a_scenario_and_reads_its_logs(mcp_url: str) -> None:
    async with over_http(mcp_url, ADMIN_API_KEY) as mcp:
        listed = await mcp.list_tools()
        assert {tool.name for tool in listed.tools} == TOOLS
        assert all(tool.description and tool.output_schema for tool in listed.tools)
        execute = next(t for t in listed.tools if t.name == "execute_scenario")
        assert "scenario_id" in execute.input_schema["required"]
        assert execute.input_schema["properties"]["params"]["description"]

        scenarios = (await mcp.call_tool("list_scenarios", {})).structured_content
        assert scenarios is not None
        assert {"scn_hello", "scn_failing", "scn_sleeping"} <= {s["id"] for s in scenarios["scenarios"]}

        arguments = {"scenario_id": "hello", "params": {"who": "agent", "lines": 3}, "wait": True}
        result = await mcp.call_tool("execute_scenario", arguments)
        done = result.structured_content
        assert not result.is_error and done is not None, result.content
        assert (done["outcome"], done["state"], done["waited"], done["wait_timed_out"]) == (
            "SUCCESS",
            "SUCCESS",
            True,
            False,
        )
        run_id = done["run_id"]

        run = (await mcp.call_tool("get_scenario_run", {"run_id": run_id})).structured_content
        assert run is not None
        assert (run["state"], run["finished"], run["params"]) == (
            "SUCCESS",
            True,
            {"who": "agent", "lines": "3"},
        )

        # Page through the log two lines at a time, as an agent with a small budget would.
        lines: list[dict[str, Any]] = []
        after = 0
        while True:
            page = (
                await mcp.call_tool(
                    "get_scenario_run_logs", {"run_id": run_id, "after_sequence": after, "limit": 2}
                )
            ).structured_content
            assert page is not None and len(page["lines"]) <= 2
            lines += page["lines"]
            after = page["next_after_sequence"]
            if page["run_finished"]:
                assert page["run_state"] == "SUCCESS"
                break
        assert [line["sequence"] for line in lines] == list(range(1, len(lines) + 1))
        stdout = [line["text"] for line in lines if line["stream"] == "STDOUT"]
        assert stdout == ["hello agent", "line 0", "line 1", "line 2"]
        sdk = [line for line in lines if line["text"].startswith("done")]
        assert sdk[0]["fields"] == {"lines": 3} and sdk[0]["level"] == "info"


async def test_http_refuses_calls_without_a_valid_key(mcp_url: str) -> None:
    async with httpx2.AsyncClient() as http:
        answer = await http.post(mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "needs an API key" in answer.json()["error"]["message"]
        worker = await http.post(
            mcp_url, json={}, headers={"Authorization": "Bearer sbw_not.really-a-worker-token"}
        )
        assert worker.status_code == 403 and "worker token" in worker.json()["error"]["message"]

    for key in (None, BAD_KEY):
        # The client's connect fails with the coordinator's message (inside its task groups').
        with pytest.raises(ExceptionGroup) as refused:
            async with over_http(mcp_url, key) as mcp:
                await mcp.list_tools()
        assert refused.group_contains(MCPError, match="unauthenticated: .*API key", depth=None)


async def test_http_roles_and_bad_arguments_are_tool_errors(
    mcp_url: str, seeded: Seeded, coordinator: tuple[Any, SeedbedClient]
) -> None:
    async with over_http(mcp_url, seeded.viewer_key) as viewer:
        seen = (await viewer.call_tool("list_scenarios", {"project_key": "default"})).structured_content
        assert seen is not None and "scn_hello" in {s["id"] for s in seen["scenarios"]}
        refused = error_text(await viewer.call_tool("execute_scenario", {"scenario_id": "hello"}))
        assert "permission_denied" in refused and "RUNNER" in refused and "VIEWER" in refused

    async with over_http(mcp_url, ADMIN_API_KEY) as mcp:
        unknown = error_text(await mcp.call_tool("get_scenario_run", {"run_id": "run_nosuchrun"}))
        assert "not_found" in unknown and "run_nosuchrun" in unknown
        missing = error_text(await mcp.call_tool("execute_scenario", {"scenario_id": "nosuchscenario"}))
        assert "not_found" in missing and "nosuchscenario" in missing
        oversized = {"scenario_id": "hello", "params": {"blob": "x" * 100_000}}
        too_big = error_text(await mcp.call_tool("execute_scenario", oversized))
        assert "invalid_argument" in too_big and "params" in too_big and "limit" in too_big
        wrong_type = error_text(
            await mcp.call_tool("execute_scenario", {"scenario_id": "hello", "params": ["who"]})
        )
        assert "params" in wrong_type
        assert "limit" in error_text(
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_x", "limit": 0})
        )
        assert "run_id" in error_text(await mcp.call_tool("get_scenario_run", {}))
        assert "timeout_seconds" in error_text(
            await mcp.call_tool("execute_scenario", {"scenario_id": "hello", "timeout_seconds": -1})
        )
        # A misspelt argument is refused, not dropped (the run would go without its params).
        misspelt = error_text(
            await mcp.call_tool("execute_scenario", {"scenario_id": "hello", "param": {"who": "x"}})
        )
        assert "unknown argument 'param'" in misspelt and "params" in misspelt
        huge = error_text(
            await mcp.call_tool("get_scenario_run_logs", {"run_id": "run_x", "after_sequence": 10**30})
        )
        assert "after_sequence" in huge and "9223372036854775807" in huge
    _, client = coordinator
    assert client.list_runs() == [], "a refused call started a run"


@pytest.fixture
def crowded(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, SeedbedClient]]:
    """A coordinator with one scenario more than list_scenarios answers (its dispatcher the fake
    one: nothing runs), which allows that many puts in a minute."""
    settings = settings_for(store_url, tmp_path, scenario_puts_per_minute=MAX_LISTED_SCENARIOS + 1)
    with running_in_thread(settings, FakeDispatcher()) as coord, SeedbedClient(coord.address) as client:
        for n in range(MAX_LISTED_SCENARIOS + 1):
            client.put_scenario(f"s{n:03}", script="print('x')\n")
        yield coord, client


async def test_http_lists_at_most_200_scenarios_and_says_how_to_narrow(
    crowded: tuple[Any, SeedbedClient],
) -> None:
    coord, _ = crowded
    async with over_http(f"http://{coord.rest_address}/mcp", ADMIN_API_KEY) as mcp:
        every = (await mcp.call_tool("list_scenarios", {})).structured_content
        one = (await mcp.call_tool("list_scenarios", {"project_key": "default"})).structured_content
    assert every is not None and one is not None
    assert [s["id"] for s in every["scenarios"]] == [f"scn_s{n:03}" for n in range(MAX_LISTED_SCENARIOS)]
    assert every["truncated"] is True and "project_key" in every["hint"]
    assert one["truncated"] is True and "'default' has more" in one["hint"]


async def test_http_abort_a_running_run(mcp_url: str) -> None:
    async with over_http(mcp_url, ADMIN_API_KEY) as mcp:
        started = (await mcp.call_tool("execute_scenario", {"scenario_id": "sleeping"})).structured_content
        assert started is not None and started["state"] in ("QUEUED", "RUNNING")
        assert not started["waited"] and started["outcome"] is None
        run_id = started["run_id"]

        async def sleeping_printed() -> bool:
            page = await mcp.call_tool("get_scenario_run_logs", {"run_id": run_id})
            assert page.structured_content is not None
            return "sleeping" in [line["text"] for line in page.structured_content["lines"]]

        for _ in range(120):
            if await sleeping_printed():
                break
            await asyncio.sleep(0.5)
        aborted = await mcp.call_tool("abort_scenario_run", {"run_id": run_id, "reason": "test over"})
        answer = aborted.structured_content
        assert answer is not None and answer["already_finished"] is False
        waited = await mcp.call_tool(
            "execute_scenario",
            {"scenario_id": "sleeping", "wait": True, "timeout_seconds": 0.5, "idempotency_key": "k1"},
        )
        assert waited.structured_content is not None and waited.structured_content["wait_timed_out"]
        again = (
            await mcp.call_tool(
                "execute_scenario",
                {"scenario_id": "sleeping", "wait": True, "timeout_seconds": 0.5, "idempotency_key": "k1"},
            )
        ).structured_content
        assert again is not None and again["run_id"] == waited.structured_content["run_id"]
        await mcp.call_tool("abort_scenario_run", {"run_id": again["run_id"]})

        for _ in range(120):
            run = (await mcp.call_tool("get_scenario_run", {"run_id": run_id})).structured_content
            assert run is not None
            if run["finished"]:
                break
            await asyncio.sleep(0.5)
        assert run["state"] == "ABORTED" and "test over" in run["first_error"]["message"]
        again_abort = (await mcp.call_tool("abort_scenario_run", {"run_id": run_id})).structured_content
        assert again_abort is not None and again_abort["already_finished"] is True


async def test_stdio_runs_a_scenario_and_reports_its_error(seeded: Seeded, tmp_path: Path) -> None:
    coord = seeded.coordinator
    async with over_stdio(coord.address, ADMIN_API_KEY, tmp_path / "stderr") as mcp:
        assert {tool.name for tool in (await mcp.list_tools()).tools} == TOOLS
        result = await mcp.call_tool("execute_scenario", {"scenario_id": "failing", "wait": True})
        done = result.structured_content
        assert not result.is_error and done is not None, result.content
        assert done["outcome"] == "FAILED"
        assert done["first_error"]["type"] == "ValueError"
        assert done["first_error"]["message"] == "no such customer" and done["first_error"]["line"] == 2

        page = (await mcp.call_tool("get_scenario_run_logs", {"run_id": done["run_id"]})).structured_content
        assert page is not None and page["run_finished"] and page["run_state"] == "FAILED"
        assert "about to fail" in [line["text"] for line in page["lines"]]

        unknown = error_text(await mcp.call_tool("get_scenario_run", {"run_id": "run_nosuchrun"}))
        assert "not_found" in unknown and "run_nosuchrun" in unknown
        listed = (await mcp.call_tool("list_scenarios", {})).structured_content
        assert listed is not None and (listed["truncated"], listed["hint"]) == (False, None)
        assert {"scn_hello", "scn_failing", "scn_sleeping"} == {s["id"] for s in listed["scenarios"]}
        assert "unknown argument 'project'" in error_text(
            await mcp.call_tool("list_scenarios", {"project": "default"})
        )
        assert "limit" in error_text(
            await mcp.call_tool("get_scenario_run_logs", {"run_id": done["run_id"], "limit": "many"})
        )

    async with over_stdio(coord.address, seeded.viewer_key, tmp_path / "stderr") as viewer:
        refused = error_text(await viewer.call_tool("execute_scenario", {"scenario_id": "hello"}))
        assert "permission_denied" in refused and "RUNNER" in refused

    async with over_stdio(coord.address, BAD_KEY, tmp_path / "stderr") as stranger:
        refused = error_text(await stranger.call_tool("list_scenarios", {}))
        assert "unauthenticated" in refused and "API key" in refused


def test_readme_example_runs(mcp_url: str) -> None:
    env = {**os.environ, "SEEDBED_MCP_URL": mcp_url, "SEEDBED_API_KEY": ADMIN_API_KEY}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mcp_client.py"), "hello", "who=readme", "lines=1"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout.splitlines()
    assert output[0].startswith("SUCCESS run_")
    assert output[1:3] == ["hello readme", "line 0"]


@pytest.fixture
def with_assets(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A coordinator (its dispatcher the fake one) with a run that kept two assets, and its id."""
    settings = settings_for(store_url, tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coord, SeedbedClient(coord.address) as client:
        client.put_scenario("kept", script="asset report/summary.txt 12 customers\nasset b.txt bbbbbbbbbb")
        run_id = client.run("kept").run_id
        client.wait(run_id)
        yield coord, run_id


async def test_a_runs_assets_over_http_and_stdio_alike(with_assets: tuple[Any, str], tmp_path: Path) -> None:
    coord, run_id = with_assets
    read = {"run_id": run_id, "name": "report/summary.txt", "max_bytes": 5}
    answers = []
    async with over_http(f"http://{coord.rest_address}/mcp", ADMIN_API_KEY) as mcp:
        answers.append((await mcp.call_tool("get_scenario_run_assets", read)).structured_content)
        missing = error_text(await mcp.call_tool("get_scenario_run_assets", {"run_id": "run_nosuchrun"}))
    async with over_stdio(coord.address, ADMIN_API_KEY, tmp_path / "stderr") as mcp:
        answers.append((await mcp.call_tool("get_scenario_run_assets", read)).structured_content)
    assert answers[0] == answers[1]
    answer = answers[0]
    assert answer is not None and [a["name"] for a in answer["assets"]] == ["b.txt", "report/summary.txt"]
    assert answer["content"]["text"] == "12 cu" and answer["content"]["truncated"] is True
    assert "not_found" in missing and "run_nosuchrun" in missing
