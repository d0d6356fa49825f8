"""The REST sink against a real HTTP server in the test process (loopback, scripted replies)."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from seedbed.worker.sinks import (
    ConfigurationError,
    ConnectionSpec,
    InvalidRequestError,
    RestError,
    RestSink,
    SerializationError,
    open_sink,
)

pytestmark = pytest.mark.integration


@dataclass
class Reply:
    status: int = 201
    body: Any = None  # JSON-able, or bytes sent as they are; None: echo the request body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class ScriptedServer:
    """An HTTP server on 127.0.0.1 that answers each path with its scripted replies, in order, then
    201 echoing the request; it records every request it receives."""

    def __init__(self) -> None:
        self.replies: dict[str, deque[Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with server._lock:
                    server.seen.append(
                        Seen(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw) if raw else None,
                            time.monotonic(),
                        )
                    )
                    queue = server.replies.get(self.path.split("?")[0])
                    reply = queue.popleft() if queue else Reply()
                time.sleep(reply.delay)
                if isinstance(reply.body, bytes):
                    payload = reply.body
                else:
                    payload = json.dumps(
                        {"echo": json.loads(raw) if raw else None} if reply.body is None else reply.body
                    ).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = handle_any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/v1"

    def script(self, path: str, *replies: Reply) -> None:
        self.replies.setdefault(path, deque()).extend(replies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


def rest(server_url: str, tmp_path: Path, **options: Any) -> RestSink:
    defaults: dict[str, Any] = {
        "base_url": server_url,
        "headers": {"Authorization": "Bearer s3cret-token"},
        "timeout_seconds": 2,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
    }
    sink = open_sink(ConnectionSpec("conn_api", "rest", {**defaults, **options}), artifacts_dir=tmp_path)
    assert isinstance(sink, RestSink)
    return sink


ROWS = [{"id": i, "name": f"n{i}", "tags": ["x"], "meta": {"a": None}} for i in range(5)]


def test_single_mode_posts_one_row_per_request_with_its_idempotency_key(
    server: ScriptedServer, tmp_path: Path
) -> None:
    with rest(server.url, tmp_path) as sink:
        result = sink.post("/customers", ROWS[:3], idempotency_key_prefix="run_1:call_7")

    assert result.count == 3
    assert result.responses == [{"echo": row} for row in ROWS[:3]]
    assert [s.body for s in server.seen] == ROWS[:3]
    assert [s.path for s in server.seen] == ["/api/v1/customers"] * 3
    assert [s.headers["idempotency-key"] for s in server.seen] == [f"run_1:call_7:{i}" for i in range(3)]
    assert all(s.headers["authorization"] == "Bearer s3cret-token" for s in server.seen)
    assert all(s.headers["content-type"] == "application/json" for s in server.seen)


def test_batch_mode_posts_arrays_of_batch_size(server: ScriptedServer, tmp_path: Path) -> None:
    with rest(server.url, tmp_path, batch_size=2) as sink:
        result = sink.post("customers/bulk", ROWS, mode="batch", idempotency_key_prefix="k")

    assert result.count == 5
    assert [s.body for s in server.seen] == [ROWS[0:2], ROWS[2:4], ROWS[4:5]]
    assert [s.headers["idempotency-key"] for s in server.seen] == ["k:0", "k:1", "k:2"]
    assert result.responses == [{"echo": ROWS[0:2]}, {"echo": ROWS[2:4]}, {"echo": ROWS[4:5]}]


def test_a_4xx_fails_at_once_with_a_clear_error(server: ScriptedServer, tmp_path: Path) -> None:
    server.script("/api/v1/customers", Reply(201, {"id": 7}), Reply(422, {"error": "email is invalid"}))
    with (
        rest(server.url, tmp_path, idempotent=True, max_retries=5) as sink,
        pytest.raises(RestError) as caught,
    ):
        sink.post("customers", ROWS, idempotency_key_prefix="k")

    error = caught.value
    assert (error.status, error.method, error.path) == (422, "POST", "/api/v1/customers")
    assert (error.index, error.completed, error.attempts, error.ambiguous) == (1, 1, 1, False)
    # What the requests before it created, for the caller to record (a purge undoes it).
    assert error.partial is not None and (error.partial.count, error.partial.responses) == (1, [{"id": 7}])
    assert json.loads(error.body) == {"error": "email is invalid"}
    assert "email is invalid" in str(error) and "conn_api" in str(error)
    assert "s3cret" not in str(error)
    assert len(server.seen) == 2  # no retry, and nothing after the failing row


def test_a_5xx_is_retried_with_the_same_idempotency_key(server: ScriptedServer, tmp_path: Path) -> None:
    server.script("/api/v1/customers", Reply(500, {"error": "db down"}), Reply(201, {"id": 42}))
    with rest(server.url, tmp_path, idempotent=True) as sink:
        result = sink.post("customers", ROWS[:1], idempotency_key_prefix="run_9:3")

    assert result.count == 1 and result.responses == [{"id": 42}]
    assert [s.headers["idempotency-key"] for s in server.seen] == ["run_9:3:0", "run_9:3:0"]
    assert server.seen[0].body == server.seen[1].body


def test_a_5xx_is_not_retried_when_the_target_is_not_idempotent(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.script("/api/v1/customers", Reply(503, {"error": "busy"}))
    with rest(server.url, tmp_path, idempotent=False) as sink, pytest.raises(RestError) as caught:
        sink.post("customers", ROWS[:1], idempotency_key_prefix="k")
    assert caught.value.status == 503 and caught.value.ambiguous
    assert "may have been applied" in str(caught.value)
    assert len(server.seen) == 1


def test_retries_stop_after_max_retries(server: ScriptedServer, tmp_path: Path) -> None:
    server.script("/api/v1/customers", *[Reply(500)] * 5)
    with (
        rest(server.url, tmp_path, idempotent=True, max_retries=2) as sink,
        pytest.raises(RestError) as caught,
    ):
        sink.post("customers", ROWS[:1], idempotency_key_prefix="k")
    assert (caught.value.status, caught.value.attempts) == (500, 3)
    assert len(server.seen) == 3


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_429_waits_for_retry_after_seconds(
    server: ScriptedServer, tmp_path: Path, idempotent: bool
) -> None:
    # 429 means "not processed": retried even for a non-idempotent target.
    server.script("/api/v1/customers", Reply(429, {"error": "slow down"}, {"Retry-After": "1"}))
    with rest(server.url, tmp_path, idempotent=idempotent) as sink:
        result = sink.post("customers", ROWS[:1], idempotency_key_prefix="k")
    assert result.count == 1
    first, second = server.seen
    assert second.at - first.at >= 0.95
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "k:0"


def test_retry_after_as_an_http_date_and_its_cap(server: ScriptedServer, tmp_path: Path) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.script("/api/v1/a", Reply(429, headers={"Retry-After": when}))
    server.script("/api/v1/b", Reply(429, headers={"Retry-After": "3600"}))
    with rest(server.url, tmp_path, retry_after_max_seconds=1.5) as sink:
        sink.post("a", ROWS[:1], idempotency_key_prefix="k")
        sink.post("b", ROWS[:1], idempotency_key_prefix="k")
    a1, a2, b1, b2 = server.seen
    assert 0.5 <= a2.at - a1.at <= 1.6  # a date 1-2 s ahead (second precision), capped at 1.5 s
    assert 1.4 <= b2.at - b1.at <= 2.5  # an hour, capped at 1.5 s


def test_a_timeout_is_retried_only_when_the_target_is_idempotent(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.script("/api/v1/customers", Reply(201, delay=1.0))
    with rest(server.url, tmp_path, idempotent=True, timeout_seconds=0.3) as sink:
        assert sink.post("customers", ROWS[:1], idempotency_key_prefix="k").count == 1
    assert [s.headers["idempotency-key"] for s in server.seen] == ["k:0", "k:0"]

    server.seen.clear()
    server.script("/api/v1/customers", Reply(201, delay=1.0))
    with (
        rest(server.url, tmp_path, idempotent=False, timeout_seconds=0.3) as sink,
        pytest.raises(RestError) as caught,
    ):
        sink.post("customers", ROWS[:1], idempotency_key_prefix="k")
    assert caught.value.status is None and caught.value.ambiguous
    # The connection's timeout counts for the whole request: its total deadline ends it.
    assert "total deadline" in str(caught.value)
    assert len(server.seen) == 1


def test_connect_errors_are_always_retried(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    with (
        rest(f"http://127.0.0.1:{port}", tmp_path, idempotent=False, max_retries=2) as sink,
        pytest.raises(RestError) as caught,
    ):
        sink.post("customers", ROWS[:1], idempotency_key_prefix="k")
    assert (caught.value.status, caught.value.attempts, caught.value.ambiguous) == (None, 3, False)
    assert "ConnectError" in str(caught.value)


def test_get_returns_json_and_retries_even_for_non_idempotent_targets(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.script("/api/v1/customers", Reply(502), Reply(200, [{"id": 1}]))
    server.script("/api/v1/missing", Reply(404, b"not here"))
    server.script("/api/v1/text", Reply(200, b"<html>"))
    with rest(server.url, tmp_path, idempotent=False) as sink:
        assert sink.get("customers", {"active": "true", "page": 2}) == [{"id": 1}]
        assert server.seen[-1].path == "/api/v1/customers?active=true&page=2"
        with pytest.raises(RestError) as caught:
            sink.get("missing")
        assert (caught.value.status, caught.value.method, caught.value.body) == (404, "GET", "not here")
        with pytest.raises(RestError, match="not JSON"):
            sink.get("text")


def test_redirects_are_not_followed(server: ScriptedServer, tmp_path: Path) -> None:
    server.script("/api/v1/customers", Reply(302, headers={"Location": "http://example.com/steal"}))
    with rest(server.url, tmp_path) as sink, pytest.raises(RestError) as caught:
        sink.post("customers", ROWS[:1], idempotency_key_prefix="k")
    assert caught.value.status == 302 and "redirects are not followed" in str(caught.value)


def test_error_bodies_are_cut_to_one_kib(server: ScriptedServer, tmp_path: Path) -> None:
    server.script("/api/v1/customers", Reply(400, b"x" * 100_000))
    with rest(server.url, tmp_path) as sink, pytest.raises(RestError) as caught:
        sink.post("customers", ROWS[:1], idempotency_key_prefix="k")
    assert caught.value.body == "x" * 1024


@pytest.mark.parametrize(
    "path",
    [
        "http://evil.example/x",
        "//evil.example/x",
        "https:x",
        "../x",
        "customers/../../admin",
        "customers/%2e%2e/%2E%2E/admin",
        "customers%2f..%2fadmin",
        "a\r\nX-Injected: 1",
        "a\x00b",
        "a#frag",
        "a\\..\\b",
        "",
    ],
)
def test_paths_that_could_leave_the_base_url_are_refused(
    server: ScriptedServer, tmp_path: Path, path: str
) -> None:
    with rest(server.url, tmp_path) as sink:
        with pytest.raises(InvalidRequestError, match="invalid path"):
            sink.post(path, ROWS[:1], idempotency_key_prefix="k")
        with pytest.raises(InvalidRequestError, match="invalid path"):
            sink.get(path)
    assert server.seen == []


def test_bad_rows_and_keys_are_refused_before_sending(server: ScriptedServer, tmp_path: Path) -> None:
    with rest(server.url, tmp_path) as sink:
        with pytest.raises(SerializationError) as caught:
            sink.post(
                "customers", [{"a": 1}, {"a": 2, "when": datetime(2024, 1, 1)}], idempotency_key_prefix="k"
            )
        assert (caught.value.row, caught.value.field, caught.value.type_name) == (1, "when", "datetime")
        with pytest.raises(SerializationError):
            sink.post("customers", [{"a": float("nan")}], idempotency_key_prefix="k")
        with pytest.raises(InvalidRequestError, match="idempotency_key_prefix"):
            sink.post("customers", ROWS[:1], idempotency_key_prefix="bad\r\nkey")
        with pytest.raises(InvalidRequestError, match="mode"):
            sink.post("customers", ROWS[:1], mode="bulk", idempotency_key_prefix="k")  # type: ignore[arg-type]
    assert server.seen == []


def test_configuration_is_checked(tmp_path: Path) -> None:
    for options, message in [
        ({}, "'base_url' is required"),
        ({"base_url": "ftp://host/x"}, "http:// or https://"),
        ({"base_url": "https://user:s3cret@host/x"}, "no credentials"),
        ({"base_url": "https://host/x", "headers": {"X-A": "a\r\nb"}}, "line break"),
        ({"base_url": "https://host/x", "idempotent": "yes"}, "true or false"),
        ({"base_url": "https://host/x", "retries": 3}, "unknown option 'retries'"),
    ]:
        with pytest.raises(ConfigurationError, match=message) as caught:
            open_sink(ConnectionSpec("conn_api", "rest", options), artifacts_dir=tmp_path)
        assert "s3cret" not in str(caught.value)
    sink = rest("https://host/x", tmp_path)
    assert "s3cret" not in repr(sink.settings) + repr(sink.spec)
    sink.close()
