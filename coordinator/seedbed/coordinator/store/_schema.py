"""Tables of the coordinator's store (SQLAlchemy Core). Migrations create them; a test checks that the
migrated schema and these definitions agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

metadata = MetaData()

scenarios = Table(
    "scenarios",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("script", Text, nullable=False),
    Column("settings", Text, nullable=False),  # JSON
    Column("revision", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("project_key", String(63), nullable=False, server_default="default"),
    Column("last_modified_by", String(63), nullable=False, server_default=""),
    # The user who created the scenario or last changed its script: its runs act as them when
    # settings.run_as is empty (other edits lend no identity).
    Column("script_modified_by", String(63), nullable=False, server_default=""),
    Index("ix_scenarios_project", "project_key"),
)
# Ids are matched exactly, but two that differ only by case may not coexist (migration 0010).
Index("ux_scenarios_id_folded", func.lower(scenarios.c.id), unique=True)

fires = Table(
    "fires",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scenario_id", String(80), nullable=False, index=True),
    Column("state", String(20), nullable=False),
    Column("run_id", String(40)),
    Column("cancel_reason", Text),
    Column("params", Text, nullable=False),  # JSON
    Column("idempotency_key", String(255)),
    Column("request_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("trigger_id", String(80)),
    Column("triggered_by", String(63), nullable=False, server_default=""),
    Column("scheduled_at", DateTime(timezone=True)),
    Column("queue_reason", Text),  # set while the fire waits behind an active run
    Column("resolved_at", DateTime(timezone=True)),
    # W3C traceparent of the fire's span: the run it gets is recorded under it.
    Column("traceparent", String(64)),
    # A dry run (migration 0014): part of the request an idempotency key identifies.
    Column("dry_run", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("idempotency_key", name="uq_fires_idempotency_key"),
    Index("ix_fires_scenario_state", "scenario_id", "state", "created_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scenario_id", String(80), nullable=False),
    Column("fire_id", String(40), nullable=False),
    Column("run_key", String(255), nullable=False),
    Column("state", String(20), nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("script", Text, nullable=False),  # snapshot: an update never changes a run in flight
    Column("settings", Text, nullable=False),  # snapshot, JSON
    Column("scenario_revision", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("error", Text),  # JSON ErrorDetails
    Column("attempt_count", Integer, nullable=False, default=0),
    Column("logs_truncated", Boolean, nullable=False, default=False),
    Column("dropped_log_lines", BigInteger, nullable=False, default=0),
    Column("warning_count", Integer, nullable=False, default=0),
    Column("exit_code", Integer),
    Column("last_sequence", BigInteger, nullable=False, default=0),
    Column("abort_reason", Text),
    Column("details", Text),  # JSON: library versions, steps
    Column("next_attempt_at", DateTime(timezone=True)),  # set while a retry waits for its backoff
    Column("project_key", String(63), nullable=False, server_default="default"),
    Column("run_as", String(63), nullable=False, server_default=""),
    Column("triggered_by", String(63), nullable=False, server_default=""),
    Column("trigger_id", String(80)),
    Column("traceparent", String(64)),  # the fire's span: the run's span is its child
    Column("dropped_spans", BigInteger, nullable=False, server_default="0"),
    # A dry run writes nothing; its report (a serialized DryRunReport) is kept here (store.dryruns).
    Column("dry_run", Boolean, nullable=False, server_default=false()),
    Column("dry_run_report", LargeBinary),
    # JSON: a replay's pins {template id: version} (else NULL) until the first dispatch replaces them by
    # {"fixed": {template id: version}}, what every attempt uses (store.templates: _pins, fix_for_run).
    Column("template_pins", Text),
    # Replayable runs: the image the script ran in (every attempt that starts records its own: the
    # latest one's, whose writes the run kept, wins; store.replays.record_image), the run a replay
    # replays, and (a replay) what its attempts pin, JSON: see store.replays.
    Column("image", String(255)),
    Column("replayed_from", String(40)),
    Column("replay", Text),
    Index("ix_runs_scenario_created", "scenario_id", "created_at"),
    Index("ix_runs_project_created", "project_key", "created_at"),
    Index("ix_runs_state", "state"),
    Index("ix_runs_created", "created_at"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("fencing_token", BigInteger, nullable=False),
    Column("state", String(20), nullable=False),  # DISPATCHED, RUNNING, ENDED
    Column("outcome", String(30)),
    Column("container_id", String(80)),
    Column("node", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("error", Text),  # JSON ErrorDetails
    Column("worker_pid", Integer),
    # The driving coordinator renews this; once past, another coordinator may take the run over.
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("holder", String(255)),  # the coordinator that began the attempt
    Column("task_id", String(80)),  # the Ray task that ran it
)

# What the worker's write ledger reported: one row per batch per attempt.
write_batches = Table(
    "write_batches",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("connection_id", String(80), primary_key=True),
    Column("call", Integer, primary_key=True),
    Column("batch", Integer, primary_key=True),
    Column("operation", String(20), nullable=False),
    Column("target", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("status", String(20), nullable=False),  # APPLIED | REPLAYED
    Column("at", DateTime(timezone=True), nullable=False),
)

log_lines = Table(
    "log_lines",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("stream", String(10), nullable=False),
    Column("level", String(10), nullable=False, default=""),
    Column("text", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("fields", Text),  # JSON: an SDK log call's fields, each value as JSON text
    Column("trace_id", String(32)),
    Column("span_id", String(16)),
)

# Finished spans of runs' traces (serialized seedbed.api.v1.Span), kept under the run they belong to,
# or under the fire for the spans recorded before the fire had a run (its RunScenario call).
spans = Table(
    "spans",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("owner", String(40), nullable=False),  # run_… or fire_…
    Column("trace_id", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),  # 0: recorded by the coordinator
    Column("capped", Boolean, nullable=False, server_default=false()),  # counts against the run's cap
    Column("data", LargeBinary, nullable=False),
    Index("ix_spans_owner", "owner", "id"),
)

templates = Table(
    "templates",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("source", Text, nullable=False),
    Column("format", String(10), nullable=False),
    Column("canonical", Text, nullable=False),  # JSON
    Column("digest", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("field_names", Text, nullable=False),  # JSON list
    Column("revision", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The project that owns it (its editors change it; its runs use it) and whether an admin shared
    # it with every project (read and used there, changed by the owner's editors only).
    Column("project_key", String(63), nullable=False, server_default="default"),
    Column("shared", Boolean, nullable=False, server_default=false()),
    Index("ix_templates_project", "project_key"),
)

# Every version of every template, immutable (see migration 0011); kept when the template is deleted
# so that the runs which used a version stay explainable.
template_versions = Table(
    "template_versions",
    metadata,
    Column("template_id", String(80), primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("project_key", String(63), nullable=False),
    Column("source", Text, nullable=False),
    Column("format", String(10), nullable=False),
    Column("canonical", Text, nullable=False),  # JSON
    Column("digest", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("field_names", Text, nullable=False),  # JSON list
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(100), nullable=False, server_default=""),
)

connections = Table(
    "connections",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("description", Text, nullable=False),
    Column("url", Text, nullable=False),  # never with a password
    Column("rest", Text, nullable=False),  # JSON RestOptions, without the secret
    Column("secret_kind", String(10), nullable=False),  # none | stored | env | file
    Column("secret_ref", Text, nullable=False),  # env name or file path
    Column("secret_cipher", Text),  # Fernet token of a stored secret
    Column("allowed_users", Text),  # JSON list of user ids whose runs may use it; NULL or []: everyone
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # As for templates.
    Column("project_key", String(63), nullable=False, server_default="default"),
    Column("shared", Boolean, nullable=False, server_default=false()),
    # JSON BulkOptions given at create (postgresql only); {}: every option at its default.
    Column("bulk", Text, nullable=False, server_default="{}"),
    Index("ix_connections_project", "project_key"),
)

workspace_files = Table(
    "workspace_files",
    metadata,
    Column("path", String(512), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # As for templates.
    Column("project_key", String(63), nullable=False, server_default="default"),
    Column("shared", Boolean, nullable=False, server_default=false()),
    Index("ix_workspace_files_project", "project_key"),
)

# Run assets (migration 0012): the files a run kept, per attempt; listed once complete.
run_assets = Table(
    "run_assets",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("complete", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

run_asset_chunks = Table(
    "run_asset_chunks",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("name", String(512), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    ForeignKeyConstraint(
        ["run_id", "attempt", "name"],
        ["run_assets.run_id", "run_assets.attempt", "run_assets.name"],
        ondelete="CASCADE",
    ),
)

workspace_chunks = Table(
    "workspace_chunks",
    metadata,
    Column("path", String(512), ForeignKey("workspace_files.path", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("key", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("superuser", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(63), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project_key", String(63), ForeignKey("projects.key", ondelete="CASCADE"), primary_key=True),
    Column("role", String(10), nullable=False),  # VIEWER | RUNNER | EDITOR | ADMIN
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(63), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("description", Text, nullable=False),
    Column("secret_sha256", String(64), nullable=False),  # the secret itself is never stored
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_api_keys_user", "user_id"),
)

# Per cron trigger: the latest due time fired or passed over. A coordinator claims the next one with
# a conditional UPDATE on last_due_at, so of several coordinators only one fires it.
trigger_states = Table(
    "trigger_states",
    metadata,
    Column("scenario_id", String(80), primary_key=True),
    Column("trigger_id", String(80), primary_key=True),
    Column("last_due_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

reporter_deliveries = Table(
    "reporter_deliveries",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("reporter_id", String(80), primary_key=True),
    Column("event", String(20), primary_key=True),  # RUN_STARTED | RUN_FINISHED
    Column("status", String(20), nullable=False),  # DELIVERED | FAILED
    Column("tries", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Purges of runs (see store.purges): one row per run, claimed with a lease by the coordinator
# purging it; DONE rows are never purged again.
run_purges = Table(
    "run_purges",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("scenario_id", String(80), nullable=False),
    Column("project_key", String(63), nullable=False),
    Column("trigger", String(20), nullable=False),  # ttl | request
    Column("state", String(20), nullable=False),  # RUNNING | DONE | FAILED
    Column("attempts", Integer, nullable=False),
    Column("holder", String(255), nullable=False),
    Column("lease_expires_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("message", Text, nullable=False),
    Column("result", Text),  # JSON PurgeRunResponse
    Index("ix_run_purges_started", "started_at"),
)

# The ids a run's REST posts created, per batch (through connections with a declared undo).
rest_created = Table(
    "rest_created",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("connection_id", String(80), primary_key=True),
    Column("call", Integer, primary_key=True),
    Column("batch", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    # JSON list of strings: one per row posted (its id, "" when none was named), or one
    # "cannot undo" entry for all of a request's rows (RestSink.created_ids, .unrecorded)
    Column("ids", Text, nullable=False),
)
