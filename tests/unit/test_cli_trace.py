"""A run's trace on the client's side: ``RunTrace`` (typed spans, their tree, OTLP JSON), the
waterfall ``seedbed run trace RUN`` draws, and log events' fields, against a real gRPC server on
loopback that serves a fixed trace and log (``FakeRunService``)."""

from __future__ import annotations

import base64
import io
import json
import random
import re
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.proto.trace.v1 import trace_pb2
from rich.cells import cell_len
from rich.console import Console

from seedbed.api.v1 import run_pb2, run_pb2_grpc
from seedbed.cli import main
from seedbed.cli._output import printable
from seedbed.cli._trace import UNICODE, Waterfall, short_duration, summary, visible_rows
from seedbed.client import Client, LogEvent, RunTrace, ScenarioRun, TraceSpan
from tests.conftest import eventually

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
BASE = 1_780_000_000 * 10**9 + 123  # nanoseconds: a datetime would lose the last three digits
RUN = "run_traced"
EMPTY = "run_untraced"
SECRET = "run_of_another_project"
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;[0-9;]+|9[0-7])m")
RED = re.compile(r"\x1b\[(1;)?31m")


def _sid(n: int) -> str:
    return f"{n:016x}"


def _span(
    n: int,
    parent: int | None,
    name: str,
    service: str,
    start_ms: float,
    end_ms: float,
    *,
    kind: run_pb2.SpanKind = run_pb2.SPAN_KIND_INTERNAL,
    error: str = "",
    **attributes: Any,
) -> run_pb2.Span:
    span = run_pb2.Span(
        trace_id=TRACE_ID,
        span_id=_sid(n),
        parent_span_id=_sid(parent) if parent is not None else "",
        name=name,
        kind=kind,
        service=f"seedbed-{service}",
        status_code=run_pb2.SPAN_STATUS_CODE_ERROR if error else run_pb2.SPAN_STATUS_CODE_OK,
        status_message=error,
    )
    span.start_time.FromNanoseconds(BASE + int(start_ms * 1e6))
    span.end_time.FromNanoseconds(BASE + int(end_ms * 1e6))
    for key, value in attributes.items():
        attribute = span.attributes.add(key=key.replace("__", "."))
        if isinstance(value, bool):
            attribute.bool_value = value
        elif isinstance(value, int):
            attribute.int_value = value
        elif isinstance(value, float):
            attribute.double_value = value
        else:
            attribute.string_value = value
    return span


def _batch(n: int, parent: int, start_ms: float, end_ms: float, ledger: str) -> run_pb2.Span:
    return _span(
        n,
        parent,
        "COPY public.customers",
        "worker",
        start_ms,
        end_ms,
        kind=run_pb2.SPAN_KIND_CLIENT,
        db__system__name="postgresql",
        db__operation__name="COPY",
        db__collection__name="public.customers",
        seedbed__rows=10_000,
        seedbed__bytes=1_048_576,
        seedbed__ledger=ledger,
    )


def _spans() -> list[run_pb2.Span]:
    """A run's trace, shuffled: the order the server sends must not matter."""
    spans = [
        _span(1, None, "RunScenario", "coordinator", 0, 6210, kind=run_pb2.SPAN_KIND_SERVER),
        _span(2, 1, "run", "coordinator", 5, 6200),
        _span(3, 2, "attempt 1", "coordinator", 10, 6190, seedbed__attempt=1),
        _span(4, 3, "queue wait", "worker", 12, 300),
        _span(5, 3, "container start", "worker", 300, 900, seedbed__sampled=True),
        _span(6, 3, "script", "worker", 900, 6180, seedbed__ratio=0.5),
        _span(7, 6, "step customers", "worker", 950, 3000),
        _span(8, 7, "insert", "worker", 960, 2990, seedbed__table="public.customers", seedbed__rows=20_000),
        _batch(9, 8, 970, 1900, "written"),
        _batch(10, 8, 1900, 2980, "skipped"),
        _span(11, 6, "step webhook", "worker", 3000, 6170, error="HTTPError: 503 Service Unavailable"),
        _span(
            12,
            11,
            "post",
            "worker",
            3010,
            6160,
            kind=run_pb2.SPAN_KIND_CLIENT,
            error="503",
            http__request__method="POST",
            server__address="api.example.com",
            http__response__status_code=503,
        ),
        # Its parent (a shard span past the cap) was not kept.
        _span(13, 99, "shard 3", "worker", 4000, 5000, seedbed__nan=float("nan")),
    ]
    random.Random(7).shuffle(spans)
    return spans


