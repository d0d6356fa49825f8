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

    @field_validator("secret_file_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable must not become Path("."), the working directory.
        return None if value == "" else value


@functools.cache
def worker_settings() -> WorkerSettings:
    return WorkerSettings()
