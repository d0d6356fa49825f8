"""The worker's own configuration, read once per process from ``SEEDBED_WORKER_*`` variables.

Everything that depends on the run comes in the attempt's spec from the coordinator; this holds
only what belongs to the worker node itself.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEEDBED_WORKER_", extra="ignore")

    artifacts_dir: Path = Field(
        Path.home() / ".cache" / "seedbed" / "artifacts",
        description="where file connections write a run's artifacts (a folder per run)",
    )
    secret_file_dir: Path | None = Field(
        None,
        validation_alias="SEEDBED_SECRET_FILE_DIR",
        description="the only folder connection secrets of kind `file` are read from (symlinks resolved); "
        "unset: file secrets are refused. The coordinator reads the same variable",
    )

    tls_ca_file: Path | None = Field(
        None,
        validation_alias="SEEDBED_TLS_CA_FILE",
        description="PEM CA certificates that verify the coordinator's certificate when the attempt "
        "carries none (the coordinator's SEEDBED_TLS_CA_FILE wins); unset too: the system's roots",
    )
    tls_client_cert_file: Path | None = Field(
        None,
        validation_alias="SEEDBED_TLS_CLIENT_CERT_FILE",
        description="PEM client certificate this worker presents to a coordinator that requires one "
        "(mutual TLS); with tls_client_key_file",
    )
    tls_client_key_file: Path | None = Field(
        None,
        validation_alias="SEEDBED_TLS_CLIENT_KEY_FILE",
        description="PEM private key of tls_client_cert_file",
    )

    @field_validator(
        "secret_file_dir", "tls_ca_file", "tls_client_cert_file", "tls_client_key_file", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable must not become Path("."), the working directory.
        return None if value == "" else value


@functools.cache
def worker_settings() -> WorkerSettings:
    return WorkerSettings()
