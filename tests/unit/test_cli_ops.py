"""The operators' commands on the command line (server, image, deploy, apply, pull, mcp): refusals the
command makes itself before any work, the exit codes of an engine or a coordinator that cannot be
reached, and `deploy status` answering -o json against the real Docker engine."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import docker
import pytest
import yaml

from seedbed.cli import main
from seedbed.cli._exits import ExitCode


@pytest.fixture(autouse=True)
def _no_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No profile and no address from the environment: each test names what it talks to."""
    monkeypatch.setenv("SEEDBED_CONFIG_FILE", str(tmp_path / "profiles.yaml"))
    monkeypatch.delenv("SEEDBED_ADDRESS", raising=False)
    monkeypatch.delenv("SEEDBED_PROFILE", raising=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_setting_the_coordinator_cannot_take_is_said_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEEDBED_LEASE_SECONDS", "soon")
    code, out, err = _run(capsys, "server", "--migrate-only")
    assert code == ExitCode.USAGE and out == ""
    assert err.startswith("seedbed: the coordinator did not start:") and "lease_seconds" in err
    assert "Traceback" not in err


def test_a_store_that_cannot_be_reached_exits_1_not_usage(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SEEDBED_DATA_DIR", str(tmp_path / "data"))
    nowhere = "postgresql+psycopg://seedbed:pw-hidden-42@127.0.0.1:9/seedbed"  # nothing listens on port 9
    argv = ["server", "--store-url", nowhere, "--listen", "127.0.0.1:0"]
    code, out, err = _run(capsys, *argv, "--metrics-listen", "", "--rest-listen", "")
    assert code == ExitCode.FAILED and out == ""
    assert err.startswith("seedbed: the coordinator did not start: cannot open the store at")
    assert "pw-hidden-42" not in err  # the URL is said without its password


def test_deploy_status_answers_json_and_yaml_from_docker(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = f"seedbedtest{uuid.uuid4().hex[:8]}"
    engine = docker.from_env()
    env_file = tmp_path / "cluster.env"
    env_file.write_text("SEEDBED_PORT=7001\nSEEDBED_REST_PORT=7002\n")
    # A stopped container labelled as the project's store service: what compose would have made.
    image = next(iter(engine.images.list()), None)
    assert image is not None, "the test needs one image in the engine"
    made = engine.containers.create(
        image.id,
        command=["true"],
        name=f"{project}-store-1",
        labels={"com.docker.compose.project": project, "com.docker.compose.service": "store"},
    )
    try:
        args = ("deploy", "status", "--project", project, "--env-file", str(env_file))
        code, out, err = _run(capsys, *args, "-o", "json")
        assert code == 0, err
        answer = json.loads(out)
        assert answer == {
            "project": project,
            "env_file": str(env_file),
            "containers": [
                {"service": "store", "name": f"{project}-store-1", "state": "created", "status": "created"}
            ],
            "endpoints": {
                "grpc": "127.0.0.1:7001",
                "rest": "http://127.0.0.1:7002/v1",
                "mcp": "http://127.0.0.1:7002/mcp",
                "metrics": "http://127.0.0.1:59464/metrics",
            },
        }
        code, out, _ = _run(capsys, "-o", "yaml", *args)
        assert code == 0 and yaml.safe_load(out) == answer
        code, out, _ = _run(capsys, *args)
        assert code == 0
        assert f"{project}-store-1" in out and "created" in out
        assert "REST API   http://127.0.0.1:7002/v1" in out and "\x1b" not in out
    finally:
        made.remove(force=True)


def test_an_engine_that_cannot_be_reached_exits_7(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nowhere = f"unix://{tmp_path / 'no-docker.sock'}"
    code, out, err = _run(capsys, "deploy", "status", "--project", "x", "--docker-url", nowhere)
    assert code == ExitCode.UNREACHABLE and out == ""
    assert err.startswith("seedbed: the Docker engine cannot be reached:") and "Traceback" not in err
    code, _, err = _run(capsys, "image", "save", str(tmp_path / "x.tar"), "a:b", "--docker-url", nowhere)
    assert code == ExitCode.UNREACHABLE, err
    assert not (tmp_path / "x.tar").exists()


def test_refusals_made_before_any_work(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "image", "build", "--save", str(tmp_path / "x.tar"))
    assert code == ExitCode.USAGE and "--save goes with --all" in err
    code, _, err = _run(capsys, "image", "load", str(tmp_path / "absent.tar"))
    assert code == ExitCode.USAGE and "does not exist" in err
    env_file = tmp_path / "empty.env"
    env_file.write_text("SEEDBED_WORKER_NODES=2\n")
    code, _, err = _run(capsys, "deploy", "up", "--no-build", "--project", "x", "--env-file", str(env_file))
    assert code == ExitCode.USAGE
    assert "lacks SEEDBED_COORDINATOR_IMAGE, SEEDBED_WORKER_IMAGE, SEEDBED_STORE_IMAGE" in err
    # A file where pull writes a folder; a folder that is not empty.
    (tmp_path / "file").write_text("x")
    code, _, err = _run(capsys, "pull", str(tmp_path / "file"))
    assert code == ExitCode.USAGE and "is not a folder" in err
    code, _, err = _run(capsys, "pull", str(tmp_path))
    assert code == ExitCode.USAGE and "is not empty" in err


def test_deploy_exec_hands_the_command_its_own_options() -> None:
    """Everything after SERVICE is the command's, even what looks like seedbed's options."""
    from seedbed.cli._deploy import exec_

    parsed = exec_.make_context("exec", ["--project", "p", "store", "psql", "-U", "seedbed", "-o", "x"])
    assert (parsed.params["project"], parsed.params["service"]) == ("p", "store")
    assert parsed.params["command"] == ("psql", "-U", "seedbed", "-o", "x")


def test_apply_of_a_folder_with_problems_sends_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The folder is checked before a client is made: no coordinator is needed to hear about it."""
    (tmp_path / "bad.yaml").write_text("id: [x\n")
    code, out, err = _run(capsys, "--address", "127.0.0.1:1", "apply", str(tmp_path), "-o", "json")
    assert code == ExitCode.USAGE, err
    report = json.loads(out)
    assert report["result"] == "invalid" and report["problems"][0]["file"] == "bad.yaml"


def test_mcp_without_a_coordinator_exits_7(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "mcp", "--address", "127.0.0.1:1", "--api-key", "sb_x")
    assert code == ExitCode.UNREACHABLE and out == ""
    assert "no coordinator answered at 127.0.0.1:1" in err
