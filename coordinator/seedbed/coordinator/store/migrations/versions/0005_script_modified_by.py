"""The user who last changed each scenario's script: the user its runs act as when ``run_as`` is
empty. ``last_modified_by`` (any change at all) used to play that part, so a rename or a pause
handed the runs to whoever made it. Existing scenarios start from their last modifier, the
identity their runs acted as until now.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scenarios") as batch:
        batch.add_column(sa.Column("script_modified_by", sa.String(63), nullable=False, server_default=""))
    scenarios = sa.table("scenarios", sa.column("last_modified_by"), sa.column("script_modified_by"))
    op.execute(scenarios.update().values(script_modified_by=scenarios.c.last_modified_by))


def downgrade() -> None:
    with op.batch_alter_table("scenarios") as batch:
        batch.drop_column("script_modified_by")
