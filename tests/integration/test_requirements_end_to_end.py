"""A `# requirements:` header end to end: gRPC coordinator → Ray worker → Docker sandbox.

The build's progress reaches the run's log as system lines; a bad header fails the run as a
script error with its line (no retry). Runs against both stores, like the other end-to-end tests.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
import pytest

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, LogEvent
from seedbed.worker.images import derived_image_tag, image_tag

pytestmark = pytest.mark.integration


def _run(client: Client, scenario: str, script: str) -> run_pb2.Run:
    client.put_scenario(
        scenario,
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    return client.wait(client.run(scenario, {}).run_id)


def _lines(client: Client, run_id: str) -> list[run_pb2.LogLine]:
    return [e.line for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent)]


def _exists(docker_client: docker.DockerClient, tag: str) -> bool:
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_header_packages_through_the_coordinator(
    coordinator: tuple[Any, Client], docker_client: docker.DockerClient
) -> None:
    _, client = coordinator
    built_before = _exists(docker_client, derived_image_tag(image_tag(), ["tabulate==0.9.0"]))
    script = (
        "# requirements: tabulate==0.9.0\n"
        "from tabulate import tabulate\n"
        "print(tabulate([['a', 1]], tablefmt='plain'))\n"
    )
    run = _run(client, "with-requirements", script)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, run.first_error
    lines = _lines(client, run.id)
    assert [ln.text for ln in lines if ln.stream == run_pb2.LOG_STREAM_STDOUT] == ["a  1"]
    system = [ln.text for ln in lines if ln.stream == run_pb2.LOG_STREAM_SYSTEM]
    # First use on this machine builds (and says so); afterwards the image is reused silently.
    building = [text for text in system if text.startswith("building image with 1 extra package")]
    assert len(building) == (0 if built_before else 1), system


def test_bad_header_fails_the_run_with_its_line(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    run = _run(client, "bad-requirements", "# Seeds.\n# requirements: tabulate\nimport tabulate\n")
    assert run.state == run_pb2.RUN_STATE_FAILED
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR
    assert (run.first_error.type, run.first_error.line) == ("RequirementsError", 2)
    assert "pin it: tabulate==<version>" in run.first_error.message
    assert run.attempt_count == 1
