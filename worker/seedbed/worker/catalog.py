"""Catalog work the coordinator asks a worker for (as small Ray tasks): validating a template,
previewing its rows, trying a connection, purging what a run inserted. Template semantics and
target drivers live here, in the data plane, so the coordinator needs neither Faker nor database
drivers."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from seedbed.api.v1 import attempt_pb2
from seedbed.worker import ledger, sinks, templates
from seedbed.worker.agent import AgentError
from seedbed.worker.agent._connections import to_spec
from seedbed.worker.templates._spec import RefGen


def validate_template_source(source: str, fmt: str) -> dict[str, Any]:
    """{"ok": True, id, format, canonical, description, field_names} or {"ok": False, "issues": [...]}."""
    try:
        spec = templates.parse_template(source, fmt=fmt)
    except templates.TemplateValidationError as exc:
        return {"ok": False, "issues": [{"path": p.path, "message": p.message} for p in exc.problems]}
    detected = fmt if fmt in ("yaml", "json") else ("json" if source.lstrip().startswith("{") else "yaml")
    return {
        "ok": True,
        "id": spec.id,
        "format": detected,
        "canonical": spec.to_json(),
        "description": spec.description or "",
        "field_names": list(spec.fields),
    }


def preview_rows(template_id: str, documents: dict[str, Any], count: int, seed: int | None) -> dict[str, Any]:
    """Sample rows of a template; templates it references get sample rows first, so refs resolve.

    {"ok": True, "rows": [...], "faker_version": …} or {"ok": False, "error": "…"}.
    """
    try:
        rows = _preview(template_id, documents, count, seed)
    except templates.TemplateError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "rows": rows, "faker_version": templates.FAKER_VERSION}


def _preview(
    template_id: str, documents: dict[str, Any], count: int, seed: int | None
) -> list[dict[str, Any]]:
    specs = {tid: templates.validate_template(doc) for tid, doc in documents.items()}
    refs = templates.RunRefs()
    base = seed if seed is not None else 0
    target = specs[template_id]
    for ref_id in _referenced(target):
        if ref_id in specs and ref_id != template_id:
            sample = templates.Generator(
                specs[ref_id], seed=templates.derive_seed("preview", 0, 0, base), refs=refs
            )
            refs.record(ref_id, sample.rows(max(count, 10)))
    generator = templates.Generator(target, seed=templates.derive_seed("preview", 1, 0, base), refs=refs)
    rows: list[dict[str, Any]] = json.loads(json.dumps(generator.rows(count), default=str))
    return rows


def try_connection(snapshot_bytes: bytes) -> tuple[bool, str, float]:
    """Open the connection and try it: SELECT 1, a GET of the base URL, a writable folder."""
    snapshot = attempt_pb2.ConnectionSnapshot.FromString(snapshot_bytes)
    started = time.monotonic()
    secret: str | None = None
    try:
        spec, secret = to_spec(snapshot)
        with tempfile.TemporaryDirectory() as tmp, sinks.open_sink(spec, artifacts_dir=Path(tmp)) as sink:
            message = _probe(sink)
    except (AgentError, sinks.SinkError, OSError) as exc:
        text = str(exc).replace(secret, "***") if secret else str(exc)
        return False, text, time.monotonic() - started
    return True, message, time.monotonic() - started


def purge_run(snapshot_bytes: bytes, run_key: str, dry_run: bool) -> dict[str, Any]:
    """Delete (with `dry_run`: count) the rows run `run_key` inserted through this SQL connection,
    newest batch first, by the keys its write ledger recorded (see `seedbed.worker.ledger`).

    {"dry_run", "tables": [{table, rows_deleted, rows_recorded, batches}], "skipped": [{operation,
    target, call, batch, reason}], "errors": [{table, call, batch, message}]}: at most one error,
    where the purge stopped.
    """
    snapshot = attempt_pb2.ConnectionSnapshot.FromString(snapshot_bytes)
    secret: str | None = None
    try:
        spec, secret = to_spec(snapshot)
        with tempfile.TemporaryDirectory() as tmp, sinks.open_sink(spec, artifacts_dir=Path(tmp)) as sink:
            if not isinstance(sink, sinks.PostgresSink | sinks.SqlAlchemySink):
                raise sinks.ConfigurationError(
                    f"a {spec.kind} connection has no write ledger to purge from", connection_id=spec.id
                )
            return ledger.purge_run(sink, run_key, dry_run=dry_run).to_json()
    except (AgentError, sinks.SinkError, OSError) as exc:
        text = str(exc).replace(secret, "***") if secret else str(exc)
        failure = ledger.PurgeFailure("", 0, 0, f"cannot purge through connection {snapshot.id}: {text}")
        return ledger.PurgeSummary(dry_run, failure=failure).to_json()


def _probe(sink: Any) -> str:
    kind = sink.spec.kind
    if kind in ("postgresql", "sql"):
        sink.fetch("SELECT 1 AS ok", limit=1)
        return "connected; SELECT 1 answered"
    if kind == "rest":
        try:
            sink.get("")
        except sinks.RestError as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int) and status < 500:
                return f"reachable; GET of the base URL answered HTTP {status}"
            raise
        return "reachable; GET of the base URL answered"
    return "the artifacts folder is writable"


def _referenced(spec: templates.TemplateSpec) -> list[str]:
    return sorted({f.generator.template for f in spec.fields.values() if isinstance(f.generator, RefGen)})
