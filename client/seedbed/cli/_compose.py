"""The compose cluster on one machine (deploy/compose/): its env file, the compose command line, where
its coordinator answers and when it is ready. ``_deploy`` is the command line over it.

Where the cluster answers is read from its env file alone (`Endpoints`): the compose file publishes
each of the coordinator's ports on 127.0.0.1 at the port the file names, or at the compose file's
default. Asking Docker for the published ports instead was rejected: `status` of a stopped cluster
would then have nothing to show, and the env file is already the one source of the cluster's
settings.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The variables `seedbed deploy up` writes into the env file; every other line is the user's.
IMAGE_VARIABLES = ("SEEDBED_COORDINATOR_IMAGE", "SEEDBED_WORKER_IMAGE")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
# Characters a store password may hold: the compose file puts it into a URL as it is.
URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")
# Stand-ins for the variables the compose file requires, for commands that need no real value
# (`down` and `ps` of a cluster whose env file is gone).
_PLACEHOLDERS = {
    name: "unset"
    for name in (
        "SEEDBED_COORDINATOR_IMAGE",
        "SEEDBED_WORKER_IMAGE",
        "SEEDBED_STORE_IMAGE",
        "SEEDBED_STORE_PASSWORD",
        "SEEDBED_SECRET_KEY",
        "SEEDBED_ADMIN_API_KEY",
    )
}

# The coordinator's ports on 127.0.0.1: the env file's variable and the compose file's default.
PORTS = {"SEEDBED_PORT": 50051, "SEEDBED_METRICS_PORT": 59464, "SEEDBED_REST_PORT": 58080}

Say = Callable[[str], None]


class ComposeMissingError(Exception):
    """Neither `docker compose` nor `docker-compose` is installed."""


@dataclass(frozen=True)
class Endpoints:
    """Where a compose cluster's coordinator answers on this machine: the gRPC API (host:port), the
    REST API's base URL (``/v1``), the MCP endpoint and the Prometheus metrics."""

    grpc: str
    rest: str
    mcp: str
    metrics: str

    @classmethod
    def of(cls, values: Mapping[str, str]) -> Endpoints:
        """The endpoints for the env file's `values` (the compose file's default for a port unset)."""
        port = {name: values.get(name) or str(default) for name, default in PORTS.items()}
        http = f"http://127.0.0.1:{port['SEEDBED_REST_PORT']}"
        return cls(
            grpc=f"127.0.0.1:{port['SEEDBED_PORT']}",
            rest=f"{http}/v1",
            mcp=f"{http}/mcp",
            metrics=f"http://127.0.0.1:{port['SEEDBED_METRICS_PORT']}/metrics",
        )

    def lines(self) -> list[str]:
        return [
            f"  gRPC API   {self.grpc}",
            f"  REST API   {self.rest}  (OpenAPI: {self.rest}/openapi.json)",
            f"  MCP        {self.mcp}",
            f"  metrics    {self.metrics}",
        ]

    def to_json(self) -> dict[str, str]:
        return {"grpc": self.grpc, "rest": self.rest, "mcp": self.mcp, "metrics": self.metrics}


def docker_client(url: str = "") -> Any:
    """The Docker engine at `url` (default: the environment's, as the docker CLI finds it)."""
    import docker

    return docker.DockerClient(base_url=url) if url else docker.from_env()


def compose_dir() -> Path:
    from seedbed.worker.deploy_images import source_root

    return source_root() / "deploy" / "compose"


