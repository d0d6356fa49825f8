"""Scenario ids may hold upper-case letters, and no two ids may differ only by case.

Ids are matched exactly (``MYSCENARIO`` is not ``myscenario``), but two scenarios whose ids differ
only by case would be one file on a case-insensitive file system (``seedbed pull`` names files after
ids) and are too easily taken for one another. A unique index on the lower-cased id makes the store
refuse the second one atomically, whatever the number of coordinators; rejected: a lookup before the
insert (two creations at once would both pass it).

Every id stored so far is lower-case (the only form accepted until now), so the index cannot meet a
duplicate on upgrade; a store edited by hand that holds such a pair stops the upgrade with both ids
named (rename or delete one), rather than with the database's bare unique-violation. Downgrade drops
the index; ids with upper-case letters stay, and the previous revision matches them exactly like
any other.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


class CaseOnlyDuplicateIdsError(Exception):
    """The store holds scenario ids that differ only by case: the index cannot be made."""


def upgrade() -> None:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT id FROM scenarios WHERE lower(id) IN"
            " (SELECT lower(id) FROM scenarios GROUP BY lower(id) HAVING count(*) > 1)"
            " ORDER BY lower(id), id"
        )
    )
    pairs = [row[0] for row in rows]
    if pairs:
        raise CaseOnlyDuplicateIdsError(
            "scenario ids that differ only by case cannot be kept (one file on a case-insensitive "
            f"file system): {', '.join(pairs)}; rename or delete all but one of each, then migrate again"
        )
    op.create_index("ux_scenarios_id_folded", "scenarios", [sa.text("lower(id)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_scenarios_id_folded", table_name="scenarios")
