"""`open_sink`: the one place that maps a connection kind to its sink."""

from __future__ import annotations

from pathlib import Path

from seedbed.worker.sinks._files import FileQuota, FileSink
from seedbed.worker.sinks._postgres import PostgresSink
from seedbed.worker.sinks._rest import RestSink
from seedbed.worker.sinks._spec import ConnectionSpec, Sink
from seedbed.worker.sinks._sqlalchemy import SqlAlchemySink

__all__ = ["open_sink"]


def open_sink(spec: ConnectionSpec, *, artifacts_dir: Path, file_quota: FileQuota | None = None) -> Sink:
    """The sink for `spec`. Nothing is contacted yet: database connections open on first use.

    Raises ConfigurationError when the spec's options are unusable. `artifacts_dir` is the run's
    folder, where each file connection writes into a folder of its own (`connection_folder`,
    created when missing), `file_quota` the bytes they may write together; the other kinds ignore
    both.
    """
    if spec.kind == "postgresql":
        return PostgresSink(spec)
    if spec.kind == "sql":
        return SqlAlchemySink(spec)
    if spec.kind == "rest":
        return RestSink(spec)
    return FileSink(spec, artifacts_dir=artifacts_dir, quota=file_quota)
