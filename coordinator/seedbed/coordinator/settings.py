"""The coordinator's configuration: read once from ``SEEDBED_*`` variables, validated, passed down."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 2**20


class CoordinatorSettings(BaseSettings):
    """Operator settings. Per-scenario limits may only lower the ceilings set here."""

    model_config = SettingsConfigDict(env_prefix="SEEDBED_", extra="ignore")

    listen: str = Field("127.0.0.1:50051", description="host:port the gRPC server binds")
    data_dir: Path = Field(Path(".seedbed"), description="where the default SQLite store lives")
    store_url: str = Field("", description="SQLAlchemy URL of the store; empty: a SQLite file in data_dir")
    ray_address: str = Field(
        "", description="Ray cluster to join; empty: RAY_ADDRESS, else a local instance started here"
    )
    sandbox_slots: int = Field(4, ge=1, le=1024, description="sandboxes a local Ray instance runs at once")
    docker_url: str = Field("", description="Docker engine for the sandboxes; empty: the worker's default")

    secret_key: str = Field("", description="Fernet key for stored secrets; empty: a key file in data_dir")

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

    max_generate_rows: int = Field(1_000_000, ge=1, description="rows one generate call may ask for")
    max_fetch_rows: int = Field(100_000, ge=1)
    max_reply_bytes: int = Field(64 * MiB, ge=1 * MiB, description="one reply from the agent to a sandbox")
    max_workspace_file_bytes: int = Field(64 * MiB, ge=1024)
    max_workspace_bytes: int = Field(1024 * MiB, ge=1024)
    max_template_bytes: int = Field(256 * 1024, ge=1024)

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
    coordinator_id: str = Field(
        "",
        max_length=255,
        description="this coordinator's name in leases; empty: host name and listen address. A "
        "restart under the same name re-drives its runs at once instead of waiting for the lease",
    )

    @field_validator("listen")
    @classmethod
    def _listen_has_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError("listen must be host:port, e.g. 127.0.0.1:50051")
        return value

    def resolved_coordinator_id(self) -> str:
        return self.coordinator_id or f"{socket.gethostname()}/{self.listen}"

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'seedbed.db').resolve()}"
