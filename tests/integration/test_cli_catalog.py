"""The catalog commands (`seedbed template | connection | workspace`) against a live coordinator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from seedbed.client import Client
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def seedbed(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seedbed.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_classic_scenario_set_up_through_the_cli(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    """Templates created, a PostgreSQL connection created and tested, a preview printed, the classic
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
        pushed = seedbed(
            *address, "template", "create", str(shop / "customer.yaml"), str(shop / "order.yaml")
        )
        assert pushed.returncode == 0, pushed.stderr
        assert "tmpl_customer@1" in pushed.stdout
        preview = seedbed(
            *address, "template", "preview", "tmpl_customer", "-n", "5", "--seed", "3", "-o", "json"
        )
        rows = json.loads(preview.stdout)
        assert len(rows) == 5 and all("@" in r["email"] for r in rows)
        table = seedbed(*address, "template", "preview", "tmpl_customer", "-n", "2", "--seed", "3")
        assert table.stdout.splitlines()[0].split() == list(rows[0])  # a column per field, in order
        listing = seedbed(*address, "template", "list")
        assert "tmpl_order" in listing.stdout
        created = seedbed(
            *address, "connection", "create", "conn_postgres", "--kind", "postgresql", "--url", target
        )
        assert created.returncode == 0, created.stderr
        assert "seedbed_test@" not in created.stdout and "secret: stored" in created.stdout
        tested = seedbed(*address, "connection", "test", "conn_postgres")
        assert tested.returncode == 0 and "ok" in tested.stdout, tested.stdout + tested.stderr
        for output in ("table", "json", "yaml"):
            shown = seedbed(*address, "connection", "show", "conn_postgres", "-o", output)
            assert shown.returncode == 0 and ":seedbed_test@" not in shown.stdout, shown.stderr
            assert "stored" in shown.stdout
        run = seedbed(*address, "run", "submit", str(shop / "classic.py"))
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
        failed = seedbed(*address, "connection", "test", "conn_broken", "-o", "json")
        answer = json.loads(failed.stdout)
        assert (
            failed.returncode == 1
            and answer["ok"] is False
            and set(answer) == {"ok", "message", "latency_seconds"}
        )
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
    down = seedbed(*address, "workspace", "download", "data/cities.csv", "-")
    assert down.stdout == source.read_text()
    script = tmp_path / "reads.py"
    script.write_text(
        "from seedbed.sdk import Seedbed\n"
        "rows = Seedbed().workspace.read_csv('data/cities.csv')\n"
        "print(sorted(r['name'] for r in rows))\n"
    )
    run = seedbed(*address, "run", "submit", str(script))
    assert run.returncode == 0 and "['Lyon', 'Paris']" in run.stdout, run.stderr
    bad = seedbed(*address, "workspace", "upload", str(source), "--as", "../escape.csv")
    assert bad.returncode == 8 and "INVALID_ARGUMENT" in bad.stderr  # refused by the coordinator
    assert seedbed(*address, "workspace", "delete", "data/cities.csv").returncode == 0
    assert seedbed(*address, "workspace", "list", "-o", "json").stdout == "[]\n"


