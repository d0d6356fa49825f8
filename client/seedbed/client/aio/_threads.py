"""The sync client's calls in threads, and how the event loop cancels them.

One awaited call is one ``CallScope``. A thread of the client's own executor runs the sync method
with the scope current in its context (a ``ContextVar``, set in a copy of the awaiting task's
context, so anything else carried there, e.g. a tracing context, goes along). Every gRPC call the
method starts goes through the ``ScopedChannel`` and joins the current scope. Cancelling the
awaiting task cancels its scope: the calls in it are cancelled (a blocked stream read or unary wait
returns at once with CANCELLED), and a call started later in that scope is cancelled as it starts.
The sync code then ends by itself within its longest sleep (a retry's backoff, at most 3 s; a
stream's reconnect pause, 0.5 s), and the task waits for that before it ends, so no thread is left
working for a task that is gone.

Unary calls go through their future (``future().result()``) rather than gRPC's blocking call,
which nothing can interrupt: the thread waits on the future, and cancelling the future wakes it.

Rejected: ``asyncio.to_thread`` (the loop's shared default executor: a notebook or service doing
file I/O there would queue behind long waits) and abandoning the thread on cancellation (it would
hold a stream open, and a thread, until the run ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import Any, TypeVar

import grpc

THREAD_NAME_PREFIX = "seedbed-aio"

R = TypeVar("R")
Y = TypeVar("Y")

_END = object()


class CallScope:
    """The gRPC calls one awaited call started; ``cancel()`` cancels them and any to come."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._calls: set[Any] = set()
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def join(self, call: Any) -> None:
        """Track a call (a gRPC Future or Call); cancel it at once if the scope was cancelled."""
        with self._lock:
            if not self._cancelled:
                self._calls.add(call)
                return
        call.cancel()

    def leave(self, call: Any) -> None:
        with self._lock:
            self._calls.discard(call)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            calls, self._calls = self._calls, set()
        for call in calls:
            call.cancel()

    def context(self) -> contextvars.Context:
        """A copy of the current context in which this scope is the current one."""
        context = contextvars.copy_context()
        context.run(_SCOPE.set, self)
        return context


_SCOPE: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("seedbed_aio_scope", default=None)


class CancelledCall(grpc.RpcError):  # type: ignore[misc]
    """What a unary call cancelled through its scope raises: an RpcError with status CANCELLED, as
    a cancelled stream's read raises, so the sync client turns both into ClientError(CANCELLED)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.CANCELLED

    def details(self) -> str:
        return "cancelled: the task awaiting this call was cancelled, or its client was closed"

    def trailing_metadata(self) -> None:
        return None


def _joined(call: Any) -> Any:
    """A call that runs on (a stream, or a future handed back): in the scope until it is done."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.join(call)
        call.add_done_callback(lambda _: scope.leave(call))
    return call


