"""Dry runs (issue 17): a fire and its run may be a dry run (``dry_run``): every write the script
makes is checked against the targets' live schema and nothing is written; the run keeps the report
(``dry_run_report``: a serialized ``seedbed.api.v1.DryRunReport``, at most a few hundred targets of
20 problems each).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fires") as batch:
        batch.add_column(sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("dry_run_report", sa.LargeBinary))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("dry_run_report")
        batch.drop_column("dry_run")
    with op.batch_alter_table("fires") as batch:
        batch.drop_column("dry_run")
