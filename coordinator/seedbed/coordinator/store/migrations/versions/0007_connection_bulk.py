"""Connections keep their bulk options: how inserts of generated row sets are written into a
PostgreSQL target (shards written at once, rows per shard, writers on the target across runs).

A JSON text column, as ``rest`` is, rather than three integer columns: only the options given are
stored, so an unset one keeps following the worker's default, and a new option needs no migration.
Existing connections get ``{}``: every option at its default, as they were written until now.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("bulk", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("bulk")
