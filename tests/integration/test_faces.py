"""One behavioural suite over the three faces — gRPC, REST and MCP — against a real coordinator
whose runs execute on Ray in Docker sandboxes. Each test runs once per face; the faces call the same
use cases, so they must agree on outcomes, logs, refusals and idempotency.

Also here: the README's CI example (`curl`), executed as written.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from seedbed.api.v1 import run_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator.access import Role
from seedbed.coordinator.server import running_in_thread
from tests.conftest import ADMIN_API_KEY, eventually, settings_for
from tests.unit.test_access import make_user

ROOT = Path(__file__).resolve().parents[2]
FACES = ("grpc", "rest", "mcp")

HELLO = """\
from seedbed.sdk import params
print(f"hello {params.get('who', 'nobody')}", flush=True)
"""
LONG = """\
import time
print("started", flush=True)
time.sleep(300)
"""


class Refused(Exception):
    """A face's refusal, as the domain's error code (``not_found``, ``permission_denied``, …)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Face(Protocol):
    name: str

    def run(self, scenario_id: str, params: dict[str, str], key: str = "") -> str: ...
    def state(self, run_id: str) -> str: ...
    def log_texts(self, run_id: str) -> list[str]: ...
    def scenario_ids(self) -> list[str]: ...
    def abort(self, run_id: str) -> None: ...


class GrpcFace:
    name = "grpc"

    def __init__(self, address: str, key: str) -> None:
        self._client = Client(address, api_key=key)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            raise Refused(exc.code.name.lower(), exc.details) from None

    def run(self, scenario_id: str, params: dict[str, str], key: str = "") -> str:
        return str(self._call(self._client.run, scenario_id, params, idempotency_key=key).run_id)

    def state(self, run_id: str) -> str:
        run = self._call(self._client.get_run, run_id)
        return str(run_pb2.RunState.Name(run.state)).removeprefix("RUN_STATE_")

    def log_texts(self, run_id: str) -> list[str]:
        lines = self._call(lambda: list(self._client.stream_logs(run_id, follow=False)))
        return [event.line.text for event in lines if getattr(event, "line", None) is not None]

    def scenario_ids(self) -> list[str]:
        return [s.id for s in self._call(self._client.list_scenarios)]

    def abort(self, run_id: str) -> None:
        self._call(self._client.abort, run_id, "from the face suite")


class RestFace:
    name = "rest"

    def __init__(self, address: str, key: str) -> None:
        self._http = httpx.Client(
            base_url=f"http://{address}", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def _json(self, answer: httpx.Response) -> Any:
        if answer.status_code >= 400:
            error = answer.json()["error"]
            raise Refused(error["code"], error["message"])
        return answer.json()

    def run(self, scenario_id: str, params: dict[str, str], key: str = "") -> str:
        headers = {"Idempotency-Key": key} if key else {}
        body = self._json(
            self._http.post(f"/v1/scenarios/{scenario_id}/run", json={"params": params}, headers=headers)
        )
        return str(body["fire"]["run_id"])

    def state(self, run_id: str) -> str:
        return str(self._json(self._http.get(f"/v1/runs/{run_id}"))["state"]).removeprefix("RUN_STATE_")

    def log_texts(self, run_id: str) -> list[str]:
        answer = self._http.get(f"/v1/runs/{run_id}/logs")
        if answer.status_code >= 400:
            self._json(answer)
        texts = []
        for block in answer.text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if fields.get("event") == "log":
                texts.append(httpx.Response(200, content=fields["data"]).json()["text"])
        return texts

    def scenario_ids(self) -> list[str]:
        return [s["id"] for s in self._json(self._http.get("/v1/scenarios"))["scenarios"]]

    def abort(self, run_id: str) -> None:
        self._json(self._http.post(f"/v1/runs/{run_id}/abort", json={"reason": "from the face suite"}))


class McpFace:
    name = "mcp"

    def __init__(self, address: str, key: str) -> None:
        self._url = f"http://{address}/mcp"
        self._key = key

    def _tool(self, name: str, args: dict[str, Any]) -> Any:
        import httpx2
        from mcp import Client as McpClient
        from mcp.client.streamable_http import streamable_http_client

        async def call() -> Any:
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {self._key}"}, timeout=60) as http,
                McpClient(streamable_http_client(self._url, http_client=http)) as client,
            ):
                return await client.call_tool(name, args)

        try:
            result = asyncio.run(call())
        except BaseException as exc:  # refused before any tool ran (401): an MCPError in groups
            error = _mcp_error(exc)
            if error is None:
                raise
            code, _, message = str(error).partition(": ")
            raise Refused(code, message) from None
        if result.is_error:
            text = " ".join(getattr(part, "text", "") for part in result.content)
            # "Error executing tool NAME: " (the SDK's), then "code: message" (Seedbed's).
            code, _, message = re.sub(r"^Error executing tool \w+: ", "", text).partition(": ")
            raise Refused(code.strip(), message)
        return result.structured_content

    def run(self, scenario_id: str, params: dict[str, str], key: str = "") -> str:
        args: dict[str, Any] = {"scenario_id": scenario_id, "params": params}
        if key:
            args["idempotency_key"] = key
        return str(self._tool("execute_scenario", args)["run_id"])

    def state(self, run_id: str) -> str:
        return str(self._tool("get_scenario_run", {"run_id": run_id})["state"])

    def log_texts(self, run_id: str) -> list[str]:
        return [line["text"] for line in self._tool("get_scenario_run_logs", {"run_id": run_id})["lines"]]

    def scenario_ids(self) -> list[str]:
        return [s["id"] for s in self._tool("list_scenarios", {})["scenarios"]]

    def abort(self, run_id: str) -> None:
        self._tool("abort_scenario_run", {"run_id": run_id, "reason": "from the face suite"})


