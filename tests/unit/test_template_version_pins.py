"""Follow-ups of template versions (issue 17): a run's versions fixed on its first dispatch (a push
dated before the run but committed after it never reaches a retry only), pins that never reach
another project's version, NOT_FOUND of a deleted template's missing version that names nothing
before the caller's role is checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from seedbed.client import Client, ClientError
from seedbed.coordinator.model import new_id
from seedbed.coordinator.store import Store
from seedbed.coordinator.store import _schema as t
from seedbed.coordinator.store.catalog import CatalogScope

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DEFAULT = CatalogScope.of_project("default")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = await Store.open(store_url)
    try:
        yield store
    finally:
        await store.aclose()


async def _put(store: Store, template_id: str, body: str, at: datetime, project: str = "default") -> None:
    await store.templates.put(
        template_id,
        project_key=project,
        shared=None,
        source=body,
        fmt="yaml",
        canonical={"id": template_id, "body": body},
        description="",
        field_names=["id"],
        allow_update=True,
        at=at,
    )


async def _run(store: Store, created_at: datetime, pins: str | None = None) -> str:
    run_id = new_id("run")
    async with store._write() as conn:
        await conn.execute(
            t.runs.insert().values(
                id=run_id,
                scenario_id="scn_x",
                fire_id=new_id("fire"),
                run_key="k",
                state="QUEUED",
                params="{}",
                script="",
                settings="{}",
                scenario_revision=1,
                created_at=created_at,
                template_pins=pins,
            )
        )
    return run_id


def _chosen(versions: list[Any]) -> dict[str, int]:
    return {v.template_id: v.version for v in versions}


async def test_a_runs_versions_are_fixed_on_its_first_dispatch(store: Store) -> None:
    await _put(store, "tmpl_x", "v1", T0)
    created = T0 + timedelta(minutes=2)
    run_id = await _run(store, created)
    assert _chosen(await store.templates.fix_for_run(run_id, DEFAULT, created)) == {"tmpl_x": 1}
    # A push that took its time before the run but committed after the first dispatch (the race
    # of put_template's `at`): the retry must not see it.
    await _put(store, "tmpl_x", "v2", T0 + timedelta(minutes=1))
    await _put(store, "tmpl_late", "l1", T0 + timedelta(minutes=1))
    assert _chosen(await store.templates.for_run(DEFAULT, created, {}))["tmpl_x"] == 2  # dates alone
    assert _chosen(await store.templates.fix_for_run(run_id, DEFAULT, created)) == {"tmpl_x": 1}
    assert await store.templates.run_pins(run_id) == {"tmpl_x": 1}


async def test_a_replays_pins_are_kept_and_the_rest_fixed_on_its_first_dispatch(store: Store) -> None:
    await _put(store, "tmpl_x", "v1", T0)
    await _put(store, "tmpl_x", "v2", T0 + timedelta(minutes=1))
    await _put(store, "tmpl_y", "y1", T0)
    created = T0 + timedelta(minutes=5)
    run_id = await _run(store, created, pins='{"tmpl_x": 1}')
    assert _chosen(await store.templates.fix_for_run(run_id, DEFAULT, created)) == {"tmpl_x": 1, "tmpl_y": 1}
    await _put(store, "tmpl_y", "y2", T0 + timedelta(minutes=2))  # dated before the run, seen after
    assert _chosen(await store.templates.fix_for_run(run_id, DEFAULT, created)) == {"tmpl_x": 1, "tmpl_y": 1}


async def test_a_pin_never_reaches_a_version_another_project_pushed(store: Store) -> None:
    # pa pushes tmpl_x (version 1) and deletes it; pb creates tmpl_x (version 2). A run of pb
    # pinned to tmpl_x@1 (a replay's pins are copied from a run record) must not get pa's document.
    await _put(store, "tmpl_x", "a-secret", T0, project="pa")
    await store.templates.delete("tmpl_x", "pa")
    await _put(store, "tmpl_x", "b-own", T0 + timedelta(minutes=1), project="pb")
    later = T0 + timedelta(minutes=5)
    scope = CatalogScope.of_project("pb")
    assert await store.templates.for_run(scope, later, {"tmpl_x": 1}) == []
    assert _chosen(await store.templates.for_run(scope, later, {"tmpl_x": 2})) == {"tmpl_x": 2}
    # An earlier template of the same id in the same project: still that project's document.
    await _put(store, "tmpl_y", "y1", T0, project="pb")
    await store.templates.delete("tmpl_y", "pb")
    await _put(store, "tmpl_y", "y2", T0 + timedelta(minutes=1), project="pb")
    assert _chosen(await store.templates.for_run(scope, later, {"tmpl_y": 1}))["tmpl_y"] == 1


SOURCE = "id: tmpl_gone\nversion: 1\nfields:\n  id: {sequence: {start: 1}}\n  n: {const: v1}\n"


def test_a_missing_version_of_a_deleted_template_names_nothing_to_a_caller_without_a_role(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, admin = fake_coordinator
    admin.create_project("pa", name="pa")
    admin.put_template(SOURCE, project_key="pa")
    admin.put_template(SOURCE.replace("v1", "v2"), project_key="pa", allow_update=True)
    admin.delete_template("tmpl_gone")
    admin.create_user("outsider")
    with Client(coordinator.address, api_key=admin.create_api_key(user_id="outsider").secret) as outsider:
        for name in ("tmpl_gone@7", "tmpl_gone@1"):
            with pytest.raises(ClientError) as refused:
                outsider.get_template(name)
            assert refused.value.code == grpc.StatusCode.NOT_FOUND
            assert "versions of" not in refused.value.details, refused.value.details
    # A member of pa still hears which versions exist.
    with pytest.raises(ClientError) as missing:
        admin.get_template("tmpl_gone@7")
    assert "versions of tmpl_gone: 1, 2" in missing.value.details
