"""Shared fixtures. Real services come from the environment `scripts/test` prepares:

- SEEDBED_TEST_PG_URL: a PostgreSQL superuser URL (each test gets a fresh database);
- the local Docker engine with the sandbox image built;
- Ray: one local instance per test session (started here on first use).

A test that needs one of them fails with a clear message when it is missing; none is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from seedbed.client import Client
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher

ROOT = Path(__file__).resolve().parents[1]

# Every coordinator a test starts (in-process or as a subprocess) makes this the superuser admin's
# key, and every Client and CLI a test runs sends it, unless the test says otherwise.
ADMIN_API_KEY = "sbk_00000000000000aa_test-admin-secret-not-for-production"
os.environ["SEEDBED_ADMIN_API_KEY"] = ADMIN_API_KEY
os.environ["SEEDBED_API_KEY"] = ADMIN_API_KEY
# Many coordinators run at once in a test session: each serves its metrics on a port of its own.
os.environ["SEEDBED_METRICS_LISTEN"] = "127.0.0.1:0"
os.environ["SEEDBED_REST_LISTEN"] = "127.0.0.1:0"


def auth_metadata(key: str = ADMIN_API_KEY) -> tuple[tuple[str, str], ...]:
    """Metadata for raw gRPC stubs: ``stub.Method(request, metadata=auth_metadata())``."""
    return (("authorization", f"Bearer {key}"),)


def pg_admin_url() -> str:
    url = os.environ.get("SEEDBED_TEST_PG_URL", "")
    if not url:
        pytest.fail(
            "SEEDBED_TEST_PG_URL is not set: run the tests through scripts/test, or start PostgreSQL with "
            "scripts/postgres-up and export the URL it prints"
        )
    return url


@contextlib.contextmanager
def scratch_pg(schema: str = "", prefix: str = "seedbed_t") -> Iterator[str]:
    """A fresh PostgreSQL database for a block, with `schema` (SQL) run in it, dropped after; its
    plain postgresql:// URL."""
    admin = pg_admin_url()
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rpartition('/')[0]}/{name}"
    try:
        if schema:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(schema)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test; its SQLAlchemy URL."""
    with scratch_pg() as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def mysql_database() -> Iterator[str]:
    """A fresh MariaDB/MySQL database for one test (SEEDBED_TEST_MYSQL_URL); its SQLAlchemy URL."""
    admin_url = os.environ.get("SEEDBED_TEST_MYSQL_URL", "")
    if not admin_url:
        pytest.fail(
            "SEEDBED_TEST_MYSQL_URL is not set: run the tests through scripts/test, or start MariaDB with "
            "scripts/mysql-up and export the URL it prints"
        )
    admin = sa.make_url(admin_url)
    name = f"seedbed_t_{secrets.token_hex(6)}"
    connection = pymysql.connect(
        host=admin.host, port=admin.port or 3306, user=admin.username, password=admin.password or ""
    )
    try:
        connection.cursor().execute(f"CREATE DATABASE `{name}`")
        yield admin.set(database=name).render_as_string(hide_password=False)
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"
    return str(request.getfixturevalue("pg_database"))


def sandbox_runtime() -> str:
    """The container runtime sandboxes run under in this session: SEEDBED_TEST_SANDBOX_RUNTIME
    (``scripts/test`` runs the sandbox and security tests a second time with ``runsc``), else runc."""
    return os.environ.get("SEEDBED_TEST_SANDBOX_RUNTIME") or "runc"


def settings_for(store_url: str, tmp_path: Path, **overrides: Any) -> CoordinatorSettings:
    """A coordinator's settings; its data folder is ``tmp_path/coordinator-data`` (target databases a
    test makes in ``tmp_path`` must lie outside it: the coordinator refuses SQLite files there).
    Its sandboxes run under ``sandbox_runtime()``."""
    overrides.setdefault("data_dir", tmp_path / "coordinator-data")
    overrides.setdefault("sandbox_runtime", sandbox_runtime())
    return CoordinatorSettings(listen="127.0.0.1:0", store_url=store_url, **overrides)


@pytest.fixture
def fake_coordinator(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    """A real gRPC coordinator on loopback with a real store, dispatching to the fake executor."""
    settings = settings_for(store_url, tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        yield coordinator, client


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns a truthy value or stops raising AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


class Cli:
    """The ``seedbed`` command called in this process against one coordinator: ``cli(*argv)``
    answers (exit code, stdout, stderr); ``cli.json(*argv)`` the -o json answer of a success."""

    def __init__(self, address: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.address = address
        self._capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        from seedbed.cli import main

        self._capsys.readouterr()
        code = main(["--address", self.address, *argv])
        out, err = self._capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "-o", "json")
        assert code == 0, err
        return json.loads(out)