def test_catalog_json_shapes_and_exit_codes(coordinator: tuple[Any, Client], tmp_path: Path) -> None:
    """-o json|yaml print the contract's messages with its field names; unknown ids exit 5; what the
    CLI can check itself exits 2 before any call."""
    coord, _ = coordinator
    address = ["--address", coord.address]
    template = tmp_path / "tmpl.yaml"
    template.write_text((ROOT / "examples" / "shop" / "customer.yaml").read_text())
    created = seedbed(*address, "template", "create", str(template), "-o", "json")
    assert created.returncode == 0, created.stderr
    [saved] = json.loads(created.stdout)
    assert saved["id"] == "tmpl_customer" and saved["revision"] == "1"  # int64: a string in JSON
    assert {"project_key", "field_names", "canonical_json", "update_time"} <= set(saved)
    shown = yaml.safe_load(seedbed(*address, "template", "show", "tmpl_customer", "-o", "yaml").stdout)
    assert shown["source"] == template.read_text() and shown["field_names"] == saved["field_names"]
    source = seedbed(*address, "template", "show", "tmpl_customer")
    assert source.stdout == template.read_text()

    made = seedbed(
        *address, "connection", "create", "conn_api", "--kind", "rest", "--base-url", "https://api.example",
        "--header", "X-Team=seed", "--auth-header", "Authorization", "--secret-env", "API_TOKEN",
        "-o", "json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    connection = json.loads(made.stdout)
    assert connection["kind"] == "CONNECTION_KIND_REST" and connection["secret"] == "env:API_TOKEN"
    assert connection["rest"]["headers"] == {"X-Team": "seed"} and connection["allowed_users"] == []
    listed = json.loads(seedbed(*address, "connection", "list", "-o", "json").stdout)
    assert [c["id"] for c in listed] == ["conn_api"] and listed[0]["rest"] == connection["rest"]

    for args in (
        ["template", "show", "tmpl_missing"],
        ["template", "delete", "tmpl_missing"],
        ["template", "preview", "tmpl_missing"],
        ["connection", "show", "conn_missing"],
        ["connection", "test", "conn_missing"],
        ["workspace", "download", "missing.csv", str(tmp_path / "out.csv")],
        ["workspace", "delete", "missing.csv"],
    ):
        result = seedbed(*address, *args)
        assert result.returncode == 5 and "NOT_FOUND" in result.stderr, (args, result.stderr)
    for args in (
        ["template", "create", str(tmp_path / "missing.yaml")],
        ["template", "preview", "tmpl_customer", "-n", "0"],
        ["connection", "create", "c", "--kind", "rest", "--header", "no-equals-sign"],
        ["connection", "create", "c", "--kind", "file", "--secret-env", "A", "--secret-file", "b"],
        ["connection", "create", "c", "--kind", "ftp"],
    ):
        result = seedbed(*address, *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
    assert seedbed(*address, "connection", "list", "-o", "json").stdout.count('"id"') == 1  # nothing made
    deleted = seedbed(*address, "connection", "delete", "conn_api", "-o", "json")
    assert json.loads(deleted.stdout) == {"deleted": "conn_api"}


def test_old_catalog_spellings_still_work_and_say_the_new_one(
    coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coord, client = coordinator
    address = ["--address", coord.address]
    template = tmp_path / "tmpl.yaml"
    template.write_text((ROOT / "examples" / "shop" / "customer.yaml").read_text())
    pushed = seedbed(*address, "template", "push", str(template))
    assert pushed.returncode == 0 and "tmpl_customer@1" in pushed.stdout
    assert "`seedbed template push` is now `seedbed template create`" in pushed.stderr
    listed = seedbed(*address, "template", "list", "--json")
    assert [t["id"] for t in json.loads(listed.stdout)] == ["tmpl_customer"]
    assert "`--json` is now `-o json`" in listed.stderr
    removed = seedbed(*address, "template", "rm", "tmpl_customer")
    assert removed.returncode == 0 and "is now `seedbed template delete`" in removed.stderr
    assert client.list_templates() == []

    assert seedbed(*address, "connection", "create", "conn_out", "--kind", "file").returncode == 0
    removed = seedbed(*address, "connection", "rm", "conn_out")
    assert removed.returncode == 0 and "is now `seedbed connection delete`" in removed.stderr
    assert client.list_connections() == []

    client.upload_file("a.txt", b"a")
    files = seedbed(*address, "workspace", "list", "--json")
    assert [f["path"] for f in json.loads(files.stdout)] == ["a.txt"]
    removed = seedbed(*address, "workspace", "rm", "a.txt")
    assert removed.returncode == 0 and "is now `seedbed workspace delete`" in removed.stderr
    assert client.list_files() == []
