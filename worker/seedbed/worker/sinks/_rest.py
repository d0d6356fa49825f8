"""The REST sink: POST rows to an HTTP API (one request per row, or a JSON array per batch) and GET
JSON from it, with httpx.

The base URL is the allow-list: a path must be relative to it (no scheme or host, no `//`, no `..`
or `.` segment, no backslash, no control character, no `;` matrix parameter, none of these
percent-encoded — `%2e`, `%2f`, `%5c`, `%3b`, `%00` in any case — and no double encoding such as
`%252e`), and the final URL is checked against it again before anything is sent. Redirects are not
followed (they could leave the allow-list).

Every request has a total deadline: the connection's `timeout_seconds` counts for the whole
exchange (connect, send, headers, body), not for each read, so a server trickling a byte a second
cannot hold a call; a caller's `deadline` (the attempt's end) bounds it further, backoff included.
httpx's timeouts are per operation, so a watchdog thread shuts the connection's socket down when
the deadline passes (the socket comes from httpcore's `trace` extension: one connection per sink,
its calls are serialised). `interrupt()` does the same at once, for an attempt that ended.
Rejected: a thread per request abandoned at the deadline (it would go on reading), and a custom
httpcore network backend (httpx's transport does not take one without reaching into its
internals).

Exactly-once: every request carries `Idempotency-Key: {prefix}:{index}` (index = row in single
mode, batch in batch mode), the same on every retry and on every replay of the run. A failure
before the request left (connect error, pool timeout) is always retried; 429 too (the server says
it did nothing), after `Retry-After` (seconds or an HTTP date, capped) or the backoff. A failure
after it left (timeout, broken response, 5xx) is *ambiguous*: retried only when the target is
declared `idempotent`, else reported at once with `RestError.ambiguous`. Other 4xx never retry.
Backoff: exponential from `backoff_base_seconds`, capped at `backoff_max_seconds`, with jitter
(uniform in [delay/2, delay]).

Each request sent is a CLIENT span (OpenTelemetry's HTTP conventions: `http.request.method`,
`url.full`, `server.address`, `server.port`, `http.response.status_code`, `error.type`,
`http.request.resend_count` on a retry), child of the span current on the thread (the SDK call).
`url.full` has no credentials (the base URL may not hold any) and its query values read REDACTED;
the Idempotency-Key is not an attribute.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import socket
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

import httpx

from seedbed.worker import tracing
from seedbed.worker.sinks import _rest_undo
from seedbed.worker.sinks._errors import ConfigurationError, InvalidRequestError, RestError
from seedbed.worker.sinks._rows import encode_json_row
from seedbed.worker.sinks._spec import ConnectionSpec, OptionReader, PostResult, Row, Sink

__all__ = ["PostMode", "RestSettings", "RestSink", "RetryPolicy"]

PostMode = Literal["single", "batch"]
_EXCERPT_BYTES = 1024
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How a REST sink retries: at most `max_retries` times after the first attempt."""

    max_retries: int = 3
    backoff_base: timedelta = timedelta(seconds=0.5)
    backoff_max: timedelta = timedelta(seconds=30)
    retry_after_max: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("RetryPolicy.max_retries must be >= 0")
        if self.backoff_base <= timedelta(0) or self.backoff_max < self.backoff_base:
            raise ValueError("RetryPolicy needs 0 < backoff_base <= backoff_max")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (0-based), jittered."""
        ceiling = min(self.backoff_max.total_seconds(), self.backoff_base.total_seconds() * 2**retry)
        return rng.uniform(ceiling / 2, ceiling)

    def retry_after(self, header: str | None) -> float | None:
        """Seconds asked by a `Retry-After` header (delta-seconds or HTTP date), capped; None when
        absent or unreadable."""
        if not header:
            return None
        header = header.strip()
        if header.isdigit():
            seconds = float(header)
        else:
            try:
                when = email.utils.parsedate_to_datetime(header)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        return max(0.0, min(seconds, self.retry_after_max.total_seconds()))


@dataclass(frozen=True)
class RestSettings:
    """A REST connection's options (see `ConnectionSpec`). `headers` hold resolved credentials."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    batch_size: int = 100
    timeout: timedelta = timedelta(seconds=30)
    idempotent: bool = False
    retry: RetryPolicy = RetryPolicy()
    max_response_bytes: int = 10 * 2**20
    # How a purge undoes a post: "DELETE /things/{id}" ({id}: the id a response names at
    # `undo_id_field`, {path}: the path posted to); "" when it cannot be undone.
    undo: str = ""
    undo_id_field: str = "id"

    @classmethod
    def from_spec(cls, spec: ConnectionSpec) -> Self:
        read = OptionReader(spec)
        base_url = read.text("base_url", required=True)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                "option 'base_url' must be an http:// or https:// URL", connection_id=spec.id
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ConfigurationError(
                "option 'base_url' must have no credentials, query or fragment (put credentials in headers)",
                connection_id=spec.id,
            )
        headers = read.string_map("headers")
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\x00"):
                raise ConfigurationError(f"header {name!r} holds a line break or NUL", connection_id=spec.id)
        defaults = RetryPolicy()
        retry = RetryPolicy(
            max_retries=read.integer("max_retries", default=defaults.max_retries, minimum=0, maximum=20),
            backoff_base=read.duration(
                "backoff_base_seconds", default=defaults.backoff_base, minimum=timedelta(milliseconds=1)
            ),
            backoff_max=read.duration("backoff_max_seconds", default=defaults.backoff_max),
            retry_after_max=read.duration("retry_after_max_seconds", default=defaults.retry_after_max),
        )
        settings = cls(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            batch_size=read.integer("batch_size", default=cls.batch_size, maximum=100_000),
            timeout=read.duration("timeout_seconds", default=cls.timeout, minimum=timedelta(milliseconds=1)),
            idempotent=read.boolean("idempotent", default=cls.idempotent),
            retry=retry,
            max_response_bytes=read.integer(
                "max_response_bytes", default=cls.max_response_bytes, maximum=2**31
            ),
            undo=_rest_undo.check_undo(read.text("undo"), spec.id),
            undo_id_field=read.text("undo_id_field", default=cls.undo_id_field),
        )
        read.done()
        return settings

    def __repr__(self) -> str:
        return f"RestSettings(base_url={self.base_url!r}, headers=<{', '.join(self.headers)}>, …)"


class RestSink(Sink):
    """Posts rows to and gets JSON from one HTTP API. Calls are serialised by a lock."""

    kind = "rest"

    def __init__(self, spec: ConnectionSpec) -> None:
        super().__init__(spec)
        self.settings = RestSettings.from_spec(spec)
        seconds = self.settings.timeout.total_seconds()
        self._base = httpx.URL(self.settings.base_url)
        self._client = httpx.Client(
            base_url=self._base,
            headers=dict(self.settings.headers),
            timeout=httpx.Timeout(seconds),
            follow_redirects=False,
            # One connection: the watchdog knows which socket the request in flight uses.
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._watchdog = _Watchdog(spec.id)

    def post(
        self,
        path: str,
        rows: Sequence[Row],
        *,
        mode: PostMode = "single",
        idempotency_key_prefix: str,
        deadline: float | None = None,
    ) -> PostResult:
        """POST `rows` as JSON: one object per request ("single") or an array of up to `batch_size`
        objects per request ("batch"). Stops at the first request that fails for good: its
        RestError's `partial` holds what the requests before it created. `deadline` (a
        `time.monotonic()` value) bounds the whole call, retries included."""
        cid = self.connection_id
        path = _check_path(path, cid)
        if mode not in ("single", "batch"):
            raise InvalidRequestError(f"mode must be 'single' or 'batch', got {mode!r}", connection_id=cid)
        if (
            not isinstance(idempotency_key_prefix, str)
            or not 0 < len(idempotency_key_prefix) <= 200
            or not all("!" <= c <= "~" for c in idempotency_key_prefix)
        ):
            raise InvalidRequestError(
                "idempotency_key_prefix must be 1-200 visible ASCII characters", connection_id=cid
            )
        bodies = _encode_rows(rows, cid)
        size = 1 if mode == "single" else self.settings.batch_size
        responses: list[Any] = []
        completed = 0
        with self._lock:
            for index, start in enumerate(range(0, len(bodies), size)):
                chunk = bodies[start : start + size]
                content = chunk[0] if mode == "single" else b"[" + b",".join(chunk) + b"]"
                try:
                    status, body = self._send(
                        "POST",
                        path,
                        content=content,
                        key=f"{idempotency_key_prefix}:{index}",
                        retry_ambiguous=self.settings.idempotent,
                        index=index,
                        completed=completed,
                        deadline=deadline,
                        rows=len(chunk),
                    )
                except RestError as exc:
                    exc.partial = PostResult(completed, responses)  # what requests 0..index-1 created
                    raise
                responses.append(_parse_json(body))
                completed += len(chunk)
        return PostResult(completed, responses)

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, deadline: float | None = None
    ) -> Any:
        """GET `path` (with query `params`) and return its JSON body (None when empty). GET is safe:
        ambiguous failures are retried whatever `idempotent` says. `deadline` as for `post`."""
        cid = self.connection_id
        path = _check_path(path, cid)
        if params is not None and not isinstance(params, Mapping):
            raise InvalidRequestError("params must be a mapping", connection_id=cid)
        with self._lock:
            _, body = self._send("GET", path, params=params, retry_ambiguous=True, deadline=deadline)
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise RestError(
                connection_id=cid,
                method="GET",
                path=self._path_of(path),
                reason="the response is not JSON",
                status=200,
                body=_excerpt(body),
            ) from None

    def created_ids(self, responses: Sequence[Any], *, rows: int, mode: PostMode) -> list[str] | None:
        """What a purge may delete for a post of `rows` rows in `mode` whose requests were answered
        `responses` (one per request): per request, the ids its response names at `undo_id_field`
        (an array answer: one per element), "" for each row posted that none names; None when the
        connection declares no undo.

        A response can only name what its request created: one naming more ids than rows posted
        (a target answering with its whole collection), an id twice, an id another request of the
        post named too, or an id that is not a non-empty string or integer of at most 200
        characters without control characters, records no id for that request, and neither does
        one object answering a batch request of several rows; one entry `unrecorded(...)` reads
        back as (rows, why) stands for it, so a purge lists the request instead of deleting what
        the target named (see `_rest_undo`)."""
        return _rest_undo.created_ids(self.settings, responses, rows=rows, mode=mode)

    @staticmethod
    def unrecorded(entry: str) -> tuple[int, str] | None:
        """For an entry of `created_ids` that stands for a request whose ids were not recorded: the
        rows it posted and why; None for an id (or "")."""
        return _rest_undo.unrecorded(entry)

    def undo_path(self, posted_to: str, created_id: str) -> str:
        """The path a purge requests to undo the post of `created_id` to `posted_to`: the id
        percent-encoded whole (an id holding '/' or '..' cannot leave the resource), the result
        checked like every path (InvalidRequestError)."""
        path = _rest_undo.undo_target(self.settings.undo, posted_to, created_id)
        return _check_path(path, self.connection_id)

    def delete(self, path: str, *, deadline: float | None = None) -> bool:
        """DELETE `path` (retried like a GET: deleting twice is deleting once). True when deleted,
        False when the target answered 404 or 410 (already gone); RestError otherwise."""
        path = _check_path(path, self.connection_id)
        with self._lock:
            try:
                self._send("DELETE", path, retry_ambiguous=True, deadline=deadline)
            except RestError as exc:
                if exc.status in (404, 410):
                    return False
                raise
        return True

    def close(self) -> None:
        self._watchdog.close()
        self._client.close()

    def interrupt(self) -> None:
        """Shut the request in flight down now, and refuse every later one."""
        self._watchdog.interrupt()

    # -- one request, with retries ----------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        key: str | None = None,
        retry_ambiguous: bool,
        index: int | None = None,
        completed: int = 0,
        deadline: float | None = None,
        rows: int | None = None,
    ) -> tuple[int, bytes]:
        policy = self.settings.retry
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        request = self._client.build_request(
            method,
            path,
            content=content,
            params=params,
            headers=headers,
            extensions={"trace": self._watchdog.trace},
        )
        self._check_url(request.url, path)
        url_path = request.url.path
        attributes = _span_attributes(request, index=index, rows=rows)
        total = self.settings.timeout.total_seconds()
        attempt = 0
        while True:
            attempt += 1
            failure: RestError
            wait: float | None = None
            now = time.monotonic()
            until = now + total if deadline is None else min(now + total, deadline)
            if until <= now or self._watchdog.interrupted:
                raise RestError(
                    connection_id=self.connection_id,
                    method=method,
                    path=url_path,
                    reason="not sent: the attempt has no time left"
                    if not self._watchdog.interrupted
                    else "not sent: the attempt has ended",
                    index=index,
                    completed=completed,
                    attempts=attempt - 1,
                )
            try:
                with self._watchdog.armed(until):
                    status, retry_after, body = self._traced_exchange(request, attempt, attributes)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, _NOT_SENT)
                retryable = not sent or retry_ambiguous
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if self._watchdog.fired:
                    sent, retryable = True, retry_ambiguous and (deadline is None or until < deadline)
                    reason = (
                        f"no complete answer within {until - now:.3g}s: the request's total deadline "
                        "(the connection's timeout_seconds, or the time the attempt has left) passed"
                    )
                failure = RestError(
                    connection_id=self.connection_id,
                    method=method,
                    path=url_path,
                    reason=reason,
                    index=index,
                    completed=completed,
                    attempts=attempt,
                    ambiguous=sent and not retry_ambiguous,
                )
            else:
                if 200 <= status < 300:
                    return status, body
                retryable = status == 429 or (status >= 500 and retry_ambiguous)
                failure = RestError(
                    connection_id=self.connection_id,
                    method=method,
                    path=url_path,
                    reason=_reason(status),
                    status=status,
                    body=_excerpt(body),
                    index=index,
                    completed=completed,
                    attempts=attempt,
                    ambiguous=status >= 500 and not retry_ambiguous,
                )
                wait = policy.retry_after(retry_after)
            if not retryable or attempt > policy.max_retries:
                raise failure
            pause = wait if wait is not None else policy.backoff(attempt - 1, self._rng)
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise failure  # no time left for another try
            if self._watchdog.pause(pause):
                raise failure  # interrupted while waiting

    def _traced_exchange(
        self, request: httpx.Request, attempt: int, attributes: Mapping[str, Any]
    ) -> tuple[int, str | None, bytes]:
        """`_exchange` as one CLIENT span (see the module's doc)."""
        with tracing.span(request.method, kind=tracing.SpanKind.CLIENT, attributes=attributes) as span:
            if attempt > 1:
                span.set_attribute("http.request.resend_count", attempt - 1)
            status, retry_after, body = self._exchange(request)
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                tracing.fail(span, error_type=str(status), message=_reason(status))
            return status, retry_after, body

    def _exchange(self, request: httpx.Request) -> tuple[int, str | None, bytes]:
        """Send once: the status, the Retry-After header and the body (up to max_response_bytes)."""
        response = self._client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.settings.max_response_bytes:
                    # Too big to keep; an error's excerpt needs only the start.
                    if not 200 <= response.status_code < 300:
                        break
                    raise RestError(
                        connection_id=self.connection_id,
                        method=request.method,
                        path=request.url.path,
                        status=response.status_code,
                        reason=f"the response is larger than {self.settings.max_response_bytes} bytes",
                    )
                chunks.append(chunk)
            return response.status_code, response.headers.get("Retry-After"), b"".join(chunks)
        finally:
            response.close()

    def _check_url(self, url: httpx.URL, path: str) -> None:
        base = self._base
        if (url.scheme, url.host, url.port) != (
            base.scheme,
            base.host,
            base.port,
        ) or not url.raw_path.startswith(base.raw_path):
            raise InvalidRequestError(
                f"path {path!r} leaves the connection's base URL", connection_id=self.connection_id
            )

    def _path_of(self, path: str) -> str:
        return self._client.build_request("GET", path).url.path


def _span_attributes(request: httpx.Request, *, index: int | None, rows: int | None) -> dict[str, Any]:
    """A request's span attributes: its URL without credentials, its query values REDACTED."""
    url = request.url.copy_with(username=None, password=None, fragment=None)
    if url.query:
        url = url.copy_with(params={key: "REDACTED" for key in url.params})  # the keys stay
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "url.full": str(url),
        "server.address": url.host,
    }
    if url.port is not None:
        attributes["server.port"] = url.port
    if index is not None:
        attributes["seedbed.batch"] = index
    if rows is not None:
        attributes["seedbed.rows"] = rows
    if request.content:
        attributes["seedbed.bytes"] = len(request.content)
    return attributes


def _check_path(path: object, connection_id: str) -> str:
    """A path relative to the base URL, or InvalidRequestError saying why not."""

    def refuse(why: str) -> InvalidRequestError:
        return InvalidRequestError(f"invalid path {path!r}: {why}", connection_id=connection_id)

    if not isinstance(path, str) or not path or len(path) > 2048:
        raise refuse("expected a non-empty string of at most 2048 characters (use '/' for the base URL)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise refuse("control characters (CR, LF, NUL, …) are not allowed")
    if "\\" in path or "#" in path or path.startswith("//"):
        raise refuse("backslashes, fragments and '//' are not allowed")
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or ":" in parts.path.split("/", 1)[0]:
        raise refuse("must be relative to the connection's base URL (no scheme or host)")
    if "//" in parts.path:
        raise refuse("empty segments ('//') are not allowed")
    for segment in parts.path.split("/"):
        decoded = unquote(segment)
        # What a server that decodes again, or folds Unicode (U+FF0E FULLWIDTH FULL STOP), would see.
        folded = unicodedata.normalize("NFKC", unquote(decoded))
        if ";" in folded:
            raise refuse("';' (matrix parameters), also as %3b, is not allowed in a path segment")
        if decoded != unquote(decoded):
            raise refuse("double percent-encoding (such as %252e) is not allowed")
        if folded in (".", "..") or "/" in folded or "\\" in folded:
            raise refuse("'.' and '..' segments and encoded slashes or backslashes are not allowed")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
            raise refuse("encoded control characters (%00, %0d, %0a, …) are not allowed")
    return path.lstrip("/")


def _encode_rows(rows: Sequence[Row], connection_id: str) -> list[bytes]:
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence):
        raise InvalidRequestError(
            f"rows must be a list of objects, got a {type(rows).__name__}", connection_id=connection_id
        )
    return [encode_json_row(row, index=index, connection_id=connection_id) for index, row in enumerate(rows)]


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _excerpt(body: bytes) -> str:
    return body[:_EXCERPT_BYTES].decode("utf-8", "replace")


def _reason(status: int) -> str:
    if status == 429:
        return "too many requests"
    if status >= 500:
        return "server error"
    if 300 <= status < 400:
        return "redirects are not followed (they could leave the base URL)"
    return "request refused (not retried)"


class _Watchdog:
    """Shuts the sink's connection down when the request in flight passes its deadline.

    One thread per sink, started with the first request; it sleeps until a request is armed, then
    until its deadline. `trace` (httpcore's trace extension) learns the socket of each new connection.
    """

    def __init__(self, connection_id: str) -> None:
        self._name = f"seedbed-rest-deadline-{connection_id}"
        self._cond = threading.Condition()
        self._socket: socket.socket | None = None
        self._until: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.fired = False
        self.interrupted = False

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            with self._cond:
                self._socket = sock if isinstance(sock, socket.socket) else None
                if self.fired or self.interrupted:
                    self._shut()  # the deadline passed while connecting

    def armed(self, until: float) -> _Armed:
        return _Armed(self, until)

    def _arm(self, until: float) -> None:
        with self._cond:
            self.fired = False
            self._until = until
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._watch, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _disarm(self) -> None:
        with self._cond:
            self._until = None
            self._cond.notify_all()

    def pause(self, seconds: float) -> bool:
        """Sleep `seconds` unless interrupted first; True when interrupted."""
        end = time.monotonic() + seconds
        with self._cond:
            while not self.interrupted and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
            return self.interrupted

    def interrupt(self) -> None:
        with self._cond:
            self.interrupted = True
            if self._until is not None:
                self._shut()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1)

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._until is None:
                    self._cond.wait()
                    continue
                left = self._until - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._shut()
                self._until = None

    def _shut(self) -> None:
        """Called with the lock held: wake the blocked read or write with an end of stream."""
        self.fired = True
        if self._socket is not None:
            with contextlib.suppress(OSError):  # already closed
                self._socket.shutdown(socket.SHUT_RDWR)


class _Armed:
    def __init__(self, watchdog: _Watchdog, until: float) -> None:
        self._watchdog = watchdog
        self._until = until

    def __enter__(self) -> None:
        self._watchdog._arm(self._until)

    def __exit__(self, *exc: object) -> None:
        self._watchdog._disarm()
