"""The coordinator's store (SQLAlchemy 2; SQLite by default, PostgreSQL through psycopg 3)."""

from seedbed.coordinator.store.records import (
    ErrorInfo,
    FireRecord,
    LogRecord,
    RunEnd,
    RunRecord,
    ScenarioRecord,
    ScenarioSettingsValue,
)
from seedbed.coordinator.store.store import Store, normalize_url, now

__all__ = [
    "ErrorInfo",
    "FireRecord",
    "LogRecord",
    "RunEnd",
    "RunRecord",
    "ScenarioRecord",
    "ScenarioSettingsValue",
    "Store",
    "normalize_url",
    "now",
]
