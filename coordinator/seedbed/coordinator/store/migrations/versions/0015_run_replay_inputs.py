"""Replayable runs (issue 17): each run records the image its script ran in, and a replay records
the run it replays and what it pins (connection mapping, ledger identity, image, library versions,
template versions) as JSON. Existing runs have none of them: they are replayable once they recorded
an image (runs from before this revision did not).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("image", sa.String(255), nullable=True))
        batch.add_column(sa.Column("replayed_from", sa.String(40), nullable=True))
        batch.add_column(sa.Column("replay", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("replay")
        batch.drop_column("replayed_from")
        batch.drop_column("image")