def _result(future: Any) -> tuple[Any, Any]:
    """Wait for a unary call's future in the current scope: (response, call), as ``with_call``."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.join(future)
    try:
        return future.result(), future
    except grpc.FutureCancelledError:
        raise CancelledCall() from None
    finally:
        if scope is not None:
            scope.leave(future)


class _UnaryUnary(grpc.UnaryUnaryMultiCallable):  # type: ignore[misc]
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, request: Any, **options: Any) -> Any:
        return self.with_call(request, **options)[0]

    def with_call(self, request: Any, **options: Any) -> tuple[Any, Any]:
        return _result(self._inner.future(request, **options))

    def future(self, request: Any, **options: Any) -> Any:
        return _joined(self._inner.future(request, **options))


class _StreamUnary(grpc.StreamUnaryMultiCallable):  # type: ignore[misc]
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, request_iterator: Any, **options: Any) -> Any:
        return self.with_call(request_iterator, **options)[0]

    def with_call(self, request_iterator: Any, **options: Any) -> tuple[Any, Any]:
        return _result(self._inner.future(request_iterator, **options))

    def future(self, request_iterator: Any, **options: Any) -> Any:
        return _joined(self._inner.future(request_iterator, **options))


class _UnaryStream(grpc.UnaryStreamMultiCallable):  # type: ignore[misc]
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, request: Any, **options: Any) -> Any:
        return _joined(self._inner(request, **options))


class _StreamStream(grpc.StreamStreamMultiCallable):  # type: ignore[misc]
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, request_iterator: Any, **options: Any) -> Any:
        return _joined(self._inner(request_iterator, **options))


class ScopedChannel(grpc.Channel):  # type: ignore[misc]
    """A channel whose calls join the current ``CallScope`` (none: they run as on ``inner``)."""

    def __init__(self, inner: grpc.Channel) -> None:
        self._inner = inner

    def subscribe(self, callback: Callable[[Any], None], try_to_connect: bool = False) -> None:
        self._inner.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[[Any], None]) -> None:
        self._inner.unsubscribe(callback)

    # The method factories take gRPC's arguments positionally, as grpc.intercept_channel passes them.
    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _UnaryUnary:
        return _UnaryUnary(self._inner.unary_unary(method, *args, **kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _UnaryStream:
        return _UnaryStream(self._inner.unary_stream(method, *args, **kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _StreamUnary:
        return _StreamUnary(self._inner.stream_unary(method, *args, **kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _StreamStream:
        return _StreamStream(self._inner.stream_stream(method, *args, **kwargs))

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> ScopedChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Runner:
    """The threads one AsyncClient runs its sync client in, and the scopes of what runs there.

    At most ``max_threads`` sync calls run at once; more wait for a thread (a wait occupies one for
    its whole length: ``wait_for_runs`` waits for many on one)."""

    def __init__(self, max_threads: int) -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self._executor = ThreadPoolExecutor(max_threads, thread_name_prefix=THREAD_NAME_PREFIX)
        self._scopes: set[CallScope] = set()
        self._closed = False

    @property
    def busy(self) -> int:
        """How many awaited calls and open streams have work in flight or pending."""
        return len(self._scopes)

    def _open(self) -> CallScope:
        if self._closed:
            raise RuntimeError("this AsyncClient is closed: open a new one")
        scope = CallScope()
        self._scopes.add(scope)
        return scope

    async def call(self, function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """``function(*args, **kwargs)`` in a thread of this runner, in a scope of its own."""
        scope = self._open()
        try:
            return await self._in_thread(scope, scope.context(), function, *args, **kwargs)
        finally:
            self._scopes.discard(scope)

    async def _in_thread(
        self,
        scope: CallScope,
        context: contextvars.Context,
        function: Callable[..., R],
        *args: Any,
        **kwargs: Any,
    ) -> R:
        future = self._executor.submit(context.run, function, *args, **kwargs)
        waiter = asyncio.wrap_future(future)
        try:
            # Shielded: a cancellation reaches this task, not the thread's outcome, which is still
            # awaited below until the thread let go.
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not future.cancel():  # already running: stop its calls, wait for it to return
                scope.cancel()
                with contextlib.suppress(Exception):  # the outcome of a cancelled call: unwanted
                    await waiter
            raise

    async def stream(
        self, function: Callable[..., Iterator[Y]], *args: Any, **kwargs: Any
    ) -> AsyncGenerator[Y, None]:
        """The items of ``function(*args, **kwargs)``, each fetched in a thread when asked for (the
        consumer's pace is the stream's: nothing is read ahead). Leaving early or being cancelled
        cancels the stream's calls."""
        scope = self._open()
        context = scope.context()
        idle = False  # True while suspended at a yield: no thread runs the iterator, it may be closed
        iterator: Iterator[Y] | None = None
        try:
            iterator = await self._in_thread(scope, context, lambda: iter(function(*args, **kwargs)))
            while True:
                item = await self._in_thread(scope, context, next, iterator, _END)
                idle = True
                if item is _END:
                    return
                yield item
                idle = False
        finally:
            scope.cancel()
            self._scopes.discard(scope)
            close = getattr(iterator, "close", None)
            if idle and close is not None:
                context.run(close)  # its finally blocks run; any call they start is cancelled

    async def aclose(self) -> None:
        """Cancel what runs, drop what waits for a thread, and wait until every thread ended."""
        if self._closed:
            return
        self._closed = True
        for scope in list(self._scopes):
            scope.cancel()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