TREE = [
    (0, "RunScenario"),
    (1, "run"),
    (2, "attempt 1"),
    (3, "queue wait"),
    (3, "container start"),
    (3, "script"),
    (4, "step customers"),
    (5, "insert"),
    (6, "COPY public.customers"),
    (6, "COPY public.customers"),
    (4, "step webhook"),
    (5, "post"),
    (0, "shard 3"),
]
NOTE = "12 call spans past the cap of 10,000 were dropped; raise SEEDBED_MAX_TRACE_SPANS to keep more"


def _response(spans: list[run_pb2.Span] | None = None) -> run_pb2.GetRunTraceResponse:
    return run_pb2.GetRunTraceResponse(
        trace_id=TRACE_ID,
        spans=_spans() if spans is None else spans,
        dropped_spans=12,
        max_spans=10_000,
        note=NOTE,
    )


def _trace(spans: list[run_pb2.Span] | None = None) -> RunTrace:
    return RunTrace(RUN, _response(spans))


# -- the loopback coordinator ---------------------------------------------------------------------


def _line(sequence: int, stream: run_pb2.LogStream, text: str, **extra: Any) -> run_pb2.LogLine:
    line = run_pb2.LogLine(sequence=sequence, attempt=1, stream=stream, text=text, **extra)
    line.time.FromNanoseconds(BASE + sequence * 10**6)
    return line


LINES = [
    _line(1, run_pb2.LOG_STREAM_SYSTEM, "attempt 1 started", level="info"),
    _line(
        2,
        run_pb2.LOG_STREAM_SYSTEM,
        "loaded rows=5 tables=['a', 'b'] broken=… odd=NaN",
        level="info",
        fields={
            "rows": "5",
            "tables": '["a", "b"]',
            "nested": '{"ok": true, "ratio": 0.5, "none": null}',
            "broken": "not json {",
            "odd": "NaN",
        },
        trace_id=TRACE_ID,
        span_id=_sid(7),
    ),
    _line(3, run_pb2.LOG_STREAM_STDOUT, "plain print", trace_id=TRACE_ID, span_id=_sid(6)),
]


