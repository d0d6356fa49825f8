"""Unit tests of the worker side of the agent channel: demux, line splitting, frames, session."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from seedbed.worker._channel import (
    MAX_FRAME_BYTES,
    CallFrame,
    DoneFrame,
    ErrorFrame,
    LineSplitter,
    OutFrame,
    Oversized,
    StreamDemuxer,
    encode_reply,
    encode_start,
    parse_frame,
)
from seedbed.worker._sandbox_errors import ProtocolError
from seedbed.worker._sandbox_session import EndState, RunSession, classify
from seedbed.worker._sandbox_types import Outcome, SandboxLimits


def mux(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def frame(**fields: object) -> bytes:
    return json.dumps({"v": 1, **fields}).encode() + b"\n"


# -- StreamDemuxer ----------------------------------------------------------------------------


def test_demuxer_reassembles_frames_split_at_every_byte() -> None:
    data = mux(1, b"hello\n") + mux(2, b"oops") + mux(1, b"") + mux(1, b"world\n")
    demux = StreamDemuxer()
    got: dict[int, bytes] = {1: b"", 2: b""}
    for i in range(len(data)):
        for stream, piece in demux.feed(data[i : i + 1]):
            got[stream] += piece
    assert got == {1: b"hello\nworld\n", 2: b"oops"}


def test_demuxer_random_chunking_matches_whole() -> None:
    rng = random.Random(7)
    payloads = [(rng.choice([1, 2]), rng.randbytes(rng.randint(0, 3000))) for _ in range(50)]
    data = b"".join(mux(s, p) for s, p in payloads)
    demux = StreamDemuxer()
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 5000)
        out.extend(demux.feed(data[pos : pos + step]))
        pos += step
    for stream in (1, 2):
        assert b"".join(p for s, p in out if s == stream) == b"".join(p for s, p in payloads if s == stream)


# -- LineSplitter -----------------------------------------------------------------------------


def test_splitter_lines_partial_and_flush() -> None:
    splitter = LineSplitter(100)
    assert list(splitter.feed(b"a\nbb")) == [b"a"]
    assert list(splitter.feed(b"b\n\nc")) == [b"bbb", b""]
    assert list(splitter.flush()) == [b"c"]
    assert list(splitter.flush()) == []


def test_splitter_caps_what_it_buffers() -> None:
    splitter = LineSplitter(10)
    assert list(splitter.feed(b"x" * 8)) == []
    assert list(splitter.feed(b"y" * 1000)) == []  # over the cap: skipped, not buffered
    assert list(splitter.feed(b"zz\nok\n")) == [Oversized(1010), b"ok"]
    assert list(splitter.feed(b"q" * 11)) == []
    assert list(splitter.flush()) == [Oversized(11)]


# -- parse_frame ------------------------------------------------------------------------------


def test_parse_valid_frames() -> None:
    assert parse_frame(frame(t="out", stream="stderr", line="x")) == OutFrame("stderr", "x")
    call = parse_frame(frame(t="call", id=3, op="log", args={"level": "info"}))
    assert call == CallFrame(3, "log", {"level": "info"})
    err = parse_frame(frame(t="error", type="KeyError", message="'a'", traceback="tb", line=4))
    assert err == ErrorFrame("KeyError", "'a'", "tb", 4)
    assert parse_frame(frame(t="done")) == DoneFrame()


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[1, 2]",
        b'{"t": "done"}',  # no version
        b'{"v": 2, "t": "done"}',
        b'{"v": 1, "t": "start", "script": "x"}',  # only the worker sends start
        b'{"v": 1, "t": "out", "stream": "system", "line": "x"}',
        b'{"v": 1, "t": "out", "stream": "stdout", "line": 5}',
        b'{"v": 1, "t": "call", "id": "1", "op": "log", "args": {}}',
        b'{"v": 1, "t": "call", "id": true, "op": "log", "args": {}}',
        b'{"v": 1, "t": "call", "id": 1, "op": "log", "args": []}',
        b'{"v": 1, "t": "error", "type": 1}',
        b'{"v": 1, "t": "error", "type": "E", "line": "12"}',
        b"\xff\xfe garbage",
        b"[" * 100_000,
    ],
)
def test_parse_rejects_garbage(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_frame(line)


def test_parse_rejects_oversized_and_caps_strings() -> None:
    with pytest.raises(ProtocolError):
        parse_frame(b" " * (MAX_FRAME_BYTES + 1))
    err = parse_frame(frame(t="error", type="E" * 1000, message="m" * 200_000, line=None))
    assert isinstance(err, ErrorFrame)
    assert len(err.type) < 300 and len(err.message) < 70_000


def test_encoders_make_one_line_each() -> None:
    start = encode_start(
        script="print('a')\nprint('b')\n", params={"k": "v\n"}, run_id="run_1", attempt=2, run_key="key"
    )
    assert start.count(b"\n") == 1 and start.endswith(b"\n")
    assert json.loads(start)["params"] == {"k": "v\n"}
    assert json.loads(encode_reply(4, result=[1]))["result"] == [1]
    assert json.loads(encode_reply(4, error=("T", "m")))["error"] == {"type": "T", "message": "m"}


# -- RunSession -------------------------------------------------------------------------------


def lines_of(session: RunSession) -> list[tuple[str, str, str]]:
    batch = session.take_batch()
    return [] if batch is None else [(ln.stream, ln.level, ln.text) for ln in batch.lines]


def test_session_turns_frames_into_lines_and_replies() -> None:
    session = RunSession(SandboxLimits())
    replies = session.feed(
        1,
        frame(t="out", stream="stdout", line="hello")
        + frame(t="call", id=1, op="log", args={"level": "warn", "message": "careful", "fields": {"n": 3}})
        + frame(t="call", id=2, op="generate", args={}),
    )
    assert [json.loads(r)["ok"] for r in replies] == [True, False]
    assert json.loads(replies[1])["error"]["type"] == "UnknownOp"
    session.feed(2, b"Fatal Python error\n")
    session.feed(1, b"Traceback (most recent call last):\n" + frame(t="done"))
    assert session.done and session.warnings == 1
    assert lines_of(session) == [
        ("stdout", "", "hello"),
        ("system", "warning", "careful n=3"),
        ("stderr", "", "Fatal Python error"),
        ("stdout", "", "Traceback (most recent call last):"),
    ]


def test_session_on_call_handler_results_and_errors() -> None:
    def handler(op: str, args: object) -> object:
        if op == "boom":
            raise KeyError("nope")
        return {"op": op}

    session = RunSession(SandboxLimits(), on_call=handler)
    ok, bad = session.feed(
        1, frame(t="call", id=1, op="echo", args={}) + frame(t="call", id=2, op="boom", args={})
    )
    assert json.loads(ok)["result"] == {"op": "echo"}
    assert json.loads(bad)["error"] == {"type": "KeyError", "message": "'nope'"}


def test_session_garbage_becomes_notices_not_crashes() -> None:
    session = RunSession(SandboxLimits())
    session.feed(1, b'{"v": 1, "t": "bogus"}\n{broken json\n' + b"\xff" * 10 + b"\n")
    session.feed(7, b"weird stream")
    got = lines_of(session)
    assert [g[0] for g in got] == ["system", "system", "stdout", "system"]
    assert "unknown frame type" in got[0][2]


def test_session_caps_lines_and_total_output() -> None:
    limits = SandboxLimits(max_log_bytes=1000, max_line_bytes=50)
    session = RunSession(limits)
    session.feed(1, frame(t="out", stream="stdout", line="é" * 100))
    (line,) = lines_of(session)
    assert line[2].startswith("é" * 25) and "line cut" in line[2]
    for i in range(200):
        session.feed(1, frame(t="out", stream="stdout", line=f"line {i:04d} " + "x" * 20))
    got = lines_of(session)
    assert session.logs_truncated and session.dropped_lines > 150
    assert got[-1][0] == "system" and "output limit" in got[-1][2]
    # Still draining: calls after the cap get replies.
    assert session.feed(
        1, frame(t="call", id=9, op="log", args={"level": "info", "message": "m", "fields": {}})
    )


def test_session_first_end_frame_wins() -> None:
    session = RunSession(SandboxLimits())
    session.feed(1, frame(t="error", type="ValueError", message="x", traceback="", line=1) + frame(t="done"))
    assert session.error is not None and not session.done


# -- classify ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "done", "error_type", "expected", "error"),
    [
        (EndState(0, False), True, None, Outcome.SUCCEEDED, None),
        (EndState(0, True), True, None, Outcome.SUCCEEDED, None),  # a child was OOM-killed
        (EndState(0, False), False, None, Outcome.SCRIPT_ERROR, "IncompleteRun"),
        (EndState(1, False), False, "ValueError", Outcome.SCRIPT_ERROR, "ValueError"),
        (EndState(3, False), False, None, Outcome.SCRIPT_ERROR, "ExitCode"),
        (EndState(137, True), False, None, Outcome.OOM, "OutOfMemory"),
        (EndState(1, False), False, "MemoryError", Outcome.OOM, "MemoryError"),
        (EndState(137, False), False, None, Outcome.KILLED, "Killed"),
        (EndState(139, False), False, None, Outcome.SCRIPT_ERROR, "Signal"),
        (EndState(137, False, "timeout", "limit"), False, None, Outcome.TIMEOUT, "Timeout"),
        (EndState(137, True, "abort", ""), False, None, Outcome.ABORTED, "Aborted"),
        (EndState(2, False), False, "seedbed.ProtocolError", Outcome.INFRASTRUCTURE, "seedbed.ProtocolError"),
    ],
)
def test_classify(
    end: EndState, done: bool, error_type: str | None, expected: Outcome, error: str | None
) -> None:
    session = RunSession(SandboxLimits())
    if done:
        session.feed(1, frame(t="done"))
    if error_type:
        session.feed(1, frame(t="error", type=error_type, message="m", traceback="", line=None))
    outcome, script_error = classify(end, session, SandboxLimits(timeout=timedelta(seconds=3)))
    assert outcome is expected
    assert (script_error.type if script_error else None) == error
    if expected is Outcome.SCRIPT_ERROR and error == "ExitCode":
        assert script_error is not None
        assert script_error.message == "script exited with code 3"


# -- hostile frames (finding 9 of the security review) ----------------------------------------


def test_lone_surrogates_become_escaped_text_and_pairs_stay_characters() -> None:
    raw = '{"v":1,"t":"out","stream":"stdout","line":"raw \ud800 pair \U0001f600"}'.encode(
        "utf-8", "surrogatepass"
    )
    escaped = b'{"v":1,"t":"call","id":3,"op":"x","args":{"\\udfff":["\\ud83d\\ude00",{"k":"\\ud800"}]}}'
    out = parse_frame(raw)
    assert isinstance(out, OutFrame) and out.line == "raw \\ud800 pair \U0001f600"
    call = parse_frame(escaped)
    assert isinstance(call, CallFrame) and call.args == {"\\udfff": ["\U0001f600", {"k": "\\ud800"}]}
    json.dumps(call.args, ensure_ascii=False).encode("utf-8")  # encodable now


def test_a_call_too_deep_to_read_gets_an_error_reply() -> None:
    session = RunSession(SandboxLimits())
    deep = b'{"v":1,"t":"call","id":77,"op":"log","args":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    (reply,) = session.feed(1, deep)
    answer = json.loads(reply)
    assert answer["id"] == 77 and not answer["ok"] and "too deeply" in answer["error"]["message"]


def test_log_fields_nesting_past_the_limit_are_refused() -> None:
    session = RunSession(SandboxLimits())
    nested: list[object] = []
    for _ in range(40):
        nested = [nested]
    (reply,) = session.feed(
        1, frame(t="call", id=4, op="log", args={"level": "info", "message": "m", "fields": {"x": nested}})
    )
    assert json.loads(reply)["error"]["type"] == "LimitExceeded"
    assert lines_of(session) == []


def test_a_protocol_error_after_ready_is_the_scripts() -> None:
    forged = frame(
        t="error", type="seedbed.ProtocolError", message="start frame unusable", traceback="", line=None
    )
    before, after = RunSession(SandboxLimits()), RunSession(SandboxLimits())
    before.feed(1, forged)
    after.feed(1, frame(t="ready") + forged)
    assert classify(EndState(2, False), before, SandboxLimits())[0] == Outcome.INFRASTRUCTURE
    outcome, error = classify(EndState(2, False), after, SandboxLimits())
    assert outcome == Outcome.SCRIPT_ERROR and error is not None and "imitating" in error.message


def test_session_caps_lines_as_well_as_bytes() -> None:
    session = RunSession(SandboxLimits(max_log_lines=100))
    session.feed(1, b"".join(frame(t="out", stream="stdout", line="") for _ in range(500)))
    got = lines_of(session)
    assert [g for g in got if g[0] == "stdout"] == [("stdout", "", "")] * 100
    assert session.logs_truncated and session.dropped_lines == 400
    assert "100 lines (SEEDBED_MAX_LOG_LINES)" in got[-1][2]
