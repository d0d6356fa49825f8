"""The committed generated code matches the .proto files, and the contract is lint-clean."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_generated_code_has_not_drifted() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "protogen.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_buf_lint_is_clean() -> None:
    buf = shutil.which("buf") or str(ROOT / ".venv" / "bin" / "buf")
    result = subprocess.run([buf, "lint"], cwd=ROOT / "proto", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_store_migrations_match_the_table_definitions(store_url: str) -> None:
    """Alembic's autogenerate finds nothing to add: migrations and ``_schema`` agree, on SQLite and
    on PostgreSQL."""
    import asyncio

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from seedbed.coordinator.store import Store
    from seedbed.coordinator.store._schema import metadata

    async def diff() -> list[object]:
        store = await Store.open(store_url)
        try:
            async with store._engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), metadata)
                )
        finally:
            await store.aclose()

    assert asyncio.run(diff()) == []
