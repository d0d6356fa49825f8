"""A compose cluster (deploy/compose/) for tests and benchmarks: brought up with `seedbed deploy up`
under a project name of its own, on free loopback ports, and taken down with everything it made."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.models.containers
import psycopg

from seedbed.cli._compose import Endpoints, read_env_file, worker_nodes
from seedbed.client import Client

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
BULK = ROOT / "examples" / "bulk"


@dataclass
class Cluster:
    project: str
    env_file: Path
    values: dict[str, str]

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints.of(self.values)

    @property
    def address(self) -> str:
        return self.endpoints.grpc

    @property
    def metrics(self) -> str:
        return self.endpoints.metrics

    def client(self) -> Client:
        return Client(self.address, api_key=self.values["SEEDBED_ADMIN_API_KEY"], timeout=60)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.values.get("SEEDBED_ADMIN_API_KEY"):
            env.update(SEEDBED_ADDRESS=self.address, SEEDBED_API_KEY=self.values["SEEDBED_ADMIN_API_KEY"])
        return env

    def cli(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "seedbed.cli", *args],
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def deploy(self, verb: str, *more: str) -> subprocess.CompletedProcess[str]:
        return self.cli("deploy", verb, "--project", self.project, "--env-file", str(self.env_file), *more)

    def containers(
        self, service: str | None = None, *, all_states: bool = False
    ) -> list[docker.models.containers.Container]:
        labels = [f"com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        return docker.from_env().containers.list(all=all_states, filters={"label": labels})

    def store(self, database: str = "seedbed") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=int(self.values["SEEDBED_STORE_PORT"]),
            user="seedbed",
            password=self.values["SEEDBED_STORE_PASSWORD"],
            dbname=database,
            autocommit=True,
        )

    def wait_for_workers(self, count: int, seconds: float = 180) -> None:
        give_up = time.monotonic() + seconds
        while (joined := worker_nodes(self.metrics)) != count:
            assert time.monotonic() < give_up, f"{joined} worker node(s) joined, waited for {count}"
            time.sleep(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"


@contextlib.contextmanager
def running_cluster(
    folder: Path, prefix: str, *, workers: int = 2, janitor_seconds: int = 30
) -> Iterator[Cluster]:
    """Up (images built when missing) on free ports; down with its volume on exit, whatever happened."""
    docker.from_env().ping()
    env_file = folder / "cluster.env"
    env_file.write_text(
        "\n".join(
            [
                f"SEEDBED_PORT={free_port()}",
                f"SEEDBED_METRICS_PORT={free_port()}",
                f"SEEDBED_REST_PORT={free_port()}",
                f"SEEDBED_STORE_PORT={free_port()}",
                f"SEEDBED_WORKER_NODES={workers}",
                "SEEDBED_NODE_SANDBOX_SLOTS=2",
                "SEEDBED_NODE_CPUS=2",
                f"SEEDBED_JANITOR_INTERVAL_SECONDS={janitor_seconds}",
            ]
        )
        + "\n"
    )
    cluster = Cluster(f"{prefix}{uuid.uuid4().hex[:8]}", env_file, read_env_file(env_file))
    try:
        up = cluster.deploy("up", "--wait", "600")
        assert up.returncode == 0, tail(up)
        cluster.values = read_env_file(env_file)
        yield cluster
    finally:
        down = cluster.deploy("down")
        if down.returncode != 0:
            print(tail(down), file=sys.stderr)


def prepare_targets(cluster: Cluster) -> None:
    """Two databases in the cluster's PostgreSQL (reachable from the workers as `store`), the
    templates, and a connection to each."""
    with cluster.store() as conn:
        for name in ("shop", "warehouse"):
            conn.execute(f"CREATE DATABASE {name}")
    for name, schema in (("shop", SHOP / "schema.sql"), ("warehouse", BULK / "schema.sql")):
        with cluster.store(name) as conn:
            conn.execute(schema.read_text())
    password = cluster.values["SEEDBED_STORE_PASSWORD"]
    steps = [
        ("template", "create", *map(str, sorted(SHOP.glob("*.yaml")) + sorted(BULK.glob("*.yaml")))),
        (
            "connection", "create", "conn_postgres", "--kind", "postgresql",
            "--url", f"postgresql://seedbed:{password}@store:5432/shop",
        ),
        (
            "connection", "create", "conn_warehouse", "--kind", "postgresql",
            "--url", f"postgresql://seedbed:{password}@store:5432/warehouse",
            "--writers", "4", "--shard-rows", "10000",
        ),
    ]  # fmt: skip
    for step in steps:
        result = cluster.cli(*step)
        assert result.returncode == 0, tail(result)


def count(cluster: Cluster, database: str, sql: str) -> int:
    with cluster.store(database) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]
