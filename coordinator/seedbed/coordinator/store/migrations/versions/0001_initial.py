"""Initial schema: scenarios, fires, runs, attempts, log lines.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scenarios",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("script", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "fires",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scenario_id", sa.String(80), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(40)),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("idempotency_key", name="uq_fires_idempotency_key"),
    )
    op.create_index("ix_fires_scenario_id", "fires", ["scenario_id"])
    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scenario_id", sa.String(80), nullable=False),
        sa.Column("fire_id", sa.String(40), nullable=False),
        sa.Column("run_key", sa.String(255), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("script", sa.Text, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("scenario_revision", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("error", sa.Text),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        sa.Column("logs_truncated", sa.Boolean, nullable=False),
        sa.Column("dropped_log_lines", sa.BigInteger, nullable=False),
        sa.Column("warning_count", sa.Integer, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("abort_reason", sa.Text),
    )
    op.create_index("ix_runs_scenario_created", "runs", ["scenario_id", "created_at"])
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_index("ix_runs_created", "runs", ["created_at"])
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("fencing_token", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(30)),
        sa.Column("container_id", sa.String(80)),
        sa.Column("node", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "log_lines",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("stream", sa.String(10), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("log_lines", "attempts", "runs", "fires", "scenarios"):
        op.drop_table(table)
