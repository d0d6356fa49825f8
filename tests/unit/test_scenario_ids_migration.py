"""Store migration 0010 on SQLite and PostgreSQL: the index on lower-cased scenario ids is made over
the ids a store holds, refuses a second id differing only by case, and a store edited by hand that
already holds such a pair stops the upgrade naming both ids, writing nothing."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from alembic import command

from tests.unit.test_reporter_secrets_migration import _config, _insert, _run_sync, _scenario_row


def _ids(conn: sa.Connection) -> list[str]:
    return sorted(str(i) for (i,) in conn.execute(sa.text("SELECT id FROM scenarios")))


def test_the_index_refuses_a_case_only_twin_after_the_upgrade(store_url: str) -> None:
    def upgrade(conn: sa.Connection) -> list[str]:
        command.upgrade(_config(conn), "0009")
        for scenario_id in ("scn_orders", "scn_shop-1"):
            _insert(conn, "scenarios", _scenario_row(scenario_id, "{}"))
        command.upgrade(_config(conn), "0010")
        _insert(conn, "scenarios", _scenario_row("scn_MYSCENARIO", "{}"))
        nested = conn.begin_nested()
        with pytest.raises(sa.exc.IntegrityError):
            _insert(conn, "scenarios", _scenario_row("scn_Orders", "{}"))
        nested.rollback()
        return _ids(conn)

    assert asyncio.run(_run_sync(store_url, upgrade)) == ["scn_MYSCENARIO", "scn_orders", "scn_shop-1"]


def test_a_store_holding_a_case_only_pair_stops_the_upgrade_naming_it(store_url: str) -> None:
    def upgrade(conn: sa.Connection) -> str:
        command.upgrade(_config(conn), "0009")
        for scenario_id in ("scn_Orders", "scn_orders", "scn_other"):
            _insert(conn, "scenarios", _scenario_row(scenario_id, "{}"))
        with pytest.raises(Exception, match="differ only by case") as refused:
            command.upgrade(_config(conn), "0010")
        return str(refused.value)

    message = asyncio.run(_run_sync(store_url, upgrade))
    assert "scn_Orders, scn_orders;" in message and "scn_other" not in message
    assert "rename or delete all but one of each" in message
