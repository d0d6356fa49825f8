"""The distribution ships one namespace, ``seedbed``, split across the folders, and nothing else."""

from __future__ import annotations

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_holds_only_the_seedbed_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("seedbed-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"seedbed"}
    assert "seedbed/__init__.py" not in names  # PEP 420 namespace: no package owns "seedbed"
    for part in (
        "api/v1/run_pb2.py",
        "coordinator/server.py",
        "worker/attempt.py",
        "client/_client.py",
        "cli/_app.py",
    ):
        assert f"seedbed/{part}" in names, part
    # The sandbox image's inputs travel with the worker so a wheel install can build the image.
    assert "seedbed/worker/sandbox_images/python/Dockerfile" in names
    assert not any(n.startswith(("coordinator/", "worker/", "tests/")) for n in names)


def test_editable_install_imports_every_part() -> None:
    for module in (
        "seedbed.api.v1.scenario_pb2_grpc",
        "seedbed.api.v1.run_pb2_grpc",
        "seedbed.api.v1.attempt_pb2",
        "seedbed.coordinator",
        "seedbed.coordinator.store",
        "seedbed.worker.attempt",
        "seedbed.worker.sandbox",
        "seedbed.worker.images",
        "seedbed.client",
        "seedbed.cli",
    ):
        importlib.import_module(module)
    import seedbed

    # Every folder contributes to the one namespace package.
    paths = {Path(p).resolve().parent.name for p in seedbed.__path__}
    assert {"proto", "coordinator", "worker", "client"} <= paths


def test_public_surfaces_are_pinned() -> None:
    import seedbed.client
    import seedbed.coordinator

    assert sorted(seedbed.client.__all__) == [
        "AssetIntegrityError",
        "Client",
        "ClientError",
        "ErrorInfo",
        "FireCancelledError",
        "LogEvent",
        "NoRunError",
        "OutcomeError",
        "Project",
        "RunAsset",
        "RunDetails",
        "RunEnded",
        "RunFailedError",
        "RunTrace",
        "Scenario",
        "ScenarioListItem",
        "ScenarioRun",
        "ScenarioSettings",
        "ScenarioStatus",
        "StepDetails",
        "TraceSpan",
        "TriggerFire",
    ]
    assert sorted(seedbed.coordinator.__all__) == [
        "Coordinator",
        "CoordinatorSettings",
        "running_in_thread",
        "serve",
    ]
