"""Purge everywhere (issue 17): the purges of runs (``run_purges``), and the ids a run's REST posts
created (``rest_created``), what a purge deletes through the connection's declared undo.

``run_purges`` holds one row per purged run: the periodic pass (a scenario's
``purge_after_seconds``) claims a run by inserting its row, or by a conditional UPDATE of a row whose
lease expired (a coordinator that died mid-purge) or that failed; DONE rows are never purged again.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_purges",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("scenario_id", sa.String(80), nullable=False),
        sa.Column("project_key", sa.String(63), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Index("ix_run_purges_started", "started_at"),
    )
    op.create_table(
        "rest_created",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("connection_id", sa.String(80), primary_key=True),
        sa.Column("call", sa.Integer, primary_key=True),
        sa.Column("batch", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("ids", sa.Text, nullable=False),  # JSON list, one per row posted (WriteBatch.created_ids)
    )


def downgrade() -> None:
    op.drop_table("rest_created")
    op.drop_table("run_purges")
