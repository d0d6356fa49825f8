"""A gRPC client in another process, generated from the .proto files alone, runs a scenario and
streams its logs. It imports nothing of Seedbed's Python code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import grpc_tools
import pytest
from grpc_tools import protoc

from seedbed.client import Client
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

CLIENT = textwrap.dedent(
    """
    import os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    # Only the interpreter's libraries and the code generated here: no Seedbed source on the path.
    sys.path[:] = [here] + [p for p in sys.path if "python3" in p and p != here]
    import grpc
    from seedbed.api.v1 import run_pb2, run_pb2_grpc, scenario_pb2, scenario_pb2_grpc
    assert run_pb2.__file__.startswith(here), run_pb2.__file__

    channel = grpc.insecure_channel(sys.argv[1])
    # Every call carries the API key (the test session's admin key, from the environment).
    md = (("authorization", "Bearer " + os.environ["SEEDBED_API_KEY"]),)
    scenarios = scenario_pb2_grpc.ScenarioServiceStub(channel)
    runs = run_pb2_grpc.RunServiceStub(channel)
    scenarios.CreateScenario(scenario_pb2.CreateScenarioRequest(
        scenario_id="foreign", name="foreign", script="for i in range(3):\\n    print('row', i)\\n"),
        metadata=md)
    fire = runs.RunScenario(run_pb2.RunScenarioRequest(scenario_id="foreign"), metadata=md).fire
    request = run_pb2.StreamRunLogsRequest(run_id=fire.run_id, follow=True)
    for msg in runs.StreamRunLogs(request, metadata=md):
        if msg.HasField("line"):
            if msg.line.stream == run_pb2.LOG_STREAM_STDOUT:
                print("LINE", msg.line.sequence, msg.line.text)
        else:
            print("END", run_pb2.RunState.Name(msg.end.run.state))
    """
)


def test_client_generated_from_protos_alone(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    coord, _ = coordinator
    protos = tmp_path / "protos"
    shutil.copytree(ROOT / "proto" / "seedbed", protos / "seedbed", ignore=shutil.ignore_patterns("*.py*"))
    out = tmp_path / "generated"
    out.mkdir()
    sources = [str(p.relative_to(protos)) for p in (protos / "seedbed/api/v1").glob("*.proto")]
    include = Path(grpc_tools.__file__).parent / "_proto"
    assert (
        protoc.main(
            [
                "protoc",
                f"-I{protos}",
                f"-I{include}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                *sources,
            ]
        )
        == 0
    )
    (out / "client.py").write_text(CLIENT)
    # -I: isolated mode, so only the generated package is importable as "seedbed" here.
    result = subprocess.run(
        [sys.executable, "-I", "client.py", coord.address],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in lines if line.startswith("LINE")] == ["row 0", "row 1", "row 2"]
    assert lines[-1] == "END RUN_STATE_SUCCESS"
