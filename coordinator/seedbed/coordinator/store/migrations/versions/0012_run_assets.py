"""Run assets (issue 17): the files a run kept, per attempt, their content in chunks of at most 1 MiB.

Like workspace files (``workspace_files`` and ``workspace_chunks``): content in a binary column, one
row per chunk, so neither a write nor a download holds a whole asset. ``complete`` is set once the
last chunk came and its size and digest matched; until then the asset is not listed.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_assets",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "run_asset_chunks",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id", "attempt", "name"],
            ["run_assets.run_id", "run_assets.attempt", "run_assets.name"],
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("run_asset_chunks")
    op.drop_table("run_assets")
