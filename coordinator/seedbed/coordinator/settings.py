"""The coordinator's configuration: read once from ``SEEDBED_*`` variables, validated, passed down."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from seedbed.coordinator.egress import normalize_entry

MiB = 2**20


class CoordinatorSettings(BaseSettings):
    """Operator settings. Per-scenario limits may only lower the ceilings set here."""

    model_config = SettingsConfigDict(env_prefix="SEEDBED_", extra="ignore")

    listen: str = Field("127.0.0.1:50051", description="host:port the gRPC server binds")
    advertise_address: str = Field(
        "",
        description="host:port the workers call this coordinator back at (workspace reads); empty: the "
        "listen address, with this machine's host name for a wildcard host (0.0.0.0, ::). Set it to a name "
        "the workers resolve (and that the TLS certificate names) when they run elsewhere",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate (chain) of the gRPC server; with tls_key_file the server speaks TLS "
        "only. Unset: plaintext, fit for loopback or behind a proxy that terminates TLS",
    )
    tls_key_file: Path | None = Field(None, description="PEM private key (unencrypted) of tls_cert_file")
    tls_client_ca_file: Path | None = Field(
        None,
        description="PEM CA certificates client certificates must chain to: set, every client (the CLI, "
        "the Python client, the workers) must present one (mutual TLS)",
    )
    tls_ca_file: Path | None = Field(
        None,
        description="PEM CA certificates that verify this coordinator's certificate, handed to the workers "
        "in each attempt so their calls back verify it; unset: a worker uses its own SEEDBED_TLS_CA_FILE, "
        "else the system's roots. Clients read the same variable",
    )

    @field_validator("tls_cert_file", "tls_key_file", "tls_client_ca_file", "tls_ca_file", mode="before")
    @classmethod
    def _empty_file_is_unset(cls, value: object) -> object:
        # An empty variable must not become Path("."), the working directory.
        return None if value == "" else value

    data_dir: Path = Field(Path(".seedbed"), description="where the default SQLite store lives")
    store_url: str = Field("", description="SQLAlchemy URL of the store; empty: a SQLite file in data_dir")
    ray_address: str = Field(
        "", description="Ray cluster to join; empty: RAY_ADDRESS, else a local instance started here"
    )
    sandbox_slots: int = Field(4, ge=1, le=1024, description="sandboxes a local Ray instance runs at once")
    catalog_slots: int = Field(
        2,
        ge=1,
        le=1024,
        description="catalog tasks (template validation and previews, connection tests) a local Ray "
        "instance runs at once; further ones wait their turn",
    )
    docker_url: str = Field("", description="Docker engine for the sandboxes; empty: the worker's default")
    sandbox_runtime: Literal["runc", "runsc", "auto"] = Field(
        "runc",
        description="container runtime of the sandboxes: runc (the engine's standard runtime), runsc "
        "(gVisor; the coordinator refuses to start when the engine lacks it) or auto (runsc when the "
        "engine has it registered, else runc)",
    )

    max_derived_image_bytes: int = Field(
        1024 * MiB,
        ge=1 * MiB,
        description="bytes a script's `# requirements:` header may add to the sandbox image: its wheels "
        "(with their dependencies) while they download, then the installed layer; past it the run fails "
        "as a script error and nothing of the build is kept",
    )
    derived_image_cache_bytes: int = Field(
        10 * 1024 * MiB,
        ge=0,
        description="bytes the images derived for `# requirements:` headers and superseded sandbox images "
        "may take together on a worker node; past it the least recently used are removed (after each "
        "build and at each janitor sweep). Images a container uses and the current sandbox image stay",
    )
    derived_image_unused_days: int = Field(
        30,
        ge=1,
        description="days a derived or superseded sandbox image is kept on a worker node without use",
    )

    secret_key: str = Field("", description="Fernet key for stored secrets; empty: a key file in data_dir")
    admin_api_key: str = Field(
        "",
        description="API key of the superuser 'admin', made valid at every start; empty: at first start "
        "a key is generated into data_dir/admin-api-key (readable by its owner only)",
    )

    max_script_bytes: int = Field(1 * MiB, ge=1024, le=16 * MiB)
    max_message_bytes: int = Field(8 * MiB, ge=1 * MiB, le=64 * MiB)

    default_timeout_seconds: int = Field(600, ge=1)
    max_timeout_seconds: int = Field(6 * 3600, ge=1)
    default_memory_bytes: int = Field(512 * MiB, ge=16 * MiB)
    max_memory_bytes: int = Field(8192 * MiB, ge=16 * MiB)
    nano_cpus: int = Field(1_000_000_000, ge=10_000_000)
    pids_limit: int = Field(256, ge=16)
    nofile_limit: int = Field(1024, ge=64)
    tmpfs_bytes: int = Field(256 * MiB, ge=1 * MiB)
    max_log_bytes: int = Field(10 * MiB, ge=1024, description="per attempt; later lines are dropped")
    max_line_bytes: int = Field(16 * 1024, ge=256)
    max_log_lines: int = Field(
        100_000, ge=100, description="lines of output per attempt (empty ones too); later lines are dropped"
    )

    max_generate_rows: int = Field(
        1_000_000, ge=1, description="rows of a row set a script may read into its sandbox at once"
    )
    max_rowset_rows: int = Field(
        100_000_000,
        ge=1,
        description="rows one generate call may describe (made where they are written, in shards)",
    )
    max_fetch_rows: int = Field(100_000, ge=1)
    max_reply_bytes: int = Field(64 * MiB, ge=1 * MiB, description="one reply from the agent to a sandbox")
    max_workspace_file_bytes: int = Field(64 * MiB, ge=1024)
    max_workspace_bytes: int = Field(1024 * MiB, ge=1024)
    max_template_bytes: int = Field(256 * 1024, ge=1024)
    max_template_field_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="bytes of text one template field may render in one row: a template whose estimate is "
        "over it is refused when pushed, and a computed value past it fails the generate call or preview",
    )
    max_template_row_bytes: int = Field(
        1 * MiB, ge=1024, description="estimated bytes of one template row; a template over it is refused"
    )
    agent_memory_bytes: int = Field(
        512 * MiB,
        ge=1 * MiB,
        description="bytes the worker may hold for one attempt on its script's behalf (lists uploaded "
        "into buffers, replies not yet paged in, queued calls, generated rows kept for refs); a call "
        "past it fails with LimitExceeded",
    )
    max_file_sink_bytes: int = Field(
        1024 * MiB,
        ge=1024,
        description="bytes one attempt may write through its file connections, all files together; a write "
        "past it fails with LimitExceeded and leaves no partial file",
    )
    max_asset_bytes: int = Field(
        16 * MiB,
        ge=1024,
        description="bytes one run asset may hold (dm.assets.write_*, or a file a file connection wrote); "
        "a script's write past it fails with LimitExceeded naming the asset, a file past it is not kept",
    )
    max_run_asset_bytes: int = Field(
        64 * MiB,
        ge=1024,
        description="bytes all the assets of one run may hold together (the last attempt's); past it a "
        "write fails with LimitExceeded, a file connection's file is not kept",
    )
    secret_file_dir: Path | None = Field(
        None,
        description="the only folder connection secrets of kind `file` may lie in (symlinks resolved), "
        "checked when a connection is created; workers read the same variable. Unset: file secrets are "
        "refused",
    )

    @field_validator("secret_file_dir", mode="before")
    @classmethod
    def _empty_folder_is_unset(cls, value: object) -> object:
        # An empty variable must not become Path("."), the working directory.
        return None if value == "" else value

    fires_per_minute: int = Field(
        120,
        ge=0,
        description="fires (RunScenario) one caller may make a minute: a burst of this many at once, "
        "then they refill evenly; past it RESOURCE_EXHAUSTED. Per user and per coordinator; an "
        "idempotent retry of a fire already made is free; 0: unlimited",
    )
    upload_bytes_per_minute: int = Field(
        1024 * MiB,
        ge=0,
        description="bytes of workspace files one caller may upload a minute (each file counts at "
        "least 1 KiB; a file larger than this waits for a full allowance); 0: unlimited",
    )
    template_pushes_per_minute: int = Field(
        120,
        ge=0,
        description="template pushes (and previews of unsaved documents, which a worker validates) "
        "one caller may make a minute; 0: unlimited",
    )
    scenario_puts_per_minute: int = Field(
        120, ge=0, description="scenario creations and updates one caller may make a minute; 0: unlimited"
    )

    dispatch_notice_seconds: float = Field(
        10.0,
        gt=0,
        description="how long an attempt waits for a worker before its run's log says why (no worker "
        "node has joined the Ray cluster, every sandbox slot is busy); said again when the reason changes",
    )
    janitor_interval_seconds: float = Field(60.0, gt=0, description="how often orphaned sandboxes are swept")
    janitor_unknown_grace_seconds: float = Field(
        600.0,
        ge=0,
        description="age after which a sandbox of a run this store does not know is removed (another "
        "deployment sharing the Docker engine keeps its sandboxes younger than this)",
    )
    abort_grace_seconds: float = Field(
        15.0, gt=0, description="wait for a sandbox to stop before forcing ABORTED"
    )

    lease_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="lease of a coordinator on the runs it drives, renewed every third of it; once it "
        "lapses another coordinator sharing the store takes the run over",
    )
    recovery_interval_seconds: float = Field(
        10.0, gt=0, description="how often runs whose lease lapsed are looked for"
    )
    trigger_interval_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="how often cron triggers are checked for due times (and waiting fires for their "
        "turn); a trigger fires at most this late",
    )
    purge_interval_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="how often runs past their scenario's purge_after_seconds are looked for and purged",
    )
    purge_lease_seconds: float = Field(
        120.0,
        ge=1,
        le=3600,
        description="lease of a coordinator on a run it purges, renewed every third of it; once it "
        "passed (the coordinator stopped mid-purge) the next purge pass resumes the purge",
    )
    coordinator_id: str = Field(
        "",
        max_length=255,
        description="this coordinator's name in leases; empty: host name and listen address. A "
        "restart under the same name re-drives its runs at once instead of waiting for the lease",
    )

    smtp_url: str = Field(
        "",
        description="SMTP server of e-mail reporters: smtp://[user:password@]host[:port] (plain; add "
        "?starttls=true for STARTTLS) or smtps://… (TLS); empty: e-mail reports fail with a clear error",
    )
    smtp_sender: str = Field(
        "seedbed@localhost",
        max_length=320,
        description="the From address of e-mail reports whose reporter names no sender",
    )
    reporter_max_tries: int = Field(5, ge=1, le=20, description="tries of one report, the first included")
    reporter_max_seconds: float = Field(
        60.0, gt=0, le=3600, description="time one report may take, its retries included"
    )
    reporter_timeout_seconds: float = Field(10.0, gt=0, le=300, description="one try of one report")
    reporter_initial_backoff_seconds: float = Field(
        0.5, gt=0, le=60, description="wait before the second try; doubled after each, with jitter"
    )
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated host names, IP addresses and CIDR networks webhook reporters may "
        "reach although internal (loopback, link-local, private, metadata and other non-public "
        "addresses are refused otherwise), e.g. hooks.internal,10.0.0.0/8; empty: public addresses only",
    )

    tracing: bool = Field(
        True,
        description="record one trace per run (kept in the store, fetched by GetRunTrace, exported over "
        "OTLP when the standard OTEL_EXPORTER_OTLP_* variables name an endpoint); off: no spans at all",
    )
    max_trace_spans: int = Field(
        10_000,
        ge=100,
        le=1_000_000,
        description="spans kept per run; past it an attempt's call and batch spans are dropped (counted "
        "and noted on the trace), the run, attempt, sandbox and step spans are always kept",
    )
    max_span_attribute_length: int = Field(
        1024, ge=64, le=65_536, description="characters a span attribute value keeps; longer ones are cut"
    )
    metrics_listen: str = Field(
        "127.0.0.1:9464",
        description="host:port of the Prometheus metrics endpoint (GET /metrics); port 0 picks a free "
        "one; empty: no endpoint",
    )
    rest_listen: str = Field(
        "127.0.0.1:8080",
        description="host:port of the REST API (/v1/…, OpenAPI at /v1/openapi.json) and the MCP "
        "endpoint (/mcp); port 0 picks a free one; empty: neither is served",
    )
    console: bool = Field(
        True,
        description="serve the web console at /console/ on the REST address (signed in with an API "
        "key); false: the REST API and MCP only",
    )
    console_session_seconds: float = Field(
        12 * 3600.0,
        gt=0,
        le=30 * 24 * 3600,
        description="how long a console sign-in lasts, in seconds, before the page asks for the API "
        "key again (default 12 hours)",
    )
    console_origin: str = Field(
        "",
        description="the console's origin as browsers see it (https://seedbed.example.com) when a "
        "proxy in front rewrites the Host header; empty: the request's Host is the console's origin",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="the coordinator's own log lines: text, or one JSON object per line (with run id, "
        "attempt and trace id when a line concerns a run), for log collectors",
    )

    @field_validator("console_origin")
    @classmethod
    def _console_origin_shape(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if value and (
            parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query
        ):
            raise ValueError("console_origin must be http(s)://host[:port], e.g. https://seedbed.example.com")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_shape(cls, value: str) -> str:
        if value and not (value.startswith(("smtp://", "smtps://")) and urlsplit(value).hostname):
            raise ValueError("smtp_url must be smtp://[user:password@]host[:port] or smtps://…")
        return value

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_allowed_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _allowed_hosts_shape(cls, value: list[str]) -> list[str]:
        return [normalize_entry(entry) for entry in value]

    @field_validator("listen", "metrics_listen", "rest_listen")
    @classmethod
    def _listen_has_port(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name in ("metrics_listen", "rest_listen") and value == "":
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"{info.field_name} must be host:port, e.g. 127.0.0.1:50051")
        return value

    def resolved_coordinator_id(self) -> str:
        return self.coordinator_id or f"{socket.gethostname()}/{self.listen}"

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'seedbed.db').resolve()}"
