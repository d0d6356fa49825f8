"""The worker's tracing room without a sandbox: spans routed to the recorder of their attempt, the
cap and the attribute limits, the conversion to the contract, traceparents, shard spans recorded
elsewhere and adopted, and the agent's and the channel session's use of them (a real SQLite target
for the batches)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace

from seedbed.api.v1 import attempt_pb2, connection_pb2, run_pb2
from seedbed.worker import tracing
from seedbed.worker._sandbox_fake import FakeSandboxDriver
from seedbed.worker._sandbox_session import MAX_LOG_FIELDS, RunSession
from seedbed.worker._sandbox_types import SandboxLimits
from seedbed.worker.agent import Agent
from seedbed.worker.agent._scrub import Scrubber
from seedbed.worker.attempt import execute
from tests.conftest import eventually


def traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@pytest.fixture
def recorder() -> Iterator[tracing.SpanRecorder]:
    with tracing.SpanRecorder(traceparent(), max_spans=1000, max_attribute_length=1024) as found:
        yield found


def by_name(spans: list[run_pb2.Span]) -> dict[str, run_pb2.Span]:
    return {s.name: s for s in spans}


def attributes(span: run_pb2.Span) -> dict[str, object]:
    return {a.key: getattr(a, str(a.WhichOneof("value"))) for a in span.attributes}


# -- routing -------------------------------------------------------------------------------------------


def test_spans_go_to_the_recorder_of_their_attempt_across_threads() -> None:
    first = tracing.SpanRecorder(traceparent(), max_spans=100, max_attribute_length=1024)
    second = tracing.SpanRecorder(traceparent(), max_spans=100, max_attribute_length=1024)

    def work(recorder: tracing.SpanRecorder, tag: str) -> None:
        # A thread inherits no context: the parent is given, then the children follow it.
        with tracing.span(f"{tag} call", parent=recorder.context):
            for n in range(20):
                with tracing.span(f"{tag} batch {n}", kind=tracing.SpanKind.CLIENT):
                    pass

    threads = [threading.Thread(target=work, args=(r, t)) for r, t in ((first, "a"), (second, "b"))] * 1
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for recorder, tag in ((first, "a"), (second, "b")):
        spans, dropped = recorder.take()
        assert dropped == 0 and len(spans) == 21
        assert {s.name.split()[0] for s in spans} == {tag}
        assert {s.trace_id for s in spans} == {recorder.trace_id}
        names = by_name(spans)
        call = names[f"{tag} call"]
        assert call.parent_span_id == recorder.traceparent.split("-")[2]  # under the remote parent
        assert all(s.parent_span_id == call.span_id for s in spans if s is not call)
        assert names[f"{tag} batch 3"].kind == run_pb2.SPAN_KIND_CLIENT
        assert all(s.service == "seedbed-worker" for s in spans)
        assert all(len(s.span_id) == 16 and s.span_id == s.span_id.lower() for s in spans)
        # Finished in the order they ended: children before their parent.
        assert spans[-1].name == f"{tag} call"
        recorder.close()


def test_without_a_recorder_nothing_is_recorded_and_no_span_exists() -> None:
    assert tracing.start_span("anything") is trace.INVALID_SPAN
    with tracing.span("a call") as span:
        assert not span.is_recording() and tracing.ids_of(span) == ("", "")
        assert tracing.handoff() is None
        with tracing.span("a batch") as inner:
            assert inner is trace.INVALID_SPAN
    # A parent from a trace no recorder of this process owns (another attempt's, a forged one).
    foreign = tracing.context_from_traceparent(traceparent())
    assert foreign is not None and tracing.start_span("x", parent=foreign) is trace.INVALID_SPAN


def test_a_closed_recorder_records_nothing_more(recorder: tracing.SpanRecorder) -> None:
    started = tracing.start_span("late", parent=recorder.context)
    recorder.close()
    started.end()
    assert recorder.take() == ([], 0)
    assert tracing.start_span("after", parent=recorder.context) is trace.INVALID_SPAN


# -- the cap and the limits ----------------------------------------------------------------------------


def test_past_the_cap_spans_are_dropped_and_counted_but_structural_ones_are_kept() -> None:
    with tracing.SpanRecorder(traceparent(), max_spans=5, max_attribute_length=1024) as recorder:
        with tracing.span("script", parent=recorder.context, structural=True):
            for n in range(10):
                with tracing.span(f"call {n}") as call:
                    with tracing.span(f"batch {n}", kind=tracing.SpanKind.CLIENT):
                        pass
                    if n == 9:
                        # Dropped, yet current: what is set on "the current span" stays off its parent.
                        assert not call.is_recording()
                        tracing.current_span().set_attribute("seedbed.rows", 1)
            with tracing.span("step last", structural=True):
                pass
        spans, dropped = recorder.take()
        names = [s.name for s in spans]
        # Five admitted (the script counts too), the structural ones beyond the cap all kept.
        assert names == ["batch 0", "call 0", "batch 1", "call 1", "step last", "script"]
        assert dropped == 16  # the 8 calls past the cap and their batches
        assert "seedbed.rows" not in attributes(by_name(spans)["script"])
        assert recorder.take() == ([], 0)  # counted once
        with tracing.span("another", parent=recorder.context):
            pass
        assert recorder.take() == ([], 1)


def test_attribute_values_names_and_messages_are_cut_and_attributes_bounded() -> None:
    huge = "x" * 2**20
    with tracing.SpanRecorder(traceparent(), max_spans=10, max_attribute_length=100) as recorder:
        with pytest.raises(ValueError), tracing.span(huge, parent=recorder.context) as span:
            span.set_attribute("seedbed.table", huge)
            span.set_attribute("seedbed.list", [huge, "b"])
            for n in range(200):
                span.set_attribute(f"extra.{n}", n)
            raise ValueError(huge)
        (found,) = recorder.take()[0]
    values = attributes(found)
    assert len(found.name) == 100 and len(found.status_message) == 100
    assert found.status_code == run_pb2.SPAN_STATUS_CODE_ERROR and values["error.type"] == "ValueError"
    assert len(found.attributes) == tracing.MAX_ATTRIBUTES
    assert found.dropped_attributes_count == 202 + 1 - tracing.MAX_ATTRIBUTES
    assert "extra.199" in values and "seedbed.table" not in values  # the oldest go first
    # A limit outside the coordinator's range is brought into it.
    with tracing.SpanRecorder(traceparent(), max_spans=1, max_attribute_length=1) as small:
        assert small.max_attribute_length == 64


def test_conversion_types_every_attribute() -> None:
    with tracing.SpanRecorder(traceparent(), max_spans=10, max_attribute_length=1024) as recorder:
        with tracing.span("typed", parent=recorder.context, kind=tracing.SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    "s": "text",
                    "i": 7,
                    "f": 0.5,
                    "b": True,
                    "seq": ["a", "b"],
                    "nums": [1, 2],
                    "big": 2**63 - 1,
                }
            )
        (found,) = recorder.take()[0]
    typed = {a.key: a.WhichOneof("value") for a in found.attributes}
    assert typed == {
        "s": "string_value",
        "i": "int_value",
        "f": "double_value",
        "b": "bool_value",
        "seq": "string_value",
        "nums": "string_value",
        "big": "int_value",
    }
    values = attributes(found)
    assert json.loads(str(values["seq"])) == ["a", "b"] and json.loads(str(values["nums"])) == [1, 2]
    assert values["b"] is True and values["big"] == 2**63 - 1
    assert found.status_code == run_pb2.SPAN_STATUS_CODE_UNSPECIFIED
    assert found.end_time.ToNanoseconds() >= found.start_time.ToNanoseconds() > 0


def test_a_span_with_known_times() -> None:
    with tracing.SpanRecorder(traceparent(), max_spans=0, max_attribute_length=1024) as recorder:
        tracing.record_span(
            "queue wait", parent=recorder.context, start_time=1_000, end_time=5_000, structural=True
        )
        # Clocks of two machines: an end before the start is a zero-length span, never negative.
        tracing.record_span(
            "skewed", parent=recorder.context, start_time=9_000, end_time=5_000, structural=True
        )
        spans, _ = recorder.take()
    assert [(s.start_time.ToNanoseconds(), s.end_time.ToNanoseconds()) for s in spans] == [
        (1_000, 5_000),
        (9_000, 9_000),
    ]


# -- traceparents, handoffs, adoption ------------------------------------------------------------------


def test_traceparents_round_trip_and_bad_ones_name_nothing(recorder: tracing.SpanRecorder) -> None:
    with tracing.span("sandbox", parent=recorder.context, structural=True) as span:
        text = tracing.traceparent_of(span)
        trace_id, span_id = tracing.ids_of(span)
        assert text == f"00-{trace_id}-{span_id}-01"
        ctx = tracing.context_from_traceparent(text)
        assert ctx is not None and tracing.ids_of(trace.get_current_span(ctx)) == (trace_id, span_id)
    for bad in ("", "garbage", "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "00-abc-def-01"):
        assert tracing.context_from_traceparent(bad) is None
        with pytest.raises(ValueError):
            tracing.SpanRecorder(bad, max_spans=1, max_attribute_length=100)
    with pytest.raises(ValueError, match="already has a recorder"):
        tracing.SpanRecorder(recorder.traceparent, max_spans=1, max_attribute_length=100)
    assert tracing.traceparent_of(trace.INVALID_SPAN) == ""


def test_shard_spans_on_a_thread_of_the_attempt_go_straight_to_its_recorder(
    recorder: tracing.SpanRecorder,
) -> None:
    with tracing.span("insert", parent=recorder.context) as call:
        handoff = tracing.handoff()
        assert handoff is not None and handoff.traceparent == tracing.traceparent_of(call)

        def shard() -> None:
            with tracing.continued(handoff) as here:
                with tracing.span("shard 1", parent=here.context), tracing.span("COPY t"):
                    pass
                assert here.take() == ([], 0)

        thread = threading.Thread(target=shard)
        thread.start()
        thread.join()
    names = by_name(recorder.take()[0])
    assert names["shard 1"].parent_span_id == names["insert"].span_id
    assert names["COPY t"].parent_span_id == names["shard 1"].span_id


def test_shard_spans_recorded_elsewhere_are_adopted_within_the_cap() -> None:
    trace_id = secrets.token_hex(16)
    with tracing.SpanRecorder(traceparent(trace_id), max_spans=2, max_attribute_length=1024) as attempt:
        into = tracing.TraceHandoff(attempt.traceparent, 2, 1024)
        # What a shard task in another process sees: a parent no recorder of its process owns.
        elsewhere = tracing.TraceHandoff(traceparent(trace_id), 3, 1024)
        with tracing.continued(elsewhere) as there:
            with tracing.span("shard 1", parent=there.context):
                for n in range(4):
                    with tracing.span(f"COPY {n}"):
                        pass
            spans, dropped = there.take()
        assert len(spans) == 3 and dropped == 2  # the shard's own cap
        tracing.adopt(spans, dropped, into=into)
        # Spans of another trace are never let in.
        with tracing.continued(tracing.TraceHandoff(traceparent(), 3, 1024)) as other:
            with tracing.span("intruder", parent=other.context):
                pass
            tracing.adopt(*other.take(), into=into)
        kept, lost = attempt.take()
    # The attempt's own cap: two of the three; the shard's two dropped are counted with the third.
    assert [s.name for s in kept] == ["COPY 0", "COPY 1"] and lost == 2 + 1
    assert {s.trace_id for s in kept} == {trace_id}


def test_shards_of_one_insert_in_one_process_share_a_recorder_until_the_last_leaves() -> None:
    # Two shard tasks of the same insert in one process (not the attempt's): the router holds one
    # recorder for their parent, which the second must not lose when the first is done.
    trace_id = secrets.token_hex(16)
    elsewhere = tracing.TraceHandoff(traceparent(trace_id), 10, 1024)
    with tracing.continued(elsewhere) as second:
        with tracing.continued(elsewhere) as first:
            still_open = tracing.start_span("shard 2", parent=second.context)
            with tracing.span("shard 1", parent=first.context), tracing.span("COPY 1"):
                pass
            taken = [first.take()]
        with tracing.span("COPY 2", parent=tracing.context_of(still_open)):
            pass
        still_open.end()
        taken.append(second.take())
    # Gone with the last: nothing more of that parent is recorded in this process.
    assert tracing.start_span("after", parent=second.context) is trace.INVALID_SPAN
    with tracing.continued(elsewhere) as again:  # and the next shard there records afresh
        with tracing.span("shard 3", parent=again.context):
            pass
        assert [run_pb2.Span.FromString(s).name for s in again.take()[0]] == ["shard 3"]
    names = [[run_pb2.Span.FromString(s).name for s in spans] for spans, _ in taken]
    assert names == [["COPY 1", "shard 1"], ["COPY 2", "shard 2"]]
    assert [dropped for _, dropped in taken] == [0, 0]


def test_a_handoff_carries_what_is_left_of_the_attempts_cap() -> None:
    # Each shard of an insert gets the handoff: with the whole cap, shards × cap spans would be built
    # and shipped back, only to be dropped by `adopt`.
    with tracing.SpanRecorder(traceparent(), max_spans=10, max_attribute_length=1024) as recorder:
        with tracing.span("script", parent=recorder.context, structural=True):
            for n in range(6):
                with tracing.span(f"call {n}"):
                    pass
            with tracing.span("insert"):
                handoff = tracing.handoff()
        assert handoff is not None and handoff.max_spans == 10 - 8  # the script and insert count too
        assert recorder.remaining() == 2
        recorder.close()
        assert recorder.remaining() == 0


def test_a_handoff_under_a_dropped_span_records_nothing_and_counts() -> None:
    with tracing.SpanRecorder(traceparent(), max_spans=1, max_attribute_length=1024) as recorder:
        with tracing.span("kept", parent=recorder.context), tracing.span("dropped"):
            handoff = tracing.handoff()
        assert handoff is not None and handoff.max_spans == 0
        with tracing.continued(tracing.TraceHandoff(traceparent(recorder.trace_id), 0, 1024)) as there:
            with tracing.span("shard", parent=there.context):
                pass
            assert there.take() == ([], 1)


# -- secrets -------------------------------------------------------------------------------------------

SECRET = 'Pa55 w/rd+"é&=1xyz'


def test_what_spans_say_leaves_scrubbed_of_the_secrets_and_adopted_spans_too() -> None:
    # A target echoing the secret into an error: the exception's text becomes the span's status.
    scrubber = Scrubber()
    scrubber.add(SECRET, username="svc")
    echoed = f"login svc:{SECRET} refused ({base64.b64encode(f'svc:{SECRET}'.encode()).decode()})"
    with tracing.SpanRecorder(traceparent(), max_spans=100, max_attribute_length=1024) as recorder:
        recorder.scrub_with(scrubber.text)
        with pytest.raises(RuntimeError), tracing.span("insert", parent=recorder.context) as call:
            call.set_attributes(
                {"url.full": f"https://h/x?t={quote(SECRET, safe='')}", "seedbed.rows": 5, "seq": [SECRET]}
            )
            raise RuntimeError(echoed)
        # A shard recorded elsewhere with the scrubber of its own connection: shipped scrubbed.
        with tracing.continued(
            tracing.TraceHandoff(traceparent(recorder.trace_id), 10, 1024), scrub=scrubber.text
        ) as there:
            with tracing.span("shard 1", parent=there.context) as shard:
                tracing.fail(shard, error_type="target", message=echoed)
            shipped, _ = there.take()
        assert shipped and all(b"Pa55" not in data for data in shipped)
        # One that was not (its node knew no secret): scrubbed when the attempt hands it out.
        with tracing.continued(tracing.TraceHandoff(traceparent(recorder.trace_id), 10, 1024)) as raw:
            with tracing.span("shard 2", parent=raw.context) as shard:
                tracing.fail(shard, error_type="target", message=echoed)
            unscrubbed, _ = raw.take()
        assert any(b"Pa55" in data for data in unscrubbed)
        into = tracing.TraceHandoff(recorder.traceparent, 100, 1024)
        tracing.adopt(shipped + unscrubbed, 0, into=into)
        spans, _ = recorder.take()
    names = by_name(spans)
    assert set(names) == {"insert", "shard 1", "shard 2"}  # names are never touched
    texts = [s.status_message for s in spans] + [str(v) for s in spans for v in attributes(s).values()]
    assert all(scrubber.text(text) == text and "Pa55" not in text for text in texts), texts
    for span in spans:
        assert span.status_code == run_pb2.SPAN_STATUS_CODE_ERROR and "***" in span.status_message
    values = attributes(names["insert"])
    assert values["url.full"] == "https://h/x?t=***" and values["seedbed.rows"] == 5
    assert json.loads(str(values["seq"])) == ["***"] and values["error.type"] == "RuntimeError"


# -- the agent and the channel session ---------------------------------------------------------------


def test_calls_and_steps_shape_the_tree_and_a_forged_parent_is_ignored(
    recorder: tracing.SpanRecorder, tmp_path: Path
) -> None:
    doc = {"id": "tmpl_n", "version": 1, "fields": {"n": {"sequence": {}}}}
    spec = attempt_pb2.AttemptSpec(
        run_id="run_traced",
        attempt=1,
        ledger_key=b"k" * 32,
        templates=[attempt_pb2.TemplateSnapshot(id="tmpl_n", canonical_json=json.dumps(doc))],
        connections=[
            attempt_pb2.ConnectionSnapshot(
                id="conn_lite",
                kind=connection_pb2.CONNECTION_KIND_SQL,
                url=f"sqlite:///{tmp_path / 'db.sqlite'}",
            )
        ],
    )
    agent = Agent(spec, artifacts_dir=tmp_path)
    script = tracing.start_span("script", parent=recorder.context, structural=True)
    forged = traceparent(recorder.trace_id)
    with tracing.activated(tracing.context_of(script)):  # what the session does on the call thread
        agent("execute", {"connection_id": "conn_lite", "sql": "CREATE TABLE t (n INTEGER PRIMARY KEY)"})
        agent("step.start", {"name": "load", "traceparent": forged})
        assert agent.open_span_ids()[0] == recorder.trace_id
        rows = agent("generate", {"template_id": "tmpl_n", "count": 25_000, "traceparent": forged})
        agent("insert", {"connection_id": "conn_lite", "table": "t", "rows": rows, "traceparent": forged})
        agent("step.end", {"name": "load", "outcome": "SUCCESS"})
        assert agent.open_span_ids() == ("", "")
        agent("step.start", {"name": "never closed"})
        with pytest.raises(Exception, match="unknown SDK call"):
            agent("nonsense", {})
    agent.settle()
    agent.close()
    script.end()
    spans, dropped = recorder.take()
    names = by_name(spans)
    assert dropped == 0
    step, insert = names["step load"], names["insert"]
    assert step.parent_span_id == names["script"].span_id
    assert names["generate"].parent_span_id == insert.parent_span_id == step.span_id
    assert names["execute"].parent_span_id == names["script"].span_id
    assert names["nonsense"].parent_span_id == names["step never closed"].span_id
    assert names["nonsense"].status_code == run_pb2.SPAN_STATUS_CODE_ERROR
    assert names["step never closed"].status_code == run_pb2.SPAN_STATUS_CODE_ERROR
    batches = [s for s in spans if s.parent_span_id == insert.span_id]
    assert [s.name for s in batches] == ["INSERT t"] * 3
    first = attributes(batches[0])
    assert first["db.system.name"] == "sqlite" and first["db.operation.name"] == "INSERT"
    assert first["db.collection.name"] == "t" and first["db.namespace"] == "db.sqlite"
    assert first["seedbed.ledger"] == "written" and first["seedbed.rows"] == 10_000
    assert int(str(first["seedbed.bytes"])) > 0 and first["seedbed.batch"] == 0
    assert attributes(insert)["seedbed.rows"] == 25_000 and attributes(insert)["seedbed.ledger"] == "written"
    assert attributes(names["execute"])["seedbed.ledger"] == "written"
    assert attributes(names["generate"])["seedbed.template"] == "tmpl_n"
    # Nothing the script sent chose a parent: every parent is a span of the set or the attempt's.
    known = {s.span_id for s in spans} | {recorder.traceparent.split("-")[2]}
    assert all(s.parent_span_id in known for s in spans)
    assert forged.split("-")[2] not in {s.parent_span_id for s in spans}


class _Steps:
    """A call handler that says which step is open (as the agent does)."""

    def __init__(self) -> None:
        self.ids = ("", "")

    def __call__(self, op: str, args: object) -> object:
        return None

    def open_span_ids(self) -> tuple[str, str]:
        return self.ids


def frame(**fields: object) -> bytes:
    return json.dumps({"v": 1, **fields}).encode() + b"\n"


def test_lines_carry_the_open_step_else_the_driver_span_and_log_fields_as_a_map(
    recorder: tracing.SpanRecorder,
) -> None:
    handler = _Steps()
    session = RunSession(SandboxLimits(max_line_bytes=200), on_call=handler)
    session.system("before any span")
    script = tracing.start_span("script", parent=recorder.context, structural=True)
    session.in_span(script, script=True)
    session.feed(1, frame(t="out", stream="stdout", line="in the script"))
    handler.ids = (recorder.trace_id, "ab" * 8)
    fields = {f"key{n}": n for n in range(100)}
    session.feed(
        1, frame(t="call", id=1, op="log", args={"level": "info", "message": "loaded", "fields": fields})
    )
    session.feed(1, frame(t="out", stream="stdout", line="in the step"))
    session.system("the driver's own")
    batch = session.take_batch()
    assert batch is not None
    lines = {line.text.split(" key0")[0]: line for line in batch.lines}
    script_ids = tracing.ids_of(script)
    assert (lines["before any span"].trace_id, lines["before any span"].span_id) == ("", "")
    assert (lines["in the script"].trace_id, lines["in the script"].span_id) == script_ids
    assert (lines["in the step"].trace_id, lines["in the step"].span_id) == handler.ids
    assert (lines["loaded"].trace_id, lines["loaded"].span_id) == handler.ids
    assert (lines["the driver's own"].trace_id, lines["the driver's own"].span_id) == script_ids
    logged = dict(lines["loaded"].fields)
    assert len(logged) == MAX_LOG_FIELDS and logged["key0"] == "0" and logged["key63"] == "63"
    assert lines["loaded"].text.startswith("loaded key0=0 key1=1")  # the flattened text as before
    # Names are cut at 200 characters, values at the line limit; the map keeps the call's order.
    session2 = RunSession(SandboxLimits(max_line_bytes=200), on_call=handler)
    big = {"k" * 300: "v" * 1000, "nested": {"a": [1, "ü"]}}
    session2.feed(
        1, frame(t="call", id=2, op="log", args={"level": "warning", "message": "m", "fields": big})
    )
    line = session2.take_batch().lines[0]  # type: ignore[union-attr]
    (name, value), (nested, text) = line.fields
    assert name == "k" * 200 and value.startswith('"vvv') and "[line cut:" in value
    assert nested == "nested" and json.loads(text) == {"a": [1, "ü"]}
    script.end()


def test_calls_served_on_the_call_thread_are_children_of_the_script(recorder: tracing.SpanRecorder) -> None:
    seen: list[tuple[str, str]] = []

    def handler(op: str, args: object) -> object:
        with tracing.span(op) as span:
            seen.append(tracing.ids_of(trace.get_current_span()))
            return tracing.ids_of(span)

    session = RunSession(SandboxLimits(), on_call=handler, background_calls=True)
    script = tracing.start_span("script", parent=recorder.context, structural=True)
    session.in_span(script, script=True)
    session.feed(1, frame(t="call", id=1, op="fetch", args={}))
    eventually(lambda: session.completed_replies() or seen)
    session.close()
    script.end()
    names = by_name(recorder.take()[0])
    assert names["fetch"].parent_span_id == names["script"].span_id


# -- the attempt's recorder ------------------------------------------------------------------------------


def test_an_attempt_that_fails_before_its_sandbox_leaves_no_recorder_behind(tmp_path: Path) -> None:
    # A Ray worker process runs attempt after attempt: a recorder left registered would record this
    # trace's spans for as long as it lives.
    parent = traceparent()
    far = Timestamp(seconds=2**62)  # no datetime holds it: the request cannot be made
    spec = attempt_pb2.AttemptSpec(
        run_id="run_refused", attempt=1, deadline=far, trace=attempt_pb2.AttemptTrace(traceparent=parent)
    )
    driver = FakeSandboxDriver()
    with pytest.raises((OverflowError, ValueError)):
        list(execute(spec, driver, artifacts_dir=tmp_path))
    assert driver.requests == []
    ctx = tracing.context_from_traceparent(parent)
    assert ctx is not None and tracing.start_span("late", parent=ctx) is trace.INVALID_SPAN
    tracing.SpanRecorder(parent, max_spans=1, max_attribute_length=1024).close()  # free again
