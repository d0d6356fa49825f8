"""The deployment's pure parts: the env file `seedbed deploy up` keeps, the images' tags, the lock
of the images' packages, image tarballs, the compose file and the ports it publishes, the endpoints
`seedbed deploy` prints and the REST health it waits for, and what the coordinator says of its Ray
cluster."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import socket
import stat
import subprocess
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from seedbed.cli._compose import Endpoints, generated_secrets, read_env_file, rest_problem, write_env_file
from seedbed.coordinator import CoordinatorSettings
from seedbed.coordinator.cluster_watch import ClusterWatch
from seedbed.coordinator.dispatch import ClusterView
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.observability.metrics import CoordinatorMetrics
from seedbed.coordinator.server import Coordinator, running_in_thread
from seedbed.worker._sandbox_errors import ImageBuildError
from seedbed.worker.deploy_images import server_images, server_tag, source_root, tarball_tags
from tests.conftest import settings_for

ROOT = Path(__file__).resolve().parents[2]


def test_the_env_file_keeps_the_users_lines_and_is_private(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# mine\nSEEDBED_PORT=6000\nSEEDBED_WORKER_IMAGE=old\n")
    write_env_file(env, {"SEEDBED_WORKER_IMAGE": "seedbed-worker:new", "SEEDBED_SECRET_KEY": "k"})
    assert env.read_text() == (
        "# mine\nSEEDBED_PORT=6000\nSEEDBED_WORKER_IMAGE=seedbed-worker:new\nSEEDBED_SECRET_KEY=k\n"
    )
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert read_env_file(env) == {
        "SEEDBED_PORT": "6000",
        "SEEDBED_WORKER_IMAGE": "seedbed-worker:new",
        "SEEDBED_SECRET_KEY": "k",
    }


def test_secrets_are_generated_once() -> None:
    made = generated_secrets({})
    assert set(made) == {"SEEDBED_STORE_PASSWORD", "SEEDBED_SECRET_KEY", "SEEDBED_ADMIN_API_KEY"}
    assert len(set(made.values())) == 3
    assert generated_secrets(made) == {}  # a second `up` keeps them: the store's secrets stay readable
    assert set(generated_secrets({"SEEDBED_SECRET_KEY": "kept"})) == {
        "SEEDBED_STORE_PASSWORD",
        "SEEDBED_ADMIN_API_KEY",
    }


def _copy_tree(target: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".seedbed*", "*.egg-info", ".*_cache")
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def test_image_tags_follow_their_inputs(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path / "tree")
    tags = server_images(tree)
    assert tags == server_images(ROOT), "the same inputs must give the same tags"
    assert tags.coordinator.split(":")[1] == tags.worker.split(":")[1] == server_tag(tree)
    (tree / "coordinator" / "seedbed" / "coordinator" / "__pycache__").mkdir(exist_ok=True)
    (tree / "coordinator" / "seedbed" / "coordinator" / "__pycache__" / "x.pyc").write_bytes(b"x")
    assert server_tag(tree) == tags.coordinator.split(":")[1], "caches are not inputs"
    source = tree / "worker" / "seedbed" / "worker" / "attempt.py"
    source.write_text(source.read_text() + "\n# changed\n")
    assert server_tag(tree) != server_tag(ROOT)
    sdk = next((tree / "sandbox-images" / "sdk" / "seedbed" / "sdk").glob("*.py"))
    sdk.write_text(sdk.read_text() + "\n# changed\n")
    changed = server_images(tree)
    assert changed.sandbox != tags.sandbox and changed.worker != tags.worker


def test_a_folder_that_is_no_source_tree_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="source tree"):
        source_root(tmp_path)


def test_the_images_lock_holds_every_pin_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lock = {}
    for line in (ROOT / "deploy" / "images" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            lock[canonicalize_name(name)] = version
    extras = project["project"]["optional-dependencies"]
    # The images run the coordinator and the workers: the base install and both extras. A pin is
    # locked at its version, a range (the base install's) at a version inside it.
    for line in [*project["project"]["dependencies"], *extras["server"], *extras["worker"]]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name == "seedbed":
            continue  # the server naming the worker's extra
        assert name in lock, f"{line} is not in the images' lock"
        assert requirement.specifier.contains(lock[name]), f"{line} is {lock[name]} in the images' lock"


def _tarball(path: Path, manifest: object) -> Path:
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def test_a_tarballs_tags_are_read_without_loading_it(tmp_path: Path) -> None:
    manifest = [{"RepoTags": ["seedbed-python:a"]}, {"RepoTags": ["seedbed-worker:b", "seedbed-worker:c"]}]
    assert tarball_tags(_tarball(tmp_path / "i.tar", manifest)) == [
        "seedbed-python:a",
        "seedbed-worker:b",
        "seedbed-worker:c",
    ]
    (tmp_path / "bad.tar").write_bytes(b"not a tarball")
    with pytest.raises(ImageBuildError, match="not an image tarball"):
        tarball_tags(tmp_path / "bad.tar")


def test_the_compose_file_is_valid(tmp_path: Path) -> None:
    env = tmp_path / "x.env"
    env.write_text(
        "SEEDBED_COORDINATOR_IMAGE=c:1\nSEEDBED_WORKER_IMAGE=w:1\nSEEDBED_STORE_IMAGE=s:1\n"
        "SEEDBED_STORE_PASSWORD=p\nSEEDBED_SECRET_KEY=k\nSEEDBED_ADMIN_API_KEY=a\n"
    )
    compose = ROOT / "deploy" / "compose" / "docker-compose.yml"
    command = ["docker-compose", "--env-file", str(env), "-f", str(compose), "config"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"store", "ray-head", "ray-worker", "coordinator"}
    # The Docker socket goes to the worker nodes only.
    with_socket = [name for name, service in services.items() if "docker.sock" in str(service.get("volumes"))]
    assert with_socket == ["ray-worker"], with_socket
    assert services["ray-worker"]["scale"] == 2
    missing = subprocess.run(
        ["docker-compose", "-f", str(compose), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert missing.returncode != 0 and "seedbed deploy up" in missing.stderr, missing.stderr


def _published(port: object) -> tuple[int, str]:
    """(container port, host:port) of a port as `docker-compose config` writes it."""
    if isinstance(port, dict):
        return int(port["target"]), f"{port.get('host_ip', '')}:{port['published']}"
    host, published, target = str(port).split("/")[0].rsplit(":", 2)
    return int(target), f"{host}:{published}"


def test_the_coordinator_publishes_its_ports_on_loopback(tmp_path: Path) -> None:
    required = (
        "SEEDBED_COORDINATOR_IMAGE=c:1\nSEEDBED_WORKER_IMAGE=w:1\nSEEDBED_STORE_IMAGE=s:1\n"
        "SEEDBED_STORE_PASSWORD=p\nSEEDBED_SECRET_KEY=k\nSEEDBED_ADMIN_API_KEY=a\n"
    )
    compose = ROOT / "deploy" / "compose" / "docker-compose.yml"
    # The ports the image's entry point makes the coordinator listen on, in the container.
    entrypoint = (ROOT / "deploy" / "images" / "entrypoint.sh").read_text()
    listens = dict(re.findall(r'export (SEEDBED_[A-Z_]*LISTEN)="\$\{\1:?-0\.0\.0\.0:(\d+)\}"', entrypoint))
    assert set(listens) == {"SEEDBED_LISTEN", "SEEDBED_METRICS_LISTEN", "SEEDBED_REST_LISTEN"}, listens
    for extra, expected in (
        ("", {"SEEDBED_LISTEN": "50051", "SEEDBED_METRICS_LISTEN": "59464", "SEEDBED_REST_LISTEN": "58080"}),
        ("SEEDBED_REST_PORT=6001\n", {"SEEDBED_REST_LISTEN": "6001"}),
    ):
        env = tmp_path / "x.env"
        env.write_text(required + extra)
        command = ["docker-compose", "--env-file", str(env), "-f", str(compose), "config"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        ports = dict(map(_published, yaml.safe_load(result.stdout)["services"]["coordinator"]["ports"]))
        assert set(ports) == {int(port) for port in listens.values()}, ports
        for listen, published in expected.items():
            assert ports[int(listens[listen])] == f"127.0.0.1:{published}", (listen, ports)
        # `seedbed deploy` prints (and waits on) the same ports.
        endpoints = Endpoints.of(read_env_file(env))
        published_rest = ports[int(listens["SEEDBED_REST_LISTEN"])]
        assert endpoints.rest == f"http://{published_rest}/v1"
        assert endpoints.mcp == f"http://{published_rest}/mcp"
        assert endpoints.grpc == ports[int(listens["SEEDBED_LISTEN"])]
        assert endpoints.metrics == f"http://{ports[int(listens['SEEDBED_METRICS_LISTEN'])]}/metrics"


def test_the_endpoints_printed_come_from_the_env_file() -> None:
    assert Endpoints.of({}) == Endpoints(
        grpc="127.0.0.1:50051",
        rest="http://127.0.0.1:58080/v1",
        mcp="http://127.0.0.1:58080/mcp",
        metrics="http://127.0.0.1:59464/metrics",
    )
    moved = Endpoints.of({"SEEDBED_PORT": "6000", "SEEDBED_REST_PORT": "6001", "SEEDBED_METRICS_PORT": ""})
    assert (moved.grpc, moved.rest, moved.mcp) == (
        "127.0.0.1:6000",
        "http://127.0.0.1:6001/v1",
        "http://127.0.0.1:6001/mcp",
    )
    assert moved.metrics == "http://127.0.0.1:59464/metrics"  # empty: the compose file's default
    text = "\n".join(moved.lines())
    for url in (moved.grpc, moved.rest, f"{moved.rest}/openapi.json", moved.mcp, moved.metrics):
        assert url in text


def test_the_rest_health_check_asks_a_real_coordinator(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        assert rest_problem(f"http://{coordinator.rest_address}/v1") is None
        # Something else answers on the port (the metrics endpoint, text at every path), or the REST
        # face under another base: not healthy, and the answer is shown.
        problem = rest_problem(f"http://{coordinator.metrics_address}/v1")
        assert problem is not None and "is not healthy" in problem and "HTTP 200 '# HELP" in problem, problem
        problem = rest_problem(f"http://{coordinator.rest_address}/v2")
        assert problem is not None and "/v2/healthz answered HTTP 404" in problem, problem
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    problem = rest_problem(closed)
    assert problem is not None and problem.startswith(f"the REST API at {closed} does not answer: "), problem


def test_the_cluster_view_says_why_attempts_wait() -> None:
    nobody = ClusterView(nodes=2, worker_nodes=0, sandbox_slots=0, free_slots=0)
    assert "no Ray worker node with sandbox slots has joined" in (nobody.waiting_reason() or "")
    busy = ClusterView(nodes=4, worker_nodes=2, sandbox_slots=4, free_slots=0)
    assert "every sandbox slot is busy (4 on 2 worker node(s))" in (busy.waiting_reason() or "")
    assert ClusterView(nodes=4, worker_nodes=2, sandbox_slots=4, free_slots=1).waiting_reason() is None


@dataclass
class _Views:
    views: list[ClusterView]

    async def __call__(self) -> ClusterView:
        return self.views.pop(0)


async def test_the_cluster_watch_warns_while_no_worker_node_joined(caplog: pytest.LogCaptureFixture) -> None:
    metrics = CoordinatorMetrics()
    views = _Views(
        [
            ClusterView(nodes=2, worker_nodes=0, sandbox_slots=0, free_slots=0),
            ClusterView(nodes=2, worker_nodes=0, sandbox_slots=0, free_slots=0),
            ClusterView(nodes=4, worker_nodes=2, sandbox_slots=4, free_slots=3),
        ]
    )
    watch = ClusterWatch(views, metrics)
    with caplog.at_level(logging.INFO, logger="seedbed.coordinator.cluster_watch"):
        await watch.check()
        assert metrics.registry.get_sample_value("seedbed_ray_worker_nodes") == 0
        await watch.check()  # said once a minute, not at every check
        await watch.check()
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "no Ray worker node" in m]) == 1, messages
    assert any("2 worker node(s) with 4 sandbox slot(s)" in m for m in messages), messages
    assert metrics.registry.get_sample_value("seedbed_ray_worker_nodes") == 2
    assert metrics.registry.get_sample_value("seedbed_sandbox_slots", {"state": "busy"}) == 1


def test_the_env_file_is_read_as_compose_reads_it(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text('SEEDBED_WORKER_NODES="3"\nexport SEEDBED_PORT=6000 # mine\nSEEDBED_PORT=6001\n# X=1\n')
    assert read_env_file(env) == {"SEEDBED_WORKER_NODES": "3", "SEEDBED_PORT": "6001"}
    write_env_file(env, {"SEEDBED_PORT": "7000"})
    assert read_env_file(env)["SEEDBED_PORT"] == "7000"  # every line of the name, the last included
    assert env.read_text().count("SEEDBED_PORT=7000") == 2


def test_workers_call_back_a_name_they_can_reach(tmp_path: Path) -> None:
    settings = CoordinatorSettings(listen="0.0.0.0:0", data_dir=tmp_path)
    coordinator = Coordinator(settings, FakeDispatcher())
    coordinator.port = 50051
    assert coordinator.advertised_address == f"{socket.gethostname()}:50051"
    loopback = Coordinator(CoordinatorSettings(listen="127.0.0.1:0", data_dir=tmp_path), FakeDispatcher())
    loopback.port = 6000
    assert loopback.advertised_address == "127.0.0.1:6000"
    told = CoordinatorSettings(listen="0.0.0.0:0", advertise_address="seedbed.example:443", data_dir=tmp_path)
    assert Coordinator(told, FakeDispatcher()).advertised_address == "seedbed.example:443"
