"""The worker's own configuration, read once per process from ``SEEDBED_WORKER_*`` variables.

Everything that depends on the run comes in the attempt's spec from the coordinator; this holds
only what belongs to the worker node itself.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEEDBED_WORKER_", extra="ignore")

    artifacts_dir: Path = Field(
        Path.home() / ".cache" / "seedbed" / "artifacts",
        description="where file connections write a run's artifacts (a folder per run)",
    )


@functools.cache
def worker_settings() -> WorkerSettings:
    return WorkerSettings()
