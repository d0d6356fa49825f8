"""Templates, connections and workspace files belong to a project and may be shared by an admin.

Until now the catalog was installation-wide: any editor changed what every project's scenarios
read, and every attempt received every connection. Existing rows go to the project ``default``
(where every scenario lived before projects), unshared; an admin shares them again where needed.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("templates", "connections", "workspace_files")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("project_key", sa.String(63), nullable=False, server_default="default")
            )
            batch.add_column(sa.Column("shared", sa.Boolean, nullable=False, server_default=sa.false()))
            batch.create_index(f"ix_{table}_project", ["project_key"])


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_project")
            batch.drop_column("shared")
            batch.drop_column("project_key")
