"""The catalog commands (`seedbed template | connection | workspace`) against a live coordinator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from seedbed.client import Client
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def seedbed(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seedbed.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_classic_scenario_set_up_through_the_cli(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    """Templates pushed, a PostgreSQL connection created and tested, a preview printed, the classic
    scenario run: all with the `seedbed` command."""
    import secrets as random_names

    import psycopg

    from tests.conftest import pg_admin_url

    coord, _ = coordinator
    address = ["--address", coord.address]
    shop = ROOT / "examples" / "shop"
    admin = pg_admin_url()
    name = f"seedbed_cli_{random_names.token_hex(5)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = f"{admin.rpartition('/')[0]}/{name}"
    try:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute((shop / "schema.sql").read_text())
        pushed = seedbed(*address, "template", "push", str(shop / "customer.yaml"), str(shop / "order.yaml"))
        assert pushed.returncode == 0, pushed.stderr
        assert "tmpl_customer revision 1" in pushed.stdout
        preview = seedbed(*address, "template", "preview", "tmpl_customer", "-n", "5", "--seed", "3")
        rows = [json.loads(line) for line in preview.stdout.splitlines()]
        assert len(rows) == 5 and all("@" in r["email"] for r in rows)
        listing = seedbed(*address, "template", "list")
        assert "tmpl_order" in listing.stdout
        created = seedbed(
            *address, "connection", "create", "conn_postgres", "--kind", "postgresql", "--url", target
        )
        assert created.returncode == 0, created.stderr
        assert "seedbed_test@" not in created.stdout and "secret: stored" in created.stdout
        tested = seedbed(*address, "connection", "test", "conn_postgres")
        assert tested.returncode == 0 and "ok" in tested.stdout, tested.stdout + tested.stderr
        shown = seedbed(*address, "connection", "show", "conn_postgres")
        assert ":seedbed_test@" not in shown.stdout
        run = seedbed(*address, "run", str(shop / "classic.py"))
        assert run.returncode == 0, run.stderr
        assert "seeded 100 customers and 500 orders" in run.stdout
        with psycopg.connect(target) as conn:
            assert conn.execute(
                "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
            ).fetchone() == (500,)
        broken = seedbed(
            *address,
            "connection",
            "create",
            "conn_broken",
            "--kind",
            "postgresql",
            "--url",
            target + "_missing",
        )
        assert broken.returncode == 0
        failed = seedbed(*address, "connection", "test", "conn_broken")
        assert failed.returncode == 1 and "FAILED" in failed.stdout and "does not exist" in failed.stdout
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_workspace_commands(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    coord, _ = coordinator
    address = ["--address", coord.address]
    source = tmp_path / "cities.csv"
    source.write_text("name,country\nParis,FR\nLyon,FR\n")
    up = seedbed(*address, "workspace", "upload", str(source), "--as", "data/cities.csv")
    assert up.returncode == 0 and f"data/cities.csv {len(source.read_bytes())} bytes" in up.stdout, (
        up.stdout + up.stderr
    )
    assert "data/cities.csv" in seedbed(*address, "workspace", "list").stdout
    down = seedbed(*address, "workspace", "download", "data/cities.csv", "-o", "-")
    assert down.stdout == source.read_text()
    script = tmp_path / "reads.py"
    script.write_text(
        "from seedbed.sdk import Seedbed\n"
        "rows = Seedbed().workspace.read_csv('data/cities.csv')\n"
        "print(sorted(r['name'] for r in rows))\n"
    )
    run = seedbed(*address, "run", str(script))
    assert run.returncode == 0 and "['Lyon', 'Paris']" in run.stdout, run.stderr
    bad = seedbed(*address, "workspace", "upload", str(source), "--as", "../escape.csv")
    assert bad.returncode == 2 and "INVALID_ARGUMENT" in bad.stderr
    assert seedbed(*address, "workspace", "rm", "data/cities.csv").returncode == 0
    assert seedbed(*address, "workspace", "list").stdout == ""