def compose_command() -> list[str]:
    """This machine's compose: the `docker compose` plugin when it has one (compose 1.29 fails to
    recreate containers on Docker Engine 25 and later), else `docker-compose` (Debian 12's 1.29)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ComposeMissingError(
        "neither docker-compose nor the docker compose plugin is installed "
        "(Debian: apt-get install docker-compose)"
    )


def read_env_file(path: Path) -> dict[str, str]:
    """The env file's variables, read as compose reads them (python-dotenv: quotes, `export `,
    comments after a space and `#`; the last of two lines with one name wins)."""
    from dotenv import dotenv_values

    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def write_env_file(path: Path, updates: dict[str, str]) -> None:
    """Set `updates` in the env file, keeping every other line (comments, the user's settings); a
    name written on several lines is set on each. Mode 0600: the file holds the cluster's secrets."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    pending = dict(updates)
    out = []
    for line in lines:
        match = _LINE.match(line)
        if match and match.group(1) in updates and not line.lstrip().startswith("#"):
            out.append(f"{match.group(1)}={updates[match.group(1)]}")
            pending.pop(match.group(1), None)
        else:
            out.append(line)
    if pending and not lines:
        out.append("# Written by `seedbed deploy up`: image tags (rewritten at every up) and the secrets")
        out.append("# it generated at first start (kept: stored secrets are sealed with SEEDBED_SECRET_KEY).")
    out += [f"{key}={value}" for key, value in pending.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600, a new file
            handle.write("\n".join(out) + "\n")
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def generated_secrets(existing: Mapping[str, str]) -> dict[str, str]:
    """The cluster's secrets the env file lacks, made now (kept afterwards: stored secrets are
    sealed with SEEDBED_SECRET_KEY)."""
    from cryptography.fernet import Fernet

    made = {
        "SEEDBED_STORE_PASSWORD": secrets.token_urlsafe(24),
        "SEEDBED_SECRET_KEY": Fernet.generate_key().decode(),
        "SEEDBED_ADMIN_API_KEY": "sb_" + secrets.token_urlsafe(32),
    }
    return {key: value for key, value in made.items() if not existing.get(key)}


@dataclass(frozen=True)
class ComposeProject:
    """One compose cluster: its project name and env file (default deploy/compose/.env)."""

    name: str
    env_file_given: str = ""

    @property
    def env_file(self) -> Path:
        return Path(self.env_file_given).resolve() if self.env_file_given else compose_dir() / ".env"

    def argv(self, *command: str) -> list[str]:
        """The compose command line for `command` on this project."""
        where = compose_dir()
        argv = [*compose_command(), "--project-name", self.name, "--project-directory", str(where)]
        if self.env_file.is_file():
            argv += ["--env-file", str(self.env_file)]
        return [*argv, "-f", str(where / "docker-compose.yml"), *command]

    def run(self, argv: Sequence[str], say: Say, *, placeholders: bool = False) -> int:
        """Run compose with the env file as the only source of Seedbed's settings: compose lets the
        shell's variables win over the file, and a SEEDBED_* variable exported for a client (an API
        key, an address) would silently replace the cluster's own. `placeholders`: stand-ins for
        required variables the file lacks (commands that only find containers by project)."""
        say(" ".join(argv))
        env = {key: value for key, value in os.environ.items() if not key.startswith("SEEDBED_")}
        if placeholders:
            env.update(_PLACEHOLDERS)
        return subprocess.run(list(argv), check=False, env=env).returncode

    def containers(self, docker_url: str = "") -> list[dict[str, str]]:
        """The project's containers, running or not, by service then name: service, name, state
        (Docker's: running, exited, …) and status (e.g. "Up 5 minutes")."""
        engine = docker_client(docker_url)
        try:
            found = engine.containers.list(
                all=True, filters={"label": [f"com.docker.compose.project={self.name}"]}
            )
        finally:
            engine.close()
        rows = [
            {
                "service": c.labels.get("com.docker.compose.service", ""),
                "name": c.name,
                "state": c.attrs.get("State", {}).get("Status", ""),
                "status": c.status,
            }
            for c in found
        ]
        return sorted(rows, key=lambda row: (row["service"], row["name"]))


def worker_nodes(metrics_url: str) -> int | None:
    """The coordinator's count of worker nodes (its seedbed_ray_worker_nodes gauge); None when it
    does not answer (yet)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(metrics_url, timeout=5).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "seedbed_ray_worker_nodes" and family.samples:
            return int(family.samples[0].value)
    return None


def rest_problem(rest_url: str) -> str | None:
    """Why the REST API at `rest_url` (its ``/v1`` base) is not healthy, or None when
    ``GET /v1/healthz`` answers ``{"status": "ok"}`` (it needs no key)."""
    import httpx

    try:
        answer = httpx.get(f"{rest_url}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        return f"the REST API at {rest_url} does not answer: {str(exc) or type(exc).__name__}"
    try:
        body = answer.json()
    except ValueError:  # not JSON: something else answers on that port
        body = None
    if answer.status_code != 200 or body != {"status": "ok"}:
        said = f"HTTP {answer.status_code} {answer.text[:200]!r}"
        return f"the REST API at {rest_url} is not healthy: GET {rest_url}/healthz answered {said}"
    return None


def wait_ready(values: Mapping[str, str], seconds: float, progress: Say) -> str | None:
    """Wait until the coordinator answers (gRPC with the admin key, REST health) and every worker
    node has joined: None then, else what it still waited for after `seconds`. `progress` is told
    what it waits for at every change."""
    from seedbed.client import Client, ClientError

    endpoints = Endpoints.of(values)
    wanted = int(values.get("SEEDBED_WORKER_NODES") or 2)
    give_up = time.monotonic() + seconds
    last = "no answer yet"
    while True:
        try:
            with Client(endpoints.grpc, api_key=values.get("SEEDBED_ADMIN_API_KEY")) as client:
                client.list_runs("", 1)
            joined = worker_nodes(endpoints.metrics)
            problem = rest_problem(endpoints.rest)
            if problem is not None:
                last = problem
            elif joined is not None and joined >= wanted:
                return None
            else:
                last = f"{joined or 0} of {wanted} worker node(s) have joined the Ray cluster"
        except ClientError as exc:
            last = f"the coordinator at {endpoints.grpc} does not answer: {exc}"
        progress(last)
        if time.monotonic() >= give_up:
            return last
        time.sleep(1)
