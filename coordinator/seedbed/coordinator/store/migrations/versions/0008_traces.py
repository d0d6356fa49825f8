"""Traces: spans kept per run (or per fire, for the RunScenario call that made it), the trace context
of fires and runs, the spans a run dropped past its cap, and log lines' fields and trace ids.

Spans are stored as serialized contract messages (``seedbed.api.v1.Span``) in one binary column
rather than spread over columns: they are written in batches and read back whole, per run, and
never queried by attribute; a new span field needs no migration.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fires") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(64)))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(64)))
        batch.add_column(sa.Column("dropped_spans", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("log_lines") as batch:
        batch.add_column(sa.Column("fields", sa.Text))
        batch.add_column(sa.Column("trace_id", sa.String(32)))
        batch.add_column(sa.Column("span_id", sa.String(16)))
    op.create_table(
        "spans",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("owner", sa.String(40), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("capped", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_spans_owner", "spans", ["owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_spans_owner", table_name="spans")
    op.drop_table("spans")
    with op.batch_alter_table("log_lines") as batch:
        batch.drop_column("span_id")
        batch.drop_column("trace_id")
        batch.drop_column("fields")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("dropped_spans")
        batch.drop_column("traceparent")
    with op.batch_alter_table("fires") as batch:
        batch.drop_column("traceparent")