def _mcp_error(exc: BaseException) -> BaseException | None:
    if type(exc).__name__ == "MCPError":
        return exc
    for inner in exc.exceptions if isinstance(exc, BaseExceptionGroup) else ():
        found = _mcp_error(inner)
        if found is not None:
            return found
    return None


@pytest.fixture(scope="module")
def live(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One real coordinator for the module (SQLite store, real Ray, real Docker), with an admin
    client and a viewer's key."""
    tmp = tmp_path_factory.mktemp("faces")
    settings = settings_for(f"sqlite+aiosqlite:///{tmp / 'seedbed.db'}", tmp)
    with (
        running_in_thread(settings) as coordinator,
        Client(coordinator.address, api_key=ADMIN_API_KEY) as admin,
    ):
        viewer_key = make_user(admin, "vic", "default", Role.VIEWER)
        yield {"coordinator": coordinator, "admin": admin, "viewer_key": viewer_key}


def face_of(live: dict[str, Any], name: str, key: str = ADMIN_API_KEY) -> Face:
    coordinator = live["coordinator"]
    if name == "grpc":
        return GrpcFace(coordinator.address, key)
    if name == "rest":
        return RestFace(coordinator.rest_address, key)
    return McpFace(coordinator.rest_address, key)


def scenario(live: dict[str, Any], script: str, **settings: Any) -> str:
    scenario_id = f"scn_{uuid.uuid4().hex[:10]}"
    live["admin"].put_scenario(scenario_id, script=script, **settings)
    return scenario_id


def ended(face: Face, run_id: str, timeout: float = 120) -> str:
    def check() -> str:
        state = face.state(run_id)
        assert state in ("SUCCESS", "WARNING", "FAILED", "ABORTED"), state
        return state

    return str(eventually(check, timeout=timeout, interval=0.3))


@pytest.mark.parametrize("face_name", FACES)
def test_a_run_with_params_succeeds_and_its_logs_are_read(live: dict[str, Any], face_name: str) -> None:
    face = face_of(live, face_name)
    scenario_id = scenario(live, HELLO)
    run_id = face.run(scenario_id, {"who": face_name})
    assert run_id.startswith("run_")
    assert ended(face, run_id) == "SUCCESS"
    assert f"hello {face_name}" in face.log_texts(run_id)
    # What the face answered is what gRPC (the contract) says.
    assert live["admin"].get_run(run_id).state == run_pb2.RUN_STATE_SUCCESS
    assert scenario_id in face.scenario_ids()


@pytest.mark.parametrize("face_name", FACES)
def test_unknown_scenario_and_run_are_not_found(live: dict[str, Any], face_name: str) -> None:
    face = face_of(live, face_name)
    for call in (
        lambda: face.run("scn_never_made", {}),
        lambda: face.state("run_never_made"),
        lambda: face.log_texts("run_never_made"),
        lambda: face.abort("run_never_made"),
    ):
        with pytest.raises(Refused) as refused:
            call()
        assert refused.value.code == "not_found", refused.value


@pytest.mark.parametrize("face_name", FACES)
def test_a_viewer_reads_but_cannot_run(live: dict[str, Any], face_name: str) -> None:
    scenario_id = scenario(live, HELLO)
    viewer = face_of(live, face_name, live["viewer_key"])
    assert scenario_id in viewer.scenario_ids()
    with pytest.raises(Refused) as refused:
        viewer.run(scenario_id, {})
    assert refused.value.code == "permission_denied"
    assert "RUNNER" in str(refused.value)
    assert live["admin"].list_runs(scenario_id) == []
    with pytest.raises(Refused) as bad_key:
        face_of(live, face_name, "sbk_0000000000000000_not-a-key").scenario_ids()
    assert bad_key.value.code == "unauthenticated", bad_key.value


@pytest.mark.parametrize("face_name", FACES)
def test_the_same_idempotency_key_answers_the_same_run(live: dict[str, Any], face_name: str) -> None:
    face = face_of(live, face_name)
    scenario_id = scenario(live, HELLO)
    key = f"ci-{uuid.uuid4().hex}"
    first = face.run(scenario_id, {"who": "once"}, key)
    assert face.run(scenario_id, {"who": "once"}, key) == first
    with pytest.raises(Refused) as refused:
        face.run(scenario_id, {"who": "twice"}, key)
    assert refused.value.code == "already_exists" and key in str(refused.value)
    assert ended(face, first) == "SUCCESS"
    assert [r.id for r in live["admin"].list_runs(scenario_id)] == [first]


@pytest.mark.parametrize("face_name", FACES)
def test_abort_stops_a_long_run(live: dict[str, Any], face_name: str) -> None:
    face = face_of(live, face_name)
    scenario_id = scenario(live, LONG)
    run_id = face.run(scenario_id, {})
    eventually(
        lambda: "started" in face.log_texts(run_id) or (_ for _ in ()).throw(AssertionError()),
        timeout=120,
        interval=0.3,
    )
    face.abort(run_id)
    assert ended(face, run_id, timeout=60) == "ABORTED"


def ci_job(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as a CI job's shell step would."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_ci_example_runs_as_written(live: dict[str, Any], tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- ci-example -->\n```sh\n(.*?)```", readme, re.S)
    assert block is not None, "the README's CI example (marked <!-- ci-example -->) is missing"
    live["admin"].put_scenario(
        "scn_orders", script='from seedbed.sdk import params\nprint("customers", params["customers"])\n'
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SEEDBED_URL": f"http://{live['coordinator'].rest_address}",
        "SEEDBED_API_KEY": ADMIN_API_KEY,
        "CI_PIPELINE_ID": "4711",
    }
    done = ci_job(block.group(1), tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = live["admin"].list_runs("scn_orders")
    assert (
        len(runs) == 1
        and runs[0].state == run_pb2.RUN_STATE_SUCCESS
        and runs[0].params["customers"] == "1000"
    )
    # A retried CI job (same pipeline id) gets the same run back.
    again = ci_job(block.group(1), tmp_path, env)
    assert again.returncode == 0, again.stderr
    assert [r.id for r in live["admin"].list_runs("scn_orders")] == [runs[0].id]
    # A failing run fails the job.
    live["admin"].put_scenario("scn_orders", script="raise SystemExit('no customers today')\n")
    env["CI_PIPELINE_ID"] = "4712"
    failed = ci_job(block.group(1), tmp_path, env)
    assert failed.returncode != 0
    assert "RUN_STATE_FAILED" in (tmp_path / "run.json").read_text()
