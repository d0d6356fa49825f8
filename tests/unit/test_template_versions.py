"""Template versions in the store (SQLite and PostgreSQL), migration 0011, and the parsing of pins
(``tmpl_x@N``) on both sides of the worker boundary."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from seedbed.coordinator.app.templates import parse_template_ref
from seedbed.coordinator.errors import ConflictError, InvalidArgumentError, NotFoundError
from seedbed.coordinator.store import Store
from seedbed.coordinator.store.catalog import CatalogScope
from seedbed.coordinator.store.templates import TemplateRecord, TemplateVersionNotFound
from seedbed.worker.templates import TemplatePin, TemplatePinError, parse_template_pin
from tests.unit.test_reporter_secrets_migration import _config, _insert, _run_sync

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = await Store.open(store_url)
    try:
        yield store
    finally:
        await store.aclose()


async def _put(
    store: Store,
    source: str,
    *,
    at: datetime,
    template_id: str = "tmpl_order",
    shared: bool | None = None,
    expected_revision: int | None = None,
    project_key: str = "default",
) -> tuple[TemplateRecord, bool]:
    return await store.templates.put(
        template_id,
        project_key=project_key,
        shared=shared,
        source=source,
        fmt="yaml",
        canonical={"id": template_id, "fields": {"n": source}},
        description=f"made from {source!r}",
        field_names=["n"],
        allow_update=True,
        at=at,
        expected_revision=expected_revision,
        created_by="alice",
    )


async def test_every_change_is_a_new_version_and_the_same_document_is_none(store: Store) -> None:
    first, created = await _put(store, "v1", at=T0)
    assert created and first.revision == 1
    second, created = await _put(store, "v2", at=T0 + timedelta(minutes=1))
    assert not created and second.revision == 2
    again, _ = await _put(store, "v2", at=T0 + timedelta(minutes=2))
    assert again.revision == 2 and again.updated_at == second.updated_at  # nothing changed
    shared, _ = await _put(store, "v2", at=T0 + timedelta(minutes=3), shared=True)
    assert (shared.revision, shared.shared) == (2, True)  # sharing is not a new version
    history = await store.templates.versions("tmpl_order", limit=10)
    assert [(v.version, v.source, v.created_by) for v in history] == [(2, "v2", "alice"), (1, "v1", "alice")]
    old = await store.templates.version("tmpl_order", 1)
    assert old.canonical == {"id": "tmpl_order", "fields": {"n": "v1"}} and old.created_at == T0


async def test_a_stale_expected_revision_still_conflicts_when_the_document_is_the_same(store: Store) -> None:
    await _put(store, "v1", at=T0)
    await _put(store, "v2", at=T0 + timedelta(minutes=1))
    with pytest.raises(ConflictError) as caught:
        await _put(store, "v2", at=T0 + timedelta(minutes=2), expected_revision=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    same, _ = await _put(store, "v2", at=T0 + timedelta(minutes=2), expected_revision=2)
    assert same.revision == 2


async def test_a_missing_version_names_the_versions_that_exist(store: Store) -> None:
    await _put(store, "v1", at=T0)
    await _put(store, "v2", at=T0 + timedelta(minutes=1))
    with pytest.raises(TemplateVersionNotFound) as caught:
        await store.templates.version("tmpl_order", 7)
    assert "tmpl_order@7 not found (versions of tmpl_order: 1, 2)" in str(caught.value)
    assert isinstance(caught.value, NotFoundError) and caught.value.versions == [1, 2]
    with pytest.raises(TemplateVersionNotFound, match="versions of tmpl_nothing: none"):
        await store.templates.version("tmpl_nothing", 1)


async def test_a_deleted_template_keeps_its_versions_and_a_new_one_numbers_on(store: Store) -> None:
    await _put(store, "v1", at=T0)
    await _put(store, "v2", at=T0 + timedelta(minutes=1))
    await store.templates.delete("tmpl_order", "default")
    with pytest.raises(NotFoundError):
        await store.templates.get("tmpl_order")
    assert (await store.templates.version("tmpl_order", 2)).source == "v2"
    again, created = await _put(store, "v3", at=T0 + timedelta(minutes=5))
    assert created and again.revision == 3
    assert [v.version for v in await store.templates.versions("tmpl_order", limit=10)] == [3, 2, 1]


async def test_a_run_uses_the_versions_of_its_creation_time_or_its_pins(store: Store) -> None:
    await _put(store, "v1", at=T0)
    await _put(store, "c1", at=T0, template_id="tmpl_customer")
    run_created = T0 + timedelta(minutes=1)
    await _put(store, "v2", at=T0 + timedelta(minutes=2))  # after the run: not the run's
    await _put(store, "n1", at=T0 + timedelta(minutes=2), template_id="tmpl_new")  # born after it
    scope = CatalogScope.of_project("default")

    def chosen(versions: list[Any]) -> dict[str, int]:
        return {v.template_id: v.version for v in versions}

    assert chosen(await store.templates.for_run(scope, run_created, {})) == {
        "tmpl_customer": 1,
        "tmpl_order": 1,
    }
    later = T0 + timedelta(minutes=3)
    assert chosen(await store.templates.for_run(scope, later, {})) == {
        "tmpl_customer": 1,
        "tmpl_new": 1,
        "tmpl_order": 2,
    }
    # A pin wins over the time; a pin of a version that does not exist is left out.
    pinned = await store.templates.for_run(scope, later, {"tmpl_order": 1, "tmpl_customer": 9})
    assert chosen(pinned) == {"tmpl_new": 1, "tmpl_order": 1}
    assert next(v for v in pinned if v.template_id == "tmpl_order").source == "v1"
    # Another project's templates are not the run's.
    assert await store.templates.for_run(CatalogScope.of_project("shop"), later, {}) == []


async def test_a_runs_pins_are_read_from_its_row(store: Store) -> None:
    assert await store.templates.run_pins("run_unknown") == {}


# -- migration 0011 ------------------------------------------------------------------------------


def _template_row(template_id: str, revision: int, updated_at: datetime) -> dict[str, Any]:
    return {
        "id": template_id,
        "source": f"id: {template_id}\n",
        "format": "yaml",
        "canonical": json.dumps({"id": template_id}),
        "digest": "d" * 64,
        "description": "",
        "field_names": "[]",
        "revision": revision,
        "created_at": T0,
        "updated_at": updated_at,
        "project_key": "shop",
        "shared": False,
    }


def test_the_upgrade_keeps_each_template_as_the_version_of_its_revision(store_url: str) -> None:
    def upgrade(conn: sa.Connection) -> tuple[list[Any], list[str]]:
        command.upgrade(_config(conn), "0010")
        _insert(conn, "templates", _template_row("tmpl_order", 4, T0 + timedelta(days=2)))
        _insert(conn, "templates", _template_row("tmpl_customer", 1, T0))
        command.upgrade(_config(conn), "0011")
        rows = conn.execute(
            sa.text(
                "SELECT template_id, version, project_key, source, created_by FROM template_versions"
                " ORDER BY template_id"
            )
        ).all()
        columns = [c["name"] for c in sa.inspect(conn).get_columns("runs")]
        command.downgrade(_config(conn), "0010")
        assert "template_versions" not in sa.inspect(conn).get_table_names()
        assert "template_pins" not in [c["name"] for c in sa.inspect(conn).get_columns("runs")]
        return [tuple(r) for r in rows], columns

    rows, columns = asyncio.run(_run_sync(store_url, upgrade))
    assert rows == [
        ("tmpl_customer", 1, "shop", "id: tmpl_customer\n", ""),
        ("tmpl_order", 4, "shop", "id: tmpl_order\n", ""),
    ]
    assert "template_pins" in columns


# -- pins ----------------------------------------------------------------------------------------

MALFORMED = {
    "tmpl_x@": "a version number must follow '@'",
    "tmpl_x@0": "versions count from 1",
    "tmpl_x@-1": "is not a whole number from 1",
    "tmpl_x@x": "is not a whole number from 1",
    "tmpl_x@2.0": "is not a whole number from 1",
    "tmpl_x@²": "is not a whole number from 1",
    "tmpl_x@99999999999999999999": "past the largest possible version",
    "tmpl_x@9223372036854775808": "past the largest possible version",
}


@pytest.mark.parametrize("text", sorted(MALFORMED))
def test_a_malformed_pin_is_refused_saying_what_a_version_is(text: str) -> None:
    with pytest.raises(TemplatePinError) as worker_side:
        parse_template_pin(text)
    assert MALFORMED[text] in str(worker_side.value) and "tmpl_x@3" in str(worker_side.value)
    with pytest.raises(InvalidArgumentError) as coordinator_side:
        parse_template_ref(text)
    assert MALFORMED[text] in str(coordinator_side.value)


def test_pins_that_are_well_formed() -> None:
    assert parse_template_pin("tmpl_order") == TemplatePin("tmpl_order", None)
    assert parse_template_pin("tmpl_order@3") == TemplatePin("tmpl_order", 3)
    assert str(parse_template_pin("tmpl_order@9223372036854775807")) == "tmpl_order@9223372036854775807"
    assert parse_template_ref("order@3") == ("tmpl_order", 3)  # the prefix may be left out
    assert parse_template_ref("tmpl_order", 2) == ("tmpl_order", 2)
    assert parse_template_ref("tmpl_order@2", 2) == ("tmpl_order", 2)
    with pytest.raises(InvalidArgumentError, match="differs from the version"):
        parse_template_ref("tmpl_order@2", 3)
    with pytest.raises(InvalidArgumentError, match="versions count from 1"):
        parse_template_ref("tmpl_order", -1)
    with pytest.raises(NotFoundError):
        parse_template_ref("Bad Id@2")
