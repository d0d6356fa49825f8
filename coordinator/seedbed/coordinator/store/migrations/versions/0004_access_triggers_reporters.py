"""Projects, users, API keys and roles; scenario ownership and run_as; trigger schedules, queued
fires and reporter deliveries; the Ray task of each attempt.

Revision ID: 0004
Revises: 0003
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    projects = op.create_table(
        "projects",
        sa.Column("key", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.bulk_insert(
        projects,
        [
            {
                "key": "default",
                "name": "Default project",
                "description": "Scenarios created without a project.",
                "created_at": datetime.now(UTC),
            }
        ],
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("superuser", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(63), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "project_key", sa.String(63), sa.ForeignKey("projects.key", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(10), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(63), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("revoked_at", TS),
        sa.Index("ix_api_keys_user", "user_id"),
    )
    with op.batch_alter_table("scenarios") as batch:
        batch.add_column(sa.Column("project_key", sa.String(63), nullable=False, server_default="default"))
        batch.add_column(sa.Column("last_modified_by", sa.String(63), nullable=False, server_default=""))
        batch.create_index("ix_scenarios_project", ["project_key"])
    with op.batch_alter_table("fires") as batch:
        batch.add_column(sa.Column("trigger_id", sa.String(80)))
        batch.add_column(sa.Column("triggered_by", sa.String(63), nullable=False, server_default=""))
        batch.add_column(sa.Column("scheduled_at", TS))
        batch.add_column(sa.Column("queue_reason", sa.Text))
        batch.add_column(sa.Column("resolved_at", TS))
        batch.create_index("ix_fires_scenario_state", ["scenario_id", "state", "created_at"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("project_key", sa.String(63), nullable=False, server_default="default"))
        batch.add_column(sa.Column("run_as", sa.String(63), nullable=False, server_default=""))
        batch.add_column(sa.Column("triggered_by", sa.String(63), nullable=False, server_default=""))
        batch.add_column(sa.Column("trigger_id", sa.String(80)))
        batch.create_index("ix_runs_project_created", ["project_key", "created_at"])
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("task_id", sa.String(80)))
    with op.batch_alter_table("connections") as batch:
        # JSON list of the users whose runs may use the connection; NULL or []: every user.
        batch.add_column(sa.Column("allowed_users", sa.Text))
    op.create_table(
        "trigger_states",
        sa.Column("scenario_id", sa.String(80), primary_key=True),
        sa.Column("trigger_id", sa.String(80), primary_key=True),
        # The latest due time already fired (or deliberately passed over); a coordinator claims the
        # next due time with a conditional update on this column, so only one of several fires it.
        sa.Column("last_due_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "reporter_deliveries",
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("reporter_id", sa.String(80), primary_key=True),
        sa.Column("event", sa.String(20), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reporter_deliveries")
    op.drop_table("trigger_states")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("allowed_users")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("task_id")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_project_created")
        for column in ("trigger_id", "triggered_by", "run_as", "project_key"):
            batch.drop_column(column)
    with op.batch_alter_table("fires") as batch:
        batch.drop_index("ix_fires_scenario_state")
        for column in ("resolved_at", "queue_reason", "scheduled_at", "triggered_by", "trigger_id"):
            batch.drop_column(column)
    with op.batch_alter_table("scenarios") as batch:
        batch.drop_index("ix_scenarios_project")
        batch.drop_column("last_modified_by")
        batch.drop_column("project_key")
    op.drop_table("api_keys")
    op.drop_table("memberships")
    op.drop_table("users")
    op.drop_table("projects")
