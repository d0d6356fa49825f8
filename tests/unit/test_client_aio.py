"""The async client's own logic: facades over fake sync objects (kinds, wrapping, callbacks,
streams, errors), the scoped channel over a fake channel, the declarations pinned against the
sync objects, and cancellation of a real wait against a coordinator on the fake executor."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest

import seedbed.client.aio
from seedbed.client import Client, ClientError
from seedbed.client.aio import AsyncClient, AsyncScenario, AsyncScenarioRun, AsyncScenarioSettings
from seedbed.client.aio._client import _ScopedClient
from seedbed.client.aio._facade import (
    ATTRIBUTE,
    LOCAL,
    STREAMED,
    THREADED,
    Bridge,
    Editable,
    Facade,
    Member,
    Threaded,
    attribute,
    editable,
    kind_of,
    local,
    streamed,
)
from seedbed.client.aio._objects import threaded
from seedbed.client.aio._threads import THREAD_NAME_PREFIX, CallScope, Runner, ScopedChannel

# -- facades over fake sync objects -----------------------------------------------------------------


class FakeJob:
    """A sync object with a member of every kind; it records the thread each method ran in."""

    def __init__(self, name: str, children: int = 0) -> None:
        self._name = name
        self._size = 1
        self.threads: list[str] = []
        self.kids = [FakeJob(f"{name}.{i}") for i in range(children)]
        self.closed = False
        self.produced = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return self._size

    @size.setter
    def size(self, value: int) -> None:
        self._size = value

    def _seen(self) -> None:
        self.threads.append(threading.current_thread().name)

    def refresh(self) -> FakeJob:
        self._seen()
        return self

    def describe(self, prefix: str = "") -> str:
        self._seen()
        return f"{prefix}{self._name}"

    def lines(self, count: int) -> Iterator[str]:
        try:
            for number in range(count):
                self._seen()
                self.produced = number + 1
                yield f"line {number}"
        finally:
            self.closed = True

    # Not declared on the facade: served by __getattr__, by their kind.
    def children(self) -> list[FakeJob]:
        self._seen()
        return self.kids

    def first_child(self) -> FakeJob | None:
        return self.kids[0] if self.kids else None

    def numbers(self) -> Iterator[int]:
        yield from (1, 2, 3)

    @property
    def kind(self) -> str:
        return "fake"

    def fail(self) -> None:
        raise ClientError(grpc.StatusCode.NOT_FOUND, f"no job {self._name}")

    def adopt(self, other: FakeJob) -> str:
        assert isinstance(other, FakeJob), "the facade was not unwrapped"
        return other.name

    def report(self, on_update: Callable[[FakeJob], Any]) -> list[Any]:
        """Call ``on_update`` from the thread, as Client.wait_for_runs does, and keep what it returns."""
        self._seen()
        return [on_update(job) for job in (self, *self.kids)]

    def wait_for(self, event: threading.Event) -> str:
        self._seen()
        event.wait(10)
        return "waited"


class AsyncFakeJob(Facade[FakeJob], wraps=FakeJob):
    name = attribute(FakeJob.name)
    size = editable(FakeJob.size)
    refresh = threaded(FakeJob.refresh)
    describe = local(FakeJob.describe)
    lines = streamed(FakeJob.lines)


@pytest.fixture
async def bridge() -> AsyncIterator[Bridge]:
    runner = Runner(4)
    yield Bridge(runner)
    await runner.aclose()


def _face(bridge: Bridge, job: FakeJob) -> Any:
    face = bridge.wrap(job)
    assert isinstance(face, AsyncFakeJob)
    return face


async def test_methods_run_in_the_clients_threads_and_attributes_are_read_as_they_are(bridge: Bridge) -> None:
    job = FakeJob("a")
    face = _face(bridge, job)
    assert face.name == "a" and face.kind == "fake"  # no await: properties, declared or not
    refreshed = face.refresh()
    assert inspect.isawaitable(refreshed)
    assert await refreshed is face  # a method returning its object returns the facade itself
    assert face.describe(prefix="job ") == "job a"  # local: called as it is, in this thread
    assert job.threads[0].startswith(THREAD_NAME_PREFIX)
    assert job.threads[1] == threading.current_thread().name
    assert inspect.signature(face.refresh) == inspect.signature(job.refresh)
    assert face.refresh.__doc__ == job.refresh.__doc__


async def test_what_comes_back_is_wrapped_once_per_object(bridge: Bridge) -> None:
    job = FakeJob("a", children=2)
    face = _face(bridge, job)
    children = await face.children()
    assert [type(c) for c in children] == [AsyncFakeJob, AsyncFakeJob]
    assert [c.name for c in children] == ["a.0", "a.1"]
    assert await face.children() == children and (await face.children())[0] is children[0]
    assert await face.first_child() is children[0]
    assert bridge.wrap(job) is face
    assert await _face(bridge, FakeJob("lonely")).first_child() is None
    assert repr(face) == f"AsyncFakeJob({job!r})"


async def test_members_not_declared_are_served_by_their_kind(bridge: Bridge) -> None:
    face = _face(bridge, FakeJob("a"))
    assert [kind_of(FakeJob, n) for n in ("children", "numbers", "kind", "threads")] == [
        THREADED,
        STREAMED,
        ATTRIBUTE,
        ATTRIBUTE,
    ]
    assert [n async for n in face.numbers()] == [1, 2, 3]
    assert face.threads == [] and face.threads is face._target.threads  # the object's own list
    assert "children" in dir(face) and "refresh" in dir(face)
    with pytest.raises(AttributeError):
        face._name  # noqa: B018 - private members are not served
    with pytest.raises(AttributeError):
        face.missing  # noqa: B018


async def test_errors_are_the_sync_objects_own(bridge: Bridge) -> None:
    face = _face(bridge, FakeJob("a"))
    with pytest.raises(ClientError) as info:
        await face.fail()
    assert info.value.code == grpc.StatusCode.NOT_FOUND and "no job a" in str(info.value)


async def test_attributes_set_as_they_are_unless_read_only(bridge: Bridge) -> None:
    job = FakeJob("a")
    face = _face(bridge, job)
    face.size = 5
    assert job.size == 5 and face.size == 5
    with pytest.raises(AttributeError):
        face.name = "b"
    assert isinstance(AsyncFakeJob.size, Editable)


async def test_arguments_are_unwrapped_and_callbacks_run_on_the_loop(bridge: Bridge) -> None:
    job = FakeJob("a", children=1)
    face = _face(bridge, job)
    assert await face.adopt(_face(bridge, FakeJob("b"))) == "b"
    loop_thread = threading.current_thread().name
    seen: list[tuple[str, Any]] = []

    def on_update(update: Any) -> str:
        seen.append((threading.current_thread().name, update))
        return f"saw {update.name}"

    assert await face.report(on_update) == ["saw a", "saw a.0"]
    assert seen == [(loop_thread, face), (loop_thread, bridge.wrap(job.kids[0]))]

    async def on_update_later(update: Any) -> str:
        await asyncio.sleep(0)
        return update.name

    assert await face.report(on_update_later) == ["a", "a.0"]  # awaited on the loop first


async def test_streams_are_fed_from_a_thread_at_the_consumers_pace(bridge: Bridge) -> None:
    job = FakeJob("a")
    face = _face(bridge, job)
    stream = face.lines(5)
    assert job.produced == 0  # nothing runs before the first item is asked for
    assert await anext(stream) == "line 0"
    await asyncio.sleep(0.05)
    assert job.produced == 1  # nothing read ahead
    assert [line async for line in stream] == [f"line {n}" for n in range(1, 5)]
    assert job.closed and all(name.startswith(THREAD_NAME_PREFIX) for name in job.threads)

    early = FakeJob("b")
    stream = _face(bridge, early).lines(100)
    async for _ in stream:
        break
    await stream.aclose()
    assert early.closed and early.produced == 1
    assert bridge.runner.busy == 0


async def test_a_call_waiting_for_a_thread_never_runs_once_cancelled() -> None:
    runner = Runner(1)
    bridge = Bridge(runner)
    busy, queued = FakeJob("busy"), FakeJob("queued")
    release = threading.Event()
    first = asyncio.ensure_future(_face(bridge, busy).wait_for(release))
    await _until(lambda: busy.threads)
    second = asyncio.ensure_future(_face(bridge, queued).wait_for(release))
    await asyncio.sleep(0.05)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    release.set()
    assert await first == "waited"
    assert queued.threads == [] and runner.busy == 0
    await runner.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await _face(bridge, busy).refresh()


async def _until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
    return value


# -- the scoped channel over a fake channel ----------------------------------------------------------


class FakeCall:
    """A call that ends when told to, or when cancelled (as a gRPC Future and Call)."""

    def __init__(self) -> None:
        self.cancelled = False
        self._done = threading.Event()
        self._callbacks: list[Callable[[Any], None]] = []

    def cancel(self) -> bool:
        self.cancelled = True
        self.finish()
        return True

    def finish(self) -> None:
        self._done.set()
        for callback in self._callbacks:
            callback(self)

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self._done.is_set():
            callback(self)
        else:
            self._callbacks.append(callback)

    def result(self) -> str:
        self._done.wait(10)
        if self.cancelled:
            raise grpc.FutureCancelledError()
        return "response"


class FakeChannel:
    def __init__(self) -> None:
        self.calls: list[FakeCall] = []

    def _call(self, *_: Any, **__: Any) -> FakeCall:
        call = FakeCall()
        self.calls.append(call)
        return call

    def unary_unary(self, *_: Any) -> Any:
        return type("Unary", (), {"future": lambda _self, *a, **k: self._call()})()

    def unary_stream(self, *_: Any) -> Any:
        return type("Stream", (), {"__call__": lambda _self, *a, **k: self._call()})()


def _in_scope(scope: CallScope, function: Callable[[], Any]) -> Any:
    return scope.context().run(function)


def test_a_scope_cancels_its_calls_and_any_it_starts_later() -> None:
    inner = FakeChannel()
    channel = ScopedChannel(inner)  # type: ignore[arg-type]
    unary, stream = channel.unary_unary("/x.Y/Unary"), channel.unary_stream("/x.Y/Stream")
    scope = CallScope()
    outcome: list[Any] = []

    def blocked() -> None:
        try:
            unary("request", timeout=5)
        except grpc.RpcError as exc:
            outcome.append(exc.code())

    thread = threading.Thread(target=_in_scope, args=(scope, blocked))
    thread.start()
    opened = _in_scope(scope, lambda: stream("request"))
    deadline = time.monotonic() + 5
    while len(inner.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    scope.cancel()
    thread.join(5)
    assert not thread.is_alive() and outcome == [grpc.StatusCode.CANCELLED]
    assert opened.cancelled and all(call.cancelled for call in inner.calls)
    late = _in_scope(scope, lambda: stream("request"))
    assert late.cancelled  # started after the scope was cancelled: cancelled as it starts

    # Outside any scope, or in another one, calls are left alone.
    _finish_next(inner)
    assert unary("request") == "response"
    other = CallScope()
    running = _in_scope(other, lambda: stream("request"))
    assert not running.cancelled
    running.finish()
    assert other._calls == set()  # a finished call leaves its scope


def _finish_next(inner: FakeChannel) -> None:
    """Finish the next call the fake channel makes, as soon as it is made."""
    count = len(inner.calls)

    def finish() -> None:
        while len(inner.calls) == count:
            time.sleep(0.001)
        inner.calls[-1].finish()

    threading.Thread(target=finish).start()


# -- the declarations, pinned against the sync objects ------------------------------------------------


def _faces() -> list[tuple[type, type]]:
    pairs = [(sync, face) for sync, face in Bridge.faces.items() if face.__module__.startswith("seedbed.")]
    return [*pairs, (Client, AsyncClient)]


_CLOSING = ("aclose", "close", "__aenter__", "__aexit__")  # AsyncClient's own coroutines


def test_every_declaration_serves_the_sync_member_of_its_name_as_its_kind() -> None:
    faces = _faces()
    assert {face.__name__ for _, face in faces} == set(seedbed.client.aio.__all__)
    for sync, face in faces:
        for name, member in vars(face).items():
            where = f"{face.__name__}.{name}"
            if isinstance(member, Member):
                assert member.source is getattr(sync, name), f"{where} declares another member"
                kind = kind_of(sync, name)
                assert member.kind == kind or (member.kind, kind) == (LOCAL, THREADED), where
                if isinstance(member, Editable):
                    assert inspect.getattr_static(sync, name).fset is not None, f"{where} cannot be set"
                if isinstance(member, Threaded) and member.face is not None:  # threaded_as
                    returns = inspect.signature(member.source).return_annotation  # type: ignore[arg-type]
                    assert Bridge.faces[getattr(inspect.getmodule(member.source), returns)] is member.face
            elif inspect.iscoroutinefunction(member) and name not in _CLOSING:
                assert kind_of(sync, name) == THREADED, f"{where} is written out for a non-method"


def test_the_public_surface() -> None:
    assert seedbed.client.aio.__all__ == [
        "AsyncClient",
        "AsyncProject",
        "AsyncRunDetails",
        "AsyncScenario",
        "AsyncScenarioRun",
        "AsyncScenarioSettings",
        "AsyncTriggerFire",
    ]


# -- against a coordinator on the fake executor ----------------------------------------------------


def _aio_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_NAME_PREFIX)]


async def _cancelled(task: asyncio.Task[Any], timeout: float = 2.0) -> float:
    """Cancel the task; how long it took to end (it must end within ``timeout``)."""
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout)
    return time.monotonic() - started


async def test_a_cancelled_wait_ends_at_once_and_leaves_no_call_behind(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, _ = fake_coordinator
    async with AsyncClient(coordinator.address) as client:
        assert isinstance(client._target, _ScopedClient)
        project = await client.get_default_project()
        slow = await project.create_scenario("slow", "Slow", "print started\nsleep 60")
        run = await (await slow.run()).wait_for_scenario_run()
        assert isinstance(run, AsyncScenarioRun)

        waits: list[Callable[[], Awaitable[Any]]] = [
            run.wait_for_completion,
            lambda: client.wait(run.id),
            lambda: client.wait_for_runs([run]),
            lambda: _drain(run.stream_logs()),
        ]
        for wait in waits:
            task = asyncio.ensure_future(wait())
            await _until(lambda: client.busy)
            await asyncio.sleep(0.2)  # the thread is now blocked on its stream
            assert not task.done()
            assert await _cancelled(task) < 2.0
            assert client.busy == 0  # the thread returned: its stream was cancelled

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # a deadline is a cancellation too
                await run.wait_for_completion()
        assert client.busy == 0
        assert (await run.refresh()).state == "RUNNING"  # the run itself went on
        assert await run.abort("enough") is False
        assert (await run.wait_for_completion(no_fail=True)).outcome == "ABORTED"
    assert await _until(lambda: not _aio_threads())


async def _drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def test_closing_the_client_cancels_what_still_waits(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, _ = fake_coordinator
    client = AsyncClient(coordinator.address)
    scenario = await (await client.get_default_project()).create_scenario("slow", "Slow", "sleep 60")
    started = await (await scenario.run()).wait_for_scenario_run()
    assert started is not None
    task = asyncio.ensure_future(started.wait_for_completion())
    await _until(lambda: client.busy)
    await asyncio.sleep(0.2)
    await asyncio.wait_for(client.aclose(), 5)
    with pytest.raises(ClientError) as info:
        await task
    assert info.value.code == grpc.StatusCode.CANCELLED
    with pytest.raises(RuntimeError, match="closed"):
        await started.refresh()
    await client.aclose()  # again: nothing to do
    with Client(coordinator.address) as sync:
        sync.abort(started.id, "done")


async def test_settings_are_changed_as_they_are_and_saved_awaited(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, sync = fake_coordinator
    async with AsyncClient(coordinator.address) as client:
        project = await client.get_default_project()
        scenario = await project.create_scenario("nightly", "Nightly", "print hi")
        settings = await scenario.get_settings()
        assert isinstance(settings, AsyncScenarioSettings)
        settings.active = False
        settings.overlap_policy = "QUEUE_ONE"
        trigger = settings.add_daily_trigger(hour=3, name="at three")  # no await: it only edits
        assert trigger.name == "at three" and not settings.raw.active
        assert await settings.save() is settings
        stored = sync.get_scenario(scenario.id).settings
        assert (stored.active, [t.name for t in stored.triggers]) == (False, ["at three"])

        # Dataiku's raw dicts: the very list the sync settings hand out, edited in place.
        settings = await scenario.get_settings()
        settings.add_email_reporter(["team@example.com"], sender="old@example.com")
        for reporter in settings.raw_reporters:
            reporter["messaging"]["configuration"]["sender"] = "new@example.com"
        settings.raw_reporters.append(
            {"messaging": {"type": "mail-scenario", "configuration": {"recipient": "ops@example.com"}}}
        )
        await settings.save()
        senders = [r.email.sender for r in sync.get_scenario(scenario.id).settings.reporters]
        assert senders == ["new@example.com", ""]
        assert [item.id for item in await project.list_scenarios()] == [scenario.id]
        assert [type(s) for s in await project.list_scenarios("objects")] == [AsyncScenario]


def test_one_client_serves_successive_event_loops(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, _ = fake_coordinator
    client = AsyncClient(coordinator.address)  # made outside any loop, as a notebook's first cell may

    async def project_key() -> str:
        return (await client.get_default_project()).key

    assert asyncio.run(project_key()) == "default"
    assert asyncio.run(project_key()) == "default"
    asyncio.run(client.aclose())
