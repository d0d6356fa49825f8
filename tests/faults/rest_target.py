"""A loopback HTTP API that behaves like a well-behaved idempotent service, with faults on cue.

``POST`` of a JSON object or array to any path stores its rows under that path, once per
``Idempotency-Key``: a repeated key gets the stored response back (with ``Idempotent-Replayed:
true``) and stores nothing; the same key with a different body is refused with 422, as Stripe and the
IETF idempotency-key draft do. Requests without the header are stored every time. ``GET`` of a path
returns its stored rows as a JSON array. ``DELETE`` of ``{path}/{id}`` removes the rows stored under
``path`` whose ``id`` reads ``id`` (204), or answers 404 when there is none (a purge's undo).

Faults are programmed per path and consumed in order, one per ``POST``; the key is counted in
``keys_seen`` whatever the answer:

- ``fail(path, status, times)``: answer ``status``, store nothing;
- ``throttle(path, retry_after_seconds, times)``: 429 with ``Retry-After``, store nothing;
- ``apply_then_hang(path, seconds, times)``: store (idempotently), then hold the answer for
  ``seconds``, past the client's timeout: the request "applied, then timed out".
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self


@dataclass(frozen=True)
class SeenRequest:
    """One request as received, and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    status: int


@dataclass
class _Fault:
    kind: Literal["fail", "throttle", "apply_then_hang"]
    times: int
    status: int = 0
    retry_after_seconds: int = 0
    hang_seconds: float = 0.0


@dataclass(frozen=True)
class _Stored:
    body_hash: str
    status: int
    payload: bytes


@dataclass
class _Path:
    rows: list[Any] = field(default_factory=list)
    by_key: dict[str, _Stored] = field(default_factory=dict)
    keys_seen: dict[str, int] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    faults: deque[_Fault] = field(default_factory=deque)


@dataclass(frozen=True)
class _Answer:
    status: int
    payload: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error(status: int, message: str, **headers: str) -> _Answer:
    return _Answer(status, _json({"error": message}), headers)


