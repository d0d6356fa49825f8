"""Versioned templates: every change of a template is kept as an immutable version.

``template_versions`` holds one row per (template id, version): the document as pushed (source,
format, canonical form, digest, description, field names), who pushed it and when, and the project
it was pushed in. ``templates`` stays the catalog's current view; its ``revision`` is the number of
the latest version, so ``expected_revision`` keeps its meaning.

Upgrade: each existing template becomes one version numbered by its current revision (not 1: a
revision number already shown to users, or recorded next to a run, must keep naming the same
document), dated by its last update. Earlier revisions were overwritten before this change and are
not invented. ``runs.template_pins`` holds the versions a run was asked to use (a replay), as JSON
``{template id: version}``; NULL for every run so far.

Downgrade drops both; the current document of each template stays in ``templates``.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "template_versions",
        sa.Column("template_id", sa.String(80), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("project_key", sa.String(63), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("canonical", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("field_names", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
    )
    op.execute(
        "INSERT INTO template_versions (template_id, version, project_key, source, format, canonical,"
        " digest, description, field_names, created_at, created_by)"
        " SELECT id, revision, project_key, source, format, canonical, digest, description,"
        " field_names, updated_at, '' FROM templates"
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("template_pins", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("template_pins")
    op.drop_table("template_versions")
