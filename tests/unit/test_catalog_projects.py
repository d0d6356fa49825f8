"""Catalog objects belong to projects: what an attempt is handed, what existing rows become, and
the commands' ``--project`` (real gRPC server and store, fake executor)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from seedbed.api.v1 import connection_pb2
from seedbed.client import Client
from seedbed.coordinator import store as store_package
from seedbed.coordinator.store import Store, normalize_url
from seedbed.coordinator.store.catalog import CatalogScope
from tests.conftest import ADMIN_API_KEY


def _template(template_id: str) -> str:
    return f"id: {template_id}\nversion: 1\nfields:\n  id: {{sequence: {{start: 1}}}}\n"


def _file_connection(connection_id: str, project: str, **kw: Any) -> connection_pb2.CreateConnectionRequest:
    return connection_pb2.CreateConnectionRequest(
        connection_id=connection_id, kind=connection_pb2.CONNECTION_KIND_FILE, project_key=project, **kw
    )


def test_an_attempt_is_handed_only_its_projects_templates_and_connections(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, admin = fake_coordinator
    for key in ("pa", "pb"):
        admin.create_project(key, name=key)
    admin.put_template(_template("tmpl_a"), project_key="pa")
    admin.put_template(_template("tmpl_b"), project_key="pb")
    admin.put_template(_template("tmpl_everyone"), project_key="pb", shared=True)
    admin.put_template(_template("tmpl_default"))
    admin.create_connection(_file_connection("conn_a", "pa"))
    b_secret = connection_pb2.SecretSource(value="b-secret-0c8e")
    admin.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_b",
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url="postgresql://app@db.example/b",
            secret=b_secret,
            project_key="pb",
        )
    )
    admin.create_connection(_file_connection("conn_everyone", "pb", shared=True))
    admin.create_connection(_file_connection("conn_default", ""))

    def spec_of_a_run_in(project: str) -> Any:
        admin.get_project(project).create_scenario(f"s_{project}", "s", "print('hi')\n").run_and_wait()
        return next(s for s in reversed(coordinator.dispatcher.specs) if s.scenario_id == f"scn_s_{project}")

    spec = spec_of_a_run_in("pa")
    assert sorted(t.id for t in spec.templates) == ["tmpl_a", "tmpl_everyone"]
    assert sorted(c.id for c in spec.connections) == ["conn_a", "conn_everyone"]
    assert "b-secret-0c8e" not in str(spec)
    spec = spec_of_a_run_in("pb")
    assert sorted(c.id for c in spec.connections) == ["conn_b", "conn_everyone"]
    assert next(c for c in spec.connections if c.id == "conn_b").secret.value == "b-secret-0c8e"
    spec = spec_of_a_run_in("default")
    assert sorted(t.id for t in spec.templates) == ["tmpl_default", "tmpl_everyone"]
    assert sorted(c.id for c in spec.connections) == ["conn_default", "conn_everyone"]


def test_catalog_rows_from_before_projects_belong_to_the_default_project(store_url: str) -> None:
    at = datetime.now(UTC)
    rows = {
        "templates": {
            "id": "tmpl_old",
            "source": "x",
            "format": "yaml",
            "canonical": "{}",
            "digest": "0" * 64,
            "description": "",
            "field_names": "[]",
            "revision": 1,
            "created_at": at,
            "updated_at": at,
        },
        "connections": {
            "id": "conn_old",
            "kind": "file",
            "description": "",
            "url": "",
            "rest": "{}",
            "secret_kind": "none",
            "secret_ref": "",
            "created_at": at,
            "updated_at": at,
        },
        "workspace_files": {"path": "old.csv", "size": 0, "sha256": "0" * 64, "created_at": at},
    }

    def upgrade_to_0005_and_insert(conn: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(Path(store_package.__file__).parent / "migrations"))
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
        for table, row in rows.items():
            conn.execute(sa.table(table, *(sa.column(c) for c in row)).insert().values(**row))

    async def owners_after_upgrade() -> list[tuple[str, bool]]:
        engine = create_async_engine(normalize_url(store_url))
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to_0005_and_insert)
        await engine.dispose()
        store = await Store.open(store_url)
        try:
            default = CatalogScope.of_project("default")
            template = await store.templates.get("tmpl_old")
            connection = await store.connections.get("conn_old")
            file = await store.workspace.get("old.csv")
            assert [t.id for t in await store.templates.all(default)] == ["tmpl_old"]
            assert await store.templates.all(CatalogScope.of_project("other")) == []
        finally:
            await store.aclose()
        return [(r.project_key, r.shared) for r in (template, connection, file)]

    assert asyncio.run(owners_after_upgrade()) == [("default", False)] * 3


def test_catalog_commands_take_a_project(
    fake_coordinator: tuple[Any, Client],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from seedbed.cli import main

    coordinator, admin = fake_coordinator
    admin.create_project("shop", name="Shop")
    monkeypatch.setenv("SEEDBED_CONFIG_FILE", str(tmp_path / "profiles.yaml"))
    monkeypatch.setenv("SEEDBED_API_KEY", ADMIN_API_KEY)

    def cli(*argv: str) -> str:
        assert main(["--address", coordinator.address, *argv]) == 0
        return capsys.readouterr().out

    (tmp_path / "t.yaml").write_text(_template("tmpl_shop"))
    (tmp_path / "d.yaml").write_text(_template("tmpl_default"))
    (tmp_path / "cities.csv").write_text("name\nParis\n")
    assert "in project shop" in cli("template", "create", str(tmp_path / "t.yaml"), "--project", "shop")
    assert "in project shop, shared" in cli(
        "workspace", "upload", str(tmp_path / "cities.csv"), "--project", "shop", "--shared"
    )
    out = cli("connection", "create", "conn_shop", "--kind", "file", "--project", "shop")
    assert "runs of: shop" in out
    # Without --project: the default project, as before.
    assert "in project default" in cli("template", "create", str(tmp_path / "d.yaml"))
    templates = json.loads(cli("template", "list", "-o", "json", "--project", "shop"))
    assert [(t["id"], t["project_key"]) for t in templates] == [("tmpl_shop", "shop")]
    files = json.loads(cli("workspace", "list", "-o", "json", "--project", "default"))
    assert [(f["path"], f["project_key"], f["shared"]) for f in files] == [("cities.csv", "shop", True)]
    connections = json.loads(cli("connection", "list", "-o", "json", "--project", "shop"))
    assert [c["id"] for c in connections] == ["conn_shop"]