class FakeRunService(run_pb2_grpc.RunServiceServicer):
    """The RunService calls the trace and log commands make, answered from fixed data; unknown runs
    NOT_FOUND, another project's run PERMISSION_DENIED, as the coordinator answers them."""

    def _check(self, run_id: str, context: grpc.ServicerContext) -> None:
        if run_id == SECRET:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"no role in the project of run {run_id}")
        if run_id not in (RUN, EMPTY):
            context.abort(grpc.StatusCode.NOT_FOUND, f"run {run_id} not found")

    def _run(self, run_id: str) -> run_pb2.Run:
        return run_pb2.Run(
            id=run_id, scenario_id="scn_demo", state=run_pb2.RUN_STATE_SUCCESS, trace_id=TRACE_ID
        )

    def GetRun(self, request: run_pb2.GetRunRequest, context: grpc.ServicerContext) -> run_pb2.GetRunResponse:
        self._check(request.run_id, context)
        return run_pb2.GetRunResponse(run=self._run(request.run_id))

    def GetRunTrace(
        self, request: run_pb2.GetRunTraceRequest, context: grpc.ServicerContext
    ) -> run_pb2.GetRunTraceResponse:
        self._check(request.run_id, context)
        if request.run_id == EMPTY:
            return run_pb2.GetRunTraceResponse(max_spans=10_000, note="tracing was off for this run")
        return _response()

    def StreamRunLogs(
        self, request: run_pb2.StreamRunLogsRequest, context: grpc.ServicerContext
    ) -> Iterator[run_pb2.StreamRunLogsResponse]:
        self._check(request.run_id, context)
        for line in LINES:
            if line.sequence > request.after_sequence:
                yield run_pb2.StreamRunLogsResponse(line=line)
        yield run_pb2.StreamRunLogsResponse(end=run_pb2.StreamEnd(run=self._run(request.run_id)))


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    run_pb2_grpc.add_RunServiceServicer_to_server(FakeRunService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli(address: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for variable in ("COLUMNS", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLORTERM"):
        monkeypatch.delenv(variable, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--address", address, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


# -- RunTrace --------------------------------------------------------------------------------------


def test_spans_are_typed_values() -> None:
    trace = _trace()
    assert (trace.trace_id, trace.dropped_spans, trace.max_spans, trace.note) == (TRACE_ID, 12, 10_000, NOTE)
    assert len(trace) == 13 and [s.name for s in trace][:3] == ["RunScenario", "run", "attempt 1"]
    root = trace.spans[0]
    assert isinstance(root, TraceSpan)
    assert (root.kind, root.status, root.service, root.parent_span_id) == (
        "SERVER",
        "OK",
        "seedbed-coordinator",
        "",
    )
    assert root.start_unix_nano == BASE and root.end_unix_nano == BASE + 6_210_000_000
    assert root.start_time == datetime.fromtimestamp(1_780_000_000, UTC)
    assert root.duration == timedelta(seconds=6.21) and trace.duration == timedelta(seconds=6.21)
    batch = next(s for s in trace if s.span_id == _sid(9))
    assert batch.kind == "CLIENT" and not batch.error
    assert batch.attributes == {
        "db.system.name": "postgresql",
        "db.operation.name": "COPY",
        "db.collection.name": "public.customers",
        "seedbed.rows": 10_000,
        "seedbed.bytes": 1_048_576,
        "seedbed.ledger": "written",
    }
    assert type(trace.get(_sid(5)).attributes["seedbed.sampled"]) is bool  # type: ignore[union-attr]
    assert trace.get(_sid(6)).attributes["seedbed.ratio"] == 0.5  # type: ignore[union-attr]
    post = trace.get(_sid(12))
    assert post is not None and post.error and post.status == "ERROR" and post.status_message == "503"
    assert [s.name for s in trace.errors()] == ["step webhook", "post"]
    assert trace.get("feedfacefeedface") is None


def test_tree_order_from_out_of_order_spans() -> None:
    trace = _trace()
    assert [(depth, span.name) for depth, span in trace.walk()] == TREE
    script = trace.get(_sid(6))
    assert script is not None
    assert [s.name for s in trace.children(script)] == ["step customers", "step webhook"]
    parent = trace.parent(script)
    assert parent is not None and parent.name == "attempt 1"
    # A parent and a child that started in the same nanosecond: the parent (the longer) first.
    same = [_span(1, None, "root", "worker", 0, 10), _span(2, 1, "child", "worker", 0, 5)]
    assert [s.name for _, s in RunTrace(RUN, _response(same[::-1])).walk()] == ["root", "child"]


def test_a_span_whose_parent_is_missing_is_a_root_not_lost() -> None:
    trace = _trace()
    shard = trace.get(_sid(13))
    assert shard is not None and shard.parent_span_id == _sid(99)
    assert [s.name for s in trace.roots()] == ["RunScenario", "shard 3"]
    assert trace.parent(shard) is None
    assert sum(1 for _ in trace.walk()) == len(trace)


def test_forged_parents_cycles_and_depth_lose_nothing() -> None:
    # A cycle (1 ↔ 2) with a span hanging from it that started earlier (3), a span that is its own
    # parent (4), and a duplicated id (5 twice).
    spans = [
        _span(3, 2, "hangs from the cycle", "worker", 0, 1),
        _span(1, 2, "cycle a", "worker", 1, 2),
        _span(2, 1, "cycle b", "worker", 2, 3),
        _span(4, 4, "own parent", "worker", 3, 4),
        _span(5, None, "twin", "worker", 4, 5),
        _span(5, None, "twin", "worker", 5, 6),
    ]
    trace = _trace(spans)
    walked = [(d, s.name) for d, s in trace.walk()]
    assert sorted(name for _, name in walked) == sorted(s.name for s in spans)
    assert walked[:3] == [(0, "cycle a"), (1, "cycle b"), (2, "hangs from the cycle")]
    assert trace.children(trace.spans[-1]) == []
    # Deep traces are walked and drawn without recursion.
    chain = [_span(n, n - 1 if n else None, f"level {n}", "worker", n, 20_000 - n) for n in range(3000)]
    deep = _trace(chain)
    assert [d for d, _ in deep.walk()] == list(range(3000))
    rows = visible_rows(deep, UNICODE, max_depth=3)
    assert [r.span.name for r in rows] == ["level 0", "level 1", "level 2"] and rows[-1].hidden == 2997


def test_otlp_json_is_otlp() -> None:
    document = _trace().to_otlp_json()
    text = json.dumps(document, allow_nan=False)  # NaN is spelt as proto3 JSON spells it
    resources = document["resourceSpans"]
    services = [r["resource"]["attributes"] for r in resources]
    assert services == [
        [{"key": "service.name", "value": {"stringValue": "seedbed-coordinator"}}],
        [{"key": "service.name", "value": {"stringValue": "seedbed-worker"}}],
    ]
    spans = [span for r in resources for scope in r["scopeSpans"] for span in scope["spans"]]
    assert [r["scopeSpans"][0]["scope"] for r in resources] == [{"name": "seedbed"}] * 2
    assert len(spans) == 13
    for span in spans:
        assert re.fullmatch("[0-9a-f]{32}", span["traceId"]) and re.fullmatch("[0-9a-f]{16}", span["spanId"])
        assert re.fullmatch("[0-9]+", span["startTimeUnixNano"]) and isinstance(span["kind"], int)
    root = spans[0]
    assert "parentSpanId" not in root and root["kind"] == 2 and root["name"] == "RunScenario"
    assert root["startTimeUnixNano"] == str(BASE) and root["endTimeUnixNano"] == str(BASE + 6_210_000_000)
    assert root["status"] == {"code": 1, "message": ""}
    post = next(s for s in spans if s["name"] == "post")
    assert post["parentSpanId"] == _sid(11) and post["kind"] == 3
    assert post["status"] == {"code": 2, "message": "503"}
    assert {"key": "http.response.status_code", "value": {"intValue": "503"}} in post["attributes"]
    attributes = {a["key"]: a["value"] for s in spans for a in s["attributes"]}
    assert attributes["seedbed.sampled"] == {"boolValue": True}
    assert attributes["seedbed.ratio"] == {"doubleValue": 0.5}
    assert attributes["seedbed.nan"] == {"doubleValue": "NaN"}
    assert attributes["db.collection.name"] == {"stringValue": "public.customers"}

    # Protobuf's JSON reader takes bytes as base64: with the ids turned into base64, the document
    # is a TracesData of opentelemetry-proto, field for field.
    def b64(hex_id: str) -> str:
        return base64.b64encode(bytes.fromhex(hex_id)).decode()

    as_protobuf = json.loads(text)
    for r in as_protobuf["resourceSpans"]:
        for span in r["scopeSpans"][0]["spans"]:
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in span:
                    span[key] = b64(span[key])
    parsed = json_format.Parse(json.dumps(as_protobuf), trace_pb2.TracesData())
    first = parsed.resource_spans[0].scope_spans[0].spans[0]
    assert first.trace_id.hex() == TRACE_ID and first.span_id.hex() == _sid(1)
    assert first.start_time_unix_nano == BASE and first.kind == trace_pb2.Span.SPAN_KIND_SERVER
    worker = parsed.resource_spans[1].scope_spans[0].spans
    batch = next(s for s in worker if s.span_id.hex() == _sid(9))
    assert batch.parent_span_id.hex() == _sid(8) and batch.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert {a.key: a.value.int_value for a in batch.attributes if a.value.HasField("int_value")} == {
        "seedbed.rows": 10_000,
        "seedbed.bytes": 1_048_576,
    }
    failed = next(s for s in worker if s.name == "post")
    assert failed.status.code == trace_pb2.Status.STATUS_CODE_ERROR and failed.status.message == "503"


# -- the waterfall ---------------------------------------------------------------------------------


def _draw(trace: RunTrace, width: int, **options: Any) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, highlight=False)
    console.print(Waterfall(trace, **options))
    return console.export_text().splitlines()


def _bar(line: str) -> tuple[int, int]:
    return line.index("█"), line.rindex("█")


@pytest.mark.parametrize("width", [80, 160])
def test_waterfall_fits_the_width_in_tree_order(width: int) -> None:
    lines = _draw(_trace(), width)
    assert all(cell_len(line) <= width for line in lines), lines
    assert lines[0].startswith(f"trace {TRACE_ID}  run {RUN}  13 spans  6.21s")
    header = lines[1]
    assert header.split()[:4] == ["SPAN", "SERVICE", "DURATION", "0s"] and "6.21s" in header
    body = lines[2:15]
    assert all(name[:12] in line for (_, name), line in zip(TREE, body, strict=True)), body
    assert "└ run" in body[1] and "├ queue wait" in body[3] and "│   ├ COPY" in body[8]
    # Bars on the run's time axis: the root spans it, the rest start where they started.
    root_start, root_end = _bar(body[0])
    axis = header.split("DETAIL")[0].rstrip()
    assert axis.endswith("6.21s") and len(axis) == root_end + 1 and header.index("0s") == root_start
    queue, container = _bar(body[3]), _bar(body[4])
    assert queue[0] == root_start and container[0] >= queue[1]
    first_batch, second_batch = _bar(body[8]), _bar(body[9])
    assert second_batch[0] > first_batch[0]
    webhook = _bar(body[10])
    middle = (root_start + root_end) / 2
    assert webhook[0] >= middle - 2 and webhook[1] >= root_end - 1
    assert _bar(body[12])[0] > middle  # the orphan, at the root, where it ran
    assert "shard 3" in body[12] and body[12].startswith("  shard 3")
    foot = "\n".join(lines[15:])
    assert "13 spans" in foot and "2 span(s) ended in error" in foot
    assert "12 span(s) dropped (at most 10,000 are kept per run)" in foot
    assert "raise SEEDBED_MAX_TRACE_SPANS" in " ".join(foot.split())  # the note wraps
    if width >= 120:
        assert "DETAIL" in header
        assert body[7].rstrip().endswith("public.customers · 20,000 rows")
        assert body[8].rstrip().endswith("10,000 rows · ledger written")
        assert "error: 503 · POST · api.example.com" in body[11]
    else:
        assert "DETAIL" not in header
        assert "insert  public.cust" in body[7]


def test_errors_are_marked_and_red_on_a_terminal() -> None:
    console = Console(width=120, file=io.StringIO(), force_terminal=True, color_system="standard")
    console.print(Waterfall(_trace()))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    failed = [line for line in lines if "✗" in line]
    assert len(failed) == 2 and all(RED.search(line) for line in failed)
    assert "step webhook" in failed[0] and "post" in failed[1]
    calm = [line for line in lines[2:15] if "✗" not in line]
    assert calm and not any(RED.search(line) for line in calm)
    assert RED.search(next(line for line in lines if "ended in error" in line))


def test_summary_and_durations_in_short() -> None:
    trace = _trace()
    assert summary(trace.get(_sid(10))) == "10,000 rows · ledger skipped"  # type: ignore[arg-type]
    assert summary(trace.get(_sid(11))) == "error: HTTPError: 503 Service Unavailable"  # type: ignore[arg-type]
    assert [
        short_duration(n) for n in (420_000, 12_400_000, 3_250_000_000, 125_300_000_000, 4_020 * 10**9)
    ] == [
        "0.42ms",
        "12ms",
        "3.25s",
        "2m05.3s",
        "1h07m",
    ]
    assert printable("a\x1b[2Jb\nc\u202ed") == "a?[2Jb?c?d"


def test_filters_hide_noise_but_not_errors() -> None:
    trace = _trace()
    two = _draw(trace, 160, max_depth=2)
    names = [line for line in two[2:] if line.strip() and not line[0].isdigit()][:3]
    assert "RunScenario" in names[0] and "└ run +10" in names[1] and "shard 3" in names[2]
    assert "3 of 13 spans shown (10 hidden by --depth/--min-ms)" in "\n".join(two)
    # Shorter than 2.04 s (insert: 2.03 s): hidden, unless in error or above a span that is shown.
    long_only = "\n".join(_draw(trace, 160, min_duration=timedelta(seconds=2.04)))
    assert "queue wait" not in long_only and "COPY" not in long_only and "shard 3" not in long_only
    assert "step customers +3" in long_only and "insert" not in long_only
    assert "step webhook" in long_only and "post" in long_only  # errors stay


def test_hostile_names_do_not_steer_the_terminal() -> None:
    spans = [
        _span(1, None, "root", "worker", 0, 10),
        _span(2, 1, "step \x1b[2J\x1b]0;owned\x07\nforged line", "worker", 1, 5, seedbed__table="t\x1b[31m"),
    ]
    lines = _draw(_trace(spans), 100)
    assert not any("\x1b" in line or "\x07" in line for line in lines)
    assert sum("forged line" in line for line in lines) == 1
    assert any("step ?[2J?]0;owned??forged line" in line for line in lines)


# -- the command, against the loopback coordinator --------------------------------------------------


def test_run_trace_draws_the_waterfall(cli: Any) -> None:
    code, out, err = cli("run", "trace", RUN)
    assert code == 0, err
    lines = out.splitlines()
    assert "\x1b" not in out  # off a terminal: no colour, no cursor moves
    assert all(cell_len(line) <= 80 for line in lines)  # off a terminal, rich's 80 columns
    assert lines[0].startswith(f"trace {TRACE_ID}  run {RUN}")
    assert sum(1 for line in lines if line.startswith("✗")) == 2
    assert "note: 12 call spans past the cap" in out

    code, out, _ = cli("run", "trace", RUN, "--depth", "1")
    assert code == 0 and "attempt 1" not in out and "└ run" not in out and "RunScenario +11" in out
    code, out, _ = cli("run", "trace", RUN, "--min-ms", "1000")
    assert code == 0 and "queue wait" not in out and "step customers" in out

    code, out, _ = cli("run", "trace", EMPTY)
    assert code == 0 and "has no spans" in out and "note: tracing was off for this run" in out


def test_run_trace_json_prints_otlp(cli: Any) -> None:
    code, out, err = cli("run", "trace", RUN, "-o", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document == _trace().to_otlp_json()
    assert len(document["resourceSpans"]) == 2


def test_run_trace_of_an_unknown_or_forbidden_run_fails_clearly(cli: Any) -> None:
    code, out, err = cli("run", "trace", "run_nope")
    assert code == 5 and out == ""
    assert "NOT_FOUND" in err and "run_nope" in err
    code, _, err = cli("run", "trace", SECRET, "-o", "json")
    assert code == 6 and "PERMISSION_DENIED" in err
    code, _, err = cli("run", "trace")
    assert code == 2 and "Missing argument 'RUN'" in err
    code, _, err = cli("run", "trace", RUN, "--depth", "0")
    assert code == 2 and "--depth" in err


def test_colour_only_on_a_terminal_and_never_under_no_color(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "100")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    cli("run", "trace", RUN)
    coloured = terminal.getvalue()
    assert COLOUR.search(coloured) and RED.search(coloured)
    assert max(cell_len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in coloured.splitlines()) > 80

    monkeypatch.setenv("NO_COLOR", "1")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    code, _, _ = cli("run", "trace", RUN)
    plain = terminal.getvalue()
    assert code == 0 and not COLOUR.search(plain)
    assert sum(1 for line in plain.splitlines() if "✗" in line) == 2  # still marked, without colour


# -- log events' fields --------------------------------------------------------------------------


EXPECTED_FIELDS = {
    "rows": 5,
    "tables": ["a", "b"],
    "nested": {"ok": True, "ratio": 0.5, "none": None},
    "broken": "not json {",  # not JSON: the text itself
    "odd": "NaN",  # JSON's printers cannot write NaN back: the text itself
}


def test_log_events_decode_fields(address: str) -> None:
    with Client(address, api_key="") as client:
        events = [e for e in client.stream_logs(RUN, follow=False) if isinstance(e, LogEvent)]
        run = ScenarioRun(client, client.get_run(RUN))
        assert [s.name for s in run.get_trace().spans] == [s.name for s in client.get_run_trace(RUN).spans]
    assert [e.fields for e in events] == [{}, EXPECTED_FIELDS, {}]
    assert (events[1].trace_id, events[1].span_id) == (TRACE_ID, _sid(7))
    assert (events[0].trace_id, events[0].span_id) == ("", "")
    assert [e.stream for e in events] == ["SYSTEM", "SYSTEM", "STDOUT"]
    assert events[1].time == datetime.fromtimestamp(1_780_000_000, UTC) + timedelta(milliseconds=2)


def test_logs_json_prints_one_object_per_line(cli: Any) -> None:
    code, out, err = cli("run", "logs", RUN, "-o", "json")
    assert code == 0, err
    documents = [json.loads(line) for line in out.splitlines()]
    assert [d["sequence"] for d in documents] == [1, 2, 3]
    second = documents[1]
    assert second == {
        "sequence": 2,
        "attempt": 1,
        "stream": "SYSTEM",
        "level": "info",
        "time": (datetime.fromtimestamp(1_780_000_000, UTC) + timedelta(milliseconds=2)).isoformat(),
        "text": "loaded rows=5 tables=['a', 'b'] broken=… odd=NaN",
        "fields": EXPECTED_FIELDS,
        "trace_id": TRACE_ID,
        "span_id": _sid(7),
    }
    assert documents[2]["stream"] == "STDOUT" and documents[2]["span_id"] == _sid(6)
    assert "run run_traced SUCCESS" in err  # the run's state on stderr, as without --json

    # The old spellings (`logs`, `run log`) print the same lines; without -o json they stay text:
    # the script's stdout on stdout, Seedbed's own lines on stderr.
    code, same, _ = cli("run", "log", RUN, "-o", "json")
    assert code == 0 and same == out
    code, text, err = cli("logs", RUN)
    assert code == 0 and text == "plain print\n"
    assert "[seedbed INFO] loaded rows=5" in err and "{" not in err.split("loaded")[0]


# -- against a real coordinator -----------------------------------------------------------------


def test_run_trace_of_a_coordinators_run(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, client = fake_coordinator
    scenario = client.get_default_project().create_scenario("traced", "Traced", "print one\nspans 3 2")
    run = scenario.run_and_wait()
    assert run is not None

    def complete() -> RunTrace:
        trace = run.get_trace()
        names = [span.name for _, span in trace.walk()]
        assert {"fire", "run", "attempt 1", "call 0", "call 1", "call 2"} <= set(names), names
        return trace

    trace = eventually(complete)
    assert trace.trace_id == run.refresh().raw.trace_id and len(trace.trace_id) == 32
    depth = {span.name: d for d, span in trace.walk()}
    assert depth["run"] == depth["fire"] + 1 and depth["attempt 1"] == depth["run"] + 1
    assert depth["call 2"] == depth["attempt 1"] + 1
    assert trace.dropped_spans == 2 and trace.note

    def cli(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--address", coordinator.address, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = cli("run", "trace", run.id)
    assert code == 0, err
    assert "attempt 1" in out and "call 2" in out and "2 span(s) dropped" in out
    assert all(cell_len(line) <= 80 for line in out.splitlines())
    code, out, _ = cli("run", "trace", run.id, "-o", "json")
    services = [
        r["resource"]["attributes"][0]["value"]["stringValue"] for r in json.loads(out)["resourceSpans"]
    ]
    assert code == 0 and services == ["seedbed-coordinator", "seedbed-worker"]
    code, out, err = cli("run", "trace", "run_nope")
    assert code == 5 and out == "" and "NOT_FOUND" in err
