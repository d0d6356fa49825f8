"""The coordinator's store (SQLAlchemy 2; SQLite by default, PostgreSQL through psycopg 3)."""

from seedbed.coordinator.store.metrics import MetricsRepository, RunCounts
from seedbed.coordinator.store.records import (
    AttemptRecord,
    ErrorInfo,
    FireRecord,
    LogRecord,
    RunEnd,
    RunRecord,
    ScenarioRecord,
    ScenarioSettingsValue,
    StaleRun,
    WriteBatchRecord,
)
from seedbed.coordinator.store.store import Store, normalize_url, now

__all__ = [
    "AttemptRecord",
    "ErrorInfo",
    "FireRecord",
    "LogRecord",
    "MetricsRepository",
    "RunCounts",
    "RunEnd",
    "RunRecord",
    "ScenarioRecord",
    "ScenarioSettingsValue",
    "StaleRun",
    "Store",
    "WriteBatchRecord",
    "normalize_url",
    "now",
]