class RestTarget:
    """``with RestTarget() as api:`` post to ``api.url + "/customers"``; inspect ``api.rows(path)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, _Path] = {}
        self._seen: list[SeenRequest] = []  # every request, every path, in arrival order
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise ValueError("the target is already started")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="rest-target", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: ``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise ValueError("the target is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- faults ----------------------------------------------------------------------------------

    def fail(self, path: str, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` POSTs to ``path`` with ``status``, storing nothing."""
        if not 400 <= status <= 599:
            raise ValueError(f"a failure status is 4xx or 5xx, got {status}")
        self._program(path, _Fault("fail", times, status=status))

    def throttle(self, path: str, retry_after_seconds: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` POSTs to ``path`` with 429 and ``Retry-After``, storing nothing."""
        if retry_after_seconds < 0:
            raise ValueError(f"retry_after_seconds must not be negative, got {retry_after_seconds}")
        self._program(path, _Fault("throttle", times, retry_after_seconds=retry_after_seconds))

    def apply_then_hang(self, path: str, seconds: float, times: int = 1) -> None:
        """Store the next ``times`` POSTs to ``path``, then hold each answer for ``seconds``."""
        if seconds <= 0:
            raise ValueError(f"seconds must be positive, got {seconds}")
        self._program(path, _Fault("apply_then_hang", times, hang_seconds=seconds))

    def _program(self, path: str, fault: _Fault) -> None:
        if fault.times < 1:
            raise ValueError(f"times must be at least 1, got {fault.times}")
        with self._lock:
            self._path(path).faults.append(fault)

    # -- observation -----------------------------------------------------------------------------

    def rows(self, path: str) -> list[Any]:
        """The rows stored under ``path``, in arrival order."""
        with self._lock:
            return list(self._path(path).rows)

    def keys_seen(self, path: str) -> dict[str, int]:
        """Each ``Idempotency-Key`` received on ``path`` → how many requests carried it."""
        with self._lock:
            return dict(self._path(path).keys_seen)

    def requests(self, path: str) -> list[SeenRequest]:
        """Every request received on ``path`` (GETs included), in arrival order."""
        with self._lock:
            return list(self._path(path).requests)

    def requests_made(self, method: str) -> list[SeenRequest]:
        """Every ``method`` request received, on any path, in arrival order."""
        with self._lock:
            return [r for r in self._seen if r.method == method]

    def pending_faults(self, path: str) -> int:
        """How many programmed faulty answers ``path`` has yet to give."""
        with self._lock:
            return sum(f.times for f in self._path(path).faults)

    # -- request handling (handler threads) ------------------------------------------------------

    def _path(self, path: str) -> _Path:
        return self._paths.setdefault(path, _Path())

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Answer:
        try:
            body, problem = (json.loads(raw) if raw else None), None
        except ValueError:
            body, problem = raw.decode("utf-8", "replace"), _error(400, "the body is not JSON")
        with self._lock:
            state = self._path(path)
            if problem is None and method == "DELETE":
                problem = self._delete(path)
            answer = problem or self._decide(state, method, headers, body)
            seen = SeenRequest(method, path, headers, body, answer.status)
            state.requests.append(seen)
            self._seen.append(seen)
        return answer

    def _decide(self, state: _Path, method: str, headers: dict[str, str], body: Any) -> _Answer:
        """The answer to one request, with its effect on ``state`` (under the lock)."""
        if method == "GET":
            return _Answer(200, _json(state.rows))
        if method != "POST":
            return _error(405, f"{method} is not supported", Allow="GET, POST")
        key = headers.get("idempotency-key")
        if key is not None:
            state.keys_seen[key] = state.keys_seen.get(key, 0) + 1
        fault = state.faults[0] if state.faults else None
        if fault is not None:
            fault.times -= 1
            if fault.times == 0:
                state.faults.popleft()
            if fault.kind == "fail":
                return _error(fault.status, f"injected failure {fault.status}")
            if fault.kind == "throttle":
                return _error(429, "slow down", **{"Retry-After": str(fault.retry_after_seconds)})
        if not isinstance(body, (dict, list)):
            return _error(400, "the body must be a JSON object or array")
        answer = self._store(state, key, body)
        if fault is not None:  # apply_then_hang: the rows are in, the answer comes too late
            return _Answer(answer.status, answer.payload, answer.headers, fault.hang_seconds)
        return answer

    def _delete(self, path: str) -> _Answer:
        """DELETE {collection}/{id}: the rows of ``collection`` whose id reads ``id``."""
        collection, _, wanted = path.rpartition("/")
        rows = self._paths.get(collection, _Path()).rows
        kept = [r for r in rows if not (isinstance(r, dict) and str(r.get("id")) == wanted)]
        if len(kept) == len(rows):
            return _error(404, f"no row {wanted!r} under {collection}")
        rows[:] = kept
        return _Answer(204, b"")

    def _store(self, state: _Path, key: str | None, body: dict[str, Any] | list[Any]) -> _Answer:
        """Insert if the key is absent; a duplicate gets the first response back."""
        body_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key is not None and (stored := state.by_key.get(key)) is not None:
            if stored.body_hash != body_hash:
                return _error(422, f"Idempotency-Key {key!r} was first used with a different body")
            return _Answer(stored.status, stored.payload, {"Idempotent-Replayed": "true"})
        state.rows.extend(body if isinstance(body, list) else [body])
        payload = _json(body)
        if key is not None:
            state.by_key[key] = _Stored(body_hash, 201, payload)
        return _Answer(201, payload)


def _handler_for(target: RestTarget) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = target._answer(self.command, self.path.split("?")[0], headers, raw)
            if answer.hang_seconds and target._closing.wait(answer.hang_seconds):
                return  # closing: drop the answer
            try:
                self.send_response(answer.status)
                for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.payload)))
                self.end_headers()
                self.wfile.write(answer.payload)
            except OSError:
                pass  # the client gave up (the point of apply_then_hang)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler
