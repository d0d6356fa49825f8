"""Catalog work the coordinator asks a worker for (as small Ray tasks): validating a template,
previewing its rows, trying a connection, purging what a run inserted. Template semantics and
target drivers live here, in the data plane, so the coordinator needs neither Faker nor database
drivers.

Templates are hostile input here: validation refuses one whose estimated field or row size is over
the operator's caps (`templates.check_sizes`), and a preview renders under the same caps. Every task
but a purge holds one `CATALOG_RESOURCE` slot, so a flood of previews waits its turn instead of taking
every Ray worker (a local Ray started by the coordinator declares the slots; see `dispatch`)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seedbed.api.v1 import attempt_pb2
from seedbed.worker import ledger, sinks, templates
from seedbed.worker.agent import AgentError
from seedbed.worker.agent._connections import to_spec
from seedbed.worker.agent._scrub import Scrubber
from seedbed.worker.settings import worker_settings
from seedbed.worker.templates._spec import RefGen

# The Ray resource a catalog task (validate, preview, connection test) holds while it runs.
CATALOG_RESOURCE = "seedbed_catalog"


def size_limits(limits_bytes: bytes) -> templates.SizeLimits:
    """The template caps of a serialized `DataLimits` (unset fields: the defaults)."""
    limits = attempt_pb2.DataLimits.FromString(limits_bytes)
    return templates.SizeLimits.of(limits.max_template_field_bytes, limits.max_template_row_bytes)


def validate_template_source(source: str, fmt: str, limits_bytes: bytes = b"") -> dict[str, Any]:
    """{"ok": True, id, format, canonical, description, field_names} or {"ok": False, "issues": [...]}.

    `limits_bytes`: a serialized `DataLimits` whose template caps the estimated sizes must respect.
    """
    try:
        spec = templates.parse_template(source, fmt=fmt)
        templates.check_sizes(spec, size_limits(limits_bytes))
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


def preview_rows(
    template_id: str, documents: dict[str, Any], count: int, seed: int | None, limits_bytes: bytes = b""
) -> dict[str, Any]:
    """Sample rows of a template; templates it references get sample rows first, so refs resolve.
    Computed text is capped per field, and each row's JSON per row (`limits_bytes`, as above).

    {"ok": True, "rows": [...], "faker_version": …} or {"ok": False, "error": "…"}.
    """
    try:
        rows = _preview(template_id, documents, count, seed, size_limits(limits_bytes))
    except templates.TemplateError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "rows": rows, "faker_version": templates.FAKER_VERSION}


def _preview(
    template_id: str, documents: dict[str, Any], count: int, seed: int | None, limits: templates.SizeLimits
) -> list[dict[str, Any]]:
    specs = {tid: templates.validate_template(doc) for tid, doc in documents.items()}
    refs = templates.RunRefs()
    base = seed if seed is not None else 0
    target = specs[template_id]
    for ref_id in _referenced(target):
        if ref_id in specs and ref_id != template_id:
            sample = templates.Generator(
                specs[ref_id], seed=templates.derive_seed("preview", 0, 0, base), refs=refs, limits=limits
            )
            refs.record(ref_id, sample.rows(max(count, 10)))
    generator = templates.Generator(
        target, seed=templates.derive_seed("preview", 1, 0, base), refs=refs, limits=limits
    )
    rows: list[dict[str, Any]] = []
    for row in generator.stream(count, batch_size=1):
        text = json.dumps(row[0], default=str)
        if len(text) > limits.row_bytes:  # `ref` values are only known now: a row of them may be large
            raise templates.GenerationError(
                f"template {template_id!r}: preview row {len(rows) + 1} is {len(text):,} bytes of JSON; "
                f"the limit is {limits.row_bytes:,} bytes per row (SEEDBED_MAX_TEMPLATE_ROW_BYTES)",
                template_id=template_id,
            )
        rows.append(json.loads(text))
    return rows


def try_connection(snapshot_bytes: bytes) -> tuple[bool, str, float]:
    """Open the connection and try it: SELECT 1, a GET of the base URL, a writable folder."""
    snapshot = attempt_pb2.ConnectionSnapshot.FromString(snapshot_bytes)
    started = time.monotonic()
    scrubber = Scrubber()
    try:
        spec, scrubber = to_spec(snapshot)
        with tempfile.TemporaryDirectory() as tmp, sinks.open_sink(spec, artifacts_dir=Path(tmp)) as sink:
            message = _probe(sink)
    except (AgentError, sinks.SinkError, OSError) as exc:
        return False, scrubber.text(str(exc)), time.monotonic() - started
    return True, message, time.monotonic() - started


def purge_run(
    snapshot_bytes: bytes,
    run_key: str,
    run_id: str,
    ledger_key: bytes,
    dry_run: bool,
    work: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Undo (with `dry_run`: count) what run `run_id` (key `run_key`) wrote through this connection,
    newest first. SQL: the rows its write ledger recorded (see `seedbed.worker.ledger`), trusting
    only ledger rows whose MAC `ledger_key` verifies, and of those only the (call, batch) pairs
    `work["batches"]` names when it is given (the batches this run applied: a replay shares its
    original's ledger identity, see `ledger.purge_run`). REST: the resources `work["rest"]` names
    ([{call, batch, path, ids}], newest first), through the connection's declared undo. File: the
    files `work["files"]` names, in the connection's folder of the run's artifacts folder (then
    the run's folder itself once it is empty).

    {"dry_run", "tables": [{table, rows_deleted, rows_recorded, batches, rows_restored,
    rows_changed}], "skipped": [{operation, target, call, batch, reason}], "errors": [{table, call,
    batch, message}], "changed": [{table, call, batch, key, reason}]}: at most one error, where the
    purge stopped.
    """
    snapshot = attempt_pb2.ConnectionSnapshot.FromString(snapshot_bytes)
    scrubber = Scrubber()
    work = work or {}
    try:
        spec, scrubber = to_spec(snapshot)
        if spec.kind == "file":
            run_folder = worker_settings().artifacts_dir / run_id
            names = [str(n) for n in work.get("files", [])]
            summary = ledger.purge_files(sinks.connection_folder(run_folder, spec.id), names, dry_run=dry_run)
            if not dry_run:
                with contextlib.suppress(OSError):  # other connections' folders in it: it stays
                    os.rmdir(run_folder)
            return summary.to_json()
        with tempfile.TemporaryDirectory() as tmp, sinks.open_sink(spec, artifacts_dir=Path(tmp)) as sink:
            if isinstance(sink, sinks.RestSink):
                summary = ledger.purge_rest(sink, list(work.get("rest", [])), dry_run=dry_run)
                return _scrubbed(summary, scrubber).to_json()
            if not isinstance(sink, sinks.PostgresSink | sinks.SqlAlchemySink):
                raise sinks.ConfigurationError(
                    f"a {spec.kind} connection has no write ledger to purge from", connection_id=spec.id
                )
            seal = ledger.LedgerSeal(run_key, run_id, ledger_key)
            only = work.get("batches")
            batches = None if only is None else {(int(call), int(batch)) for call, batch in only}
            return ledger.purge_run(sink, seal, dry_run=dry_run, only=batches).to_json()
    except (AgentError, sinks.SinkError, OSError) as exc:
        text = scrubber.text(str(exc))
        failure = ledger.PurgeFailure("", 0, 0, f"cannot purge through connection {snapshot.id}: {text}")
        return ledger.PurgeSummary(dry_run, failure=failure).to_json()


def _scrubbed(summary: ledger.PurgeSummary, scrubber: Scrubber) -> ledger.PurgeSummary:
    """A target's answer may echo the credentials it got: never in what goes back."""
    if summary.failure is not None:
        failure = summary.failure
        summary.failure = ledger.PurgeFailure(
            failure.table, failure.call, failure.batch, scrubber.text(failure.message)
        )
    return summary


def _probe(sink: Any) -> str:
    kind = sink.spec.kind
    if kind in ("postgresql", "sql"):
        sink.fetch("SELECT 1 AS ok", limit=1)
        return "connected; SELECT 1 answered"
    if kind == "rest":
        try:
            sink.get("/")  # the base URL itself
        except sinks.RestError as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int) and status < 500:
                return f"reachable; GET of the base URL answered HTTP {status}"
            raise
        return "reachable; GET of the base URL answered"
    return "the artifacts folder is writable"


def _referenced(spec: templates.TemplateSpec) -> list[str]:
    return sorted({f.generator.template for f in spec.fields.values() if isinstance(f.generator, RefGen)})
