"""Retries and leases: attempt leases and worker pids, the run's next attempt time, write batches.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("next_attempt_at", TS))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("worker_pid", sa.Integer))
        batch.add_column(sa.Column("lease_expires_at", TS))
        batch.add_column(sa.Column("holder", sa.String(255)))
    op.create_table(
        "write_batches",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("connection_id", sa.String(80), primary_key=True),
        sa.Column("call", sa.Integer, primary_key=True),
        sa.Column("batch", sa.Integer, primary_key=True),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("write_batches")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("holder")
        batch.drop_column("lease_expires_at")
        batch.drop_column("worker_pid")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("next_attempt_at")
