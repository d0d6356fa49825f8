"""The shipped `FakeSandboxDriver` and the public surface of `seedbed.worker.sandbox`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

import seedbed.worker.sandbox as sandbox
from seedbed.worker.sandbox import (
    FakeSandboxDriver,
    Finished,
    Outcome,
    Output,
    SandboxDriver,
    SandboxLimits,
    SandboxRequest,
    ScriptError,
    Started,
)


def make_request(run_id: str = "run_fake") -> SandboxRequest:
    return SandboxRequest(
        run_id=run_id,
        attempt=1,
        run_key="k",
        script="print(1)",
        params={"a": "b"},
        limits=SandboxLimits(),
        deadline=datetime.now(UTC) + timedelta(minutes=1),
    )


def test_default_fake_run_succeeds_and_records_requests() -> None:
    fake = FakeSandboxDriver()
    driver: SandboxDriver = fake  # it satisfies the protocol
    events = list(driver.run(make_request()))
    assert [type(e) for e in events] == [Started, Output, Finished]
    assert events[-1].outcome is Outcome.SUCCEEDED  # type: ignore[union-attr]
    assert fake.requests[0].run_id == "run_fake"


def test_scripted_failure_and_cancel() -> None:
    error = ScriptError("ValueError", "bad", "tb", 3)
    fake = FakeSandboxDriver(
        FakeSandboxDriver.events("a", outcome=Outcome.SCRIPT_ERROR, error=error), delay=0.01
    )
    assert list(fake.run(make_request()))[-1].error == error  # type: ignore[union-attr]
    cancel = threading.Event()
    events = []
    for event in fake.run(make_request(), cancel=cancel):
        events.append(event)
        cancel.set()
    assert events[-1].outcome is Outcome.ABORTED  # type: ignore[union-attr]


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SandboxRequest(
            run_id="r",
            attempt=1,
            run_key="k",
            script="",
            params={},
            limits=SandboxLimits(),
            deadline=datetime.now(),
        )
    with pytest.raises(ValueError, match="str to str"):
        SandboxRequest(
            run_id="r",
            attempt=1,
            run_key="k",
            script="",
            params={"n": 1},  # type: ignore[dict-item]
            limits=SandboxLimits(),
            deadline=datetime.now(UTC),
        )
    with pytest.raises(ValueError):
        SandboxLimits(timeout=timedelta(0))
    request = make_request()
    with pytest.raises(TypeError):
        request.params["a"] = "c"  # type: ignore[index]


def test_limits_can_only_be_lowered() -> None:
    ceiling = SandboxLimits()
    wanted = SandboxLimits(timeout=timedelta(hours=2), memory_bytes=64 * 2**20)
    lowered = ceiling.lowered(wanted)
    assert lowered.timeout == ceiling.timeout and lowered.memory_bytes == 64 * 2**20


def test_public_surface() -> None:
    assert sorted(sandbox.__all__) == sorted(
        [
            "DockerSandboxDriver",
            "EngineUnavailableError",
            "FakeSandboxDriver",
            "Finished",
            "ImageBuildError",
            "Outcome",
            "Output",
            "OutputLine",
            "ProtocolError",
            "RequirementsError",
            "RuntimeUnavailableError",
            "SandboxDriver",
            "SandboxError",
            "SandboxEvent",
            "SandboxLimits",
            "SandboxRequest",
            "SandboxRuntime",
            "ScriptError",
            "Started",
            "remove_orphans",
        ]
    )
    assert issubclass(sandbox.ImageBuildError, sandbox.SandboxError)
    assert issubclass(sandbox.EngineUnavailableError, sandbox.SandboxError)
    assert issubclass(sandbox.RuntimeUnavailableError, sandbox.SandboxError)
