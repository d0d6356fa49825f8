"""Writes conditioned on a revision (``expected_revision``), on SQLite and PostgreSQL: the condition
is part of the write, so a stale one changes nothing and says what it found, and of two writers
that read the same revision exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from seedbed.coordinator.errors import ConflictError, NotFoundError
from seedbed.coordinator.store import Store
from seedbed.coordinator.store.catalog import OtherProjectError
from seedbed.coordinator.store.records import ScenarioSettingsValue
from seedbed.coordinator.store.templates import TemplateRecord


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = await Store.open(store_url)
    try:
        yield store
    finally:
        await store.aclose()


async def _scenario(store: Store, scenario_id: str = "scn_orders") -> None:
    await store.create_scenario(scenario_id, "Orders", "print('v1')\n", ScenarioSettingsValue())


async def _put(
    store: Store, source: str, *, expected_revision: int | None, project_key: str = "default"
) -> tuple[TemplateRecord, bool]:
    return await store.templates.put(
        "tmpl_customer",
        project_key=project_key,
        shared=None,
        source=source,
        fmt="yaml",
        canonical={"id": "tmpl_customer", "source": source},
        description="",
        field_names=["id"],
        allow_update=True,
        at=datetime.now(UTC),
        expected_revision=expected_revision,
    )


async def test_a_scenario_update_at_the_read_revision_applies_and_bumps_it(store: Store) -> None:
    await _scenario(store)
    updated = await store.update_scenario("scn_orders", script="print('v2')\n", expected_revision=1)
    assert (updated.revision, updated.script) == (2, "print('v2')\n")
    again = await store.update_scenario("scn_orders", name="Orders v3", expected_revision=2)
    assert (again.revision, again.name, again.script) == (3, "Orders v3", "print('v2')\n")


async def test_a_stale_scenario_update_is_a_conflict_and_changes_nothing(store: Store) -> None:
    await _scenario(store)
    await store.update_scenario("scn_orders", name="Someone else's", expected_revision=1)
    with pytest.raises(ConflictError) as caught:
        await store.update_scenario("scn_orders", script="print('mine')\n", name="Mine", expected_revision=1)
    assert (caught.value.kind, caught.value.ident) == ("scenario", "scn_orders")
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert "expected revision 1, but it is at revision 2" in str(caught.value)
    kept = await store.get_scenario("scn_orders")
    assert (kept.revision, kept.name, kept.script) == (2, "Someone else's", "print('v1')\n")


async def test_a_conditional_update_of_a_deleted_scenario_says_it_is_gone(store: Store) -> None:
    await _scenario(store)
    await store.delete_scenario("scn_orders")
    with pytest.raises(ConflictError) as caught:
        await store.update_scenario("scn_orders", name="x", expected_revision=1)
    assert caught.value.actual is None and "no longer exists" in str(caught.value)
    # Without a revision, an unknown scenario stays NOT_FOUND.
    with pytest.raises(NotFoundError):
        await store.update_scenario("scn_orders", name="x")
    with pytest.raises(NotFoundError):
        await store.get_scenario("scn_orders")


async def test_of_two_updates_from_the_same_revision_exactly_one_wins(store: Store) -> None:
    await _scenario(store)

    async def update(name: str) -> Any:
        try:
            return await store.update_scenario("scn_orders", name=name, expected_revision=1)
        except ConflictError as exc:
            return exc

    results = await asyncio.gather(*(update(f"writer {n}") for n in range(4)))
    winners = [r for r in results if not isinstance(r, ConflictError)]
    assert len(winners) == 1
    assert all(r.actual == 2 for r in results if isinstance(r, ConflictError))
    stored = await store.get_scenario("scn_orders")
    assert (stored.revision, stored.name) == (2, winners[0].name)


async def test_a_template_put_with_revision_zero_creates_only_a_new_one(store: Store) -> None:
    rec, created = await _put(store, "v1", expected_revision=0)
    assert created and rec.revision == 1
    with pytest.raises(ConflictError) as caught:
        await _put(store, "v2", expected_revision=0)
    assert (caught.value.kind, caught.value.expected, caught.value.actual) == ("template", 0, 1)
    assert "already exists (revision 1)" in str(caught.value)
    assert (await store.templates.get("tmpl_customer")).source == "v1"


async def test_a_template_put_at_the_read_revision_updates_and_a_stale_one_is_refused(store: Store) -> None:
    await _put(store, "v1", expected_revision=None)
    rec, created = await _put(store, "v2", expected_revision=1)
    assert not created and (rec.revision, rec.source) == (2, "v2")
    with pytest.raises(ConflictError) as caught:
        await _put(store, "v3", expected_revision=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    kept = await store.templates.get("tmpl_customer")
    assert (kept.revision, kept.source) == (2, "v2")


async def test_a_conditional_template_put_never_creates_a_missing_one(store: Store) -> None:
    with pytest.raises(ConflictError) as caught:
        await _put(store, "v1", expected_revision=3)
    assert caught.value.actual is None
    with pytest.raises(NotFoundError):
        await store.templates.get("tmpl_customer")


async def test_a_conditional_template_put_still_refuses_another_projects_id(store: Store) -> None:
    await _put(store, "v1", expected_revision=0, project_key="shop")
    for expected in (0, 1):
        with pytest.raises(OtherProjectError):
            await _put(store, "v2", expected_revision=expected)
    assert (await store.templates.get("tmpl_customer")).source == "v1"


async def test_of_two_creations_with_revision_zero_exactly_one_wins(store: Store) -> None:
    async def create(source: str) -> Any:
        try:
            return await _put(store, source, expected_revision=0)
        except ConflictError as exc:
            return exc

    results = await asyncio.gather(*(create(f"writer {n}") for n in range(4)))
    winners = [r for r in results if not isinstance(r, ConflictError)]
    assert len(winners) == 1 and winners[0][1] is True
    assert all(r.actual == 1 for r in results if isinstance(r, ConflictError))
    stored = await store.templates.get("tmpl_customer")
    assert (stored.revision, stored.source) == (1, winners[0][0].source)
