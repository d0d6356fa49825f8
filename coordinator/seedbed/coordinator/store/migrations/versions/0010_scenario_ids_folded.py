"""Scenario ids may hold upper-case letters, and no two ids may differ only by case.

Ids are matched exactly (``MYSCENARIO`` is not ``myscenario``), but two scenarios whose ids differ
only by case would be one file on a case-insensitive file system (``seedbed pull`` names files after
ids) and are too easily taken for one another. A unique index on the lower-cased id makes the store
refuse the second one atomically, whatever the number of coordinators; rejected: a lookup before the
insert (two creations at once would both pass it).

Every id stored so far is lower-case (the only form accepted until now), so the index cannot meet a
duplicate on upgrade. Downgrade drops the index; ids with upper-case letters stay, and the previous
revision matches them exactly like any other.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ux_scenarios_id_folded", "scenarios", [sa.text("lower(id)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_scenarios_id_folded", table_name="scenarios")
