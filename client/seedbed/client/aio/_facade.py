"""Facades: an async face over one object of the sync client, generic over its members.

A facade serves each public member of the object it wraps by the member's kind:

- a method: awaitable, run in a thread of the client (``Threaded``);
- a generator method (``stream_logs``): an async iterator fed from a thread (``Streamed``);
- a method that only computes (``to_dict``, the settings' ``add_*`` helpers): called as it is
  (``Local``); only a declaration says so, as nothing else tells such a method from one that calls
  the coordinator;
- a property or plain attribute: read (and, when settable, written) as it is, no await
  (``Attribute``, ``Editable``): the sync objects' properties read their last fetched state.

What a member returns is wrapped in turn: a sync object whose class has a facade (a Scenario, a
run, a list of runs…) comes back as that facade, the same facade each time for the same object
(``await run.refresh() is run``), values (messages, dataclasses, str) as they are. Arguments are
unwrapped (a facade becomes its object), and a callable argument (``wait_for_runs``'s
``on_update``) is called on the event loop, with facades, rather than in the thread.

The facade classes declare their members with the descriptors below, each built from the sync
member itself (``refresh = threaded(ScenarioRun.refresh)``): the parameters are the sync method's
own (a ``ParamSpec``), so declarations cannot drift from the method they serve. A member the class
does not declare (one added to the sync object since) is served all the same by ``__getattr__``,
by the kind read from the sync class, and typed ``Any``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, Never, ParamSpec, TypeVar, overload

from seedbed.client.aio._threads import Runner

T = TypeVar("T")
R = TypeVar("R")
Y = TypeVar("Y")
P = ParamSpec("P")

THREADED, STREAMED, LOCAL, ATTRIBUTE = "threaded", "streamed", "local", "attribute"
_MISSING = object()


def kind_of(cls: type, name: str) -> str:
    """How a facade serves member ``name`` of ``cls`` when no declaration says."""
    member = inspect.getattr_static(cls, name, _MISSING)
    if member is _MISSING or isinstance(member, property) or not callable(member):
        return ATTRIBUTE
    if isinstance(member, (staticmethod, classmethod)):
        return LOCAL
    if inspect.isgeneratorfunction(member):
        return STREAMED
    return THREADED


class Bridge:
    """What the facades of one AsyncClient share: its runner, and the facades made so far (so the
    same sync object always has the same facade)."""

    faces: ClassVar[dict[type, type[Facade[Any]]]] = {}

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._made: weakref.WeakValueDictionary[int, Facade[Any]] = weakref.WeakValueDictionary()

    def wrap(self, value: Any) -> Any:
        """``value`` with every sync object that has a facade replaced by its facade."""
        face_class = next((self.faces[c] for c in type(value).__mro__ if c in self.faces), None)
        if face_class is not None:
            # The facade holds its object, so the object's id is not reused while the entry lives.
            face = self._made.get(id(value))
            if face is None or face._target is not value:
                face = face_class(value, self)
                self._made[id(value)] = face
            return face
        if type(value) in (list, tuple):
            return _mapped(value, self.wrap)
        return value

    def unwrap(self, value: Any, loop: asyncio.AbstractEventLoop | None) -> Any:
        """``value`` with facades replaced by their objects; with ``loop``, a callable becomes one
        that runs on that loop (and gets facades), for the thread to call."""
        if isinstance(value, Facade):
            return value._target
        if type(value) in (list, tuple):
            return _mapped(value, lambda item: self.unwrap(item, loop))
        if loop is not None and callable(value) and not isinstance(value, type):
            return self._on_loop(loop, value)
        return value

    def _on_loop(self, loop: asyncio.AbstractEventLoop, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` for a thread to call: it runs on ``loop``, its arguments wrapped, and the
        thread waits for its result (awaited first, when it is awaitable)."""

        def on_loop(*args: Any, **kwargs: Any) -> Any:
            done: concurrent.futures.Future[Any] = concurrent.futures.Future()

            def run() -> None:
                try:
                    result = function(*map(self.wrap, args), **{k: self.wrap(v) for k, v in kwargs.items()})
                    if not inspect.isawaitable(result):
                        done.set_result(result)
                        return
                    task = asyncio.ensure_future(result)
                except BaseException as exc:  # handed to the thread, which raises it
                    done.set_exception(exc)
                    return
                task.add_done_callback(lambda t: _settle(done, t))

            loop.call_soon_threadsafe(run)
            return done.result()

        return on_loop


def _mapped(items: list[Any] | tuple[Any, ...], function: Callable[[Any], Any]) -> Any:
    """``items`` mapped by ``function``; the very same list when nothing changed (a list handed out
    to be edited in place, as ``settings.raw_reporters``, stays that list)."""
    mapped = [function(item) for item in items]
    if all(new is old for new, old in zip(mapped, items, strict=True)):
        return items
    return mapped if type(items) is list else tuple(mapped)


def _settle(done: concurrent.futures.Future[Any], task: asyncio.Future[Any]) -> None:
    if task.cancelled():
        done.cancel()
    elif (error := task.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(task.result())


class Facade(Generic[T]):
    """The async face of one sync object (``T``); see the module's docstring."""

    def __init_subclass__(cls, wraps: type | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if wraps is not None:
            Bridge.faces[wraps] = cls

    def __init__(self, target: T, bridge: Bridge) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_bridge", bridge)

    _target: T
    _bridge: Bridge

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target!r})"

    def __dir__(self) -> list[str]:
        public = {name for name in dir(self._target) if not name.startswith("_")}
        return sorted(set(super().__dir__()) | public)

    def __getattr__(self, name: str) -> Any:
        # Only for members no declaration serves (see the module's docstring).
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self._member(kind_of(type(self._target), name), name)

    if not TYPE_CHECKING:  # to the type checker, only declared members (Editable) can be set

        def __setattr__(self, name: str, value: Any) -> None:
            if name.startswith("_"):
                object.__setattr__(self, name, value)
            else:
                setattr(self._target, name, self._bridge.unwrap(value, None))

    def _member(self, kind: str, name: str) -> Any:
        if kind == ATTRIBUTE:
            return self._bridge.wrap(getattr(self._target, name))
        method = getattr(self._target, name)
        if kind == LOCAL:
            return self._local(method)
        if kind == STREAMED:
            return self._streamed(method)
        return self._threaded(method)

    def _threaded(self, method: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
        bridge = self._bridge

        @functools.wraps(method)
        async def threaded(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            args = bridge.unwrap(args, loop)
            kwargs = {key: bridge.unwrap(value, loop) for key, value in kwargs.items()}
            return bridge.wrap(await bridge.runner.call(method, *args, **kwargs))

        return threaded

    def _streamed(self, method: Callable[..., Iterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        bridge = self._bridge

        @functools.wraps(method)
        async def streamed(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            args = bridge.unwrap(args, None)
            kwargs = {key: bridge.unwrap(value, None) for key, value in kwargs.items()}
            async with contextlib.aclosing(bridge.runner.stream(method, *args, **kwargs)) as items:
                async for item in items:
                    yield bridge.wrap(item)

        return streamed

    def _local(self, method: Callable[..., Any]) -> Callable[..., Any]:
        bridge = self._bridge

        @functools.wraps(method)
        def local(*args: Any, **kwargs: Any) -> Any:
            args = bridge.unwrap(args, None)
            kwargs = {key: bridge.unwrap(value, None) for key, value in kwargs.items()}
            return bridge.wrap(method(*args, **kwargs))

        return local

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Member ``name`` run as THREADED: for the facade methods written out by hand."""
        return await self._threaded(getattr(self._target, name))(*args, **kwargs)


class Member:
    """A declared member of a facade class: ``kind``, and the sync member it serves (``source``)."""

    kind: ClassVar[str]

    def __init__(self, source: object) -> None:
        self.source = source
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _get(self, face: Facade[Any]) -> Any:
        return face._member(self.kind, self.name)


class Threaded(Member, Generic[P, R]):
    kind = THREADED

    def __init__(self, source: object, face: type[Facade[Any]] | None = None) -> None:
        super().__init__(source)
        self.face = face  # the facade it returns, when the declaration names it

    @overload
    def __get__(self, face: None, owner: type) -> Threaded[P, R]: ...
    @overload
    def __get__(self, face: Facade[Any], owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, face: Facade[Any] | None, owner: type) -> Any:
        return self if face is None else self._get(face)


class Streamed(Member, Generic[P, Y]):
    kind = STREAMED

    @overload
    def __get__(self, face: None, owner: type) -> Streamed[P, Y]: ...
    @overload
    def __get__(self, face: Facade[Any], owner: type) -> Callable[P, AsyncIterator[Y]]: ...
    def __get__(self, face: Facade[Any] | None, owner: type) -> Any:
        return self if face is None else self._get(face)


class Local(Member, Generic[P, R]):
    kind = LOCAL

    @overload
    def __get__(self, face: None, owner: type) -> Local[P, R]: ...
    @overload
    def __get__(self, face: Facade[Any], owner: type) -> Callable[P, R]: ...
    def __get__(self, face: Facade[Any] | None, owner: type) -> Any:
        return self if face is None else self._get(face)


class Attribute(Member, Generic[R]):
    kind = ATTRIBUTE

    @overload
    def __get__(self, face: None, owner: type) -> Attribute[R]: ...
    @overload
    def __get__(self, face: Facade[Any], owner: type) -> R: ...
    def __get__(self, face: Facade[Any] | None, owner: type) -> Any:
        return self if face is None else self._get(face)

    def __set__(self, face: Facade[Any], value: Never) -> None:
        raise AttributeError(f"{self.name} is read-only")


class Editable(Attribute[R]):
    def __set__(self, face: Facade[Any], value: R) -> None:
        setattr(face._target, self.name, face._bridge.unwrap(value, None))


def streamed(method: Callable[Concatenate[Any, P], Iterator[Y]]) -> Streamed[P, Y]:
    """Declare a generator method: an async iterator over its items."""
    return Streamed(method)


# The second signature serves a method taking **kwargs, whose "self" a ParamSpec cannot take apart
# (mypy matches the first, then refuses the argument): such a method's parameters go unchecked.
@overload
def local(method: Callable[Concatenate[Any, P], R]) -> Local[P, R]: ...
@overload
def local(method: Callable[..., R]) -> Local[..., R]: ...  # type: ignore[overload-cannot-match]
def local(method: Callable[..., R]) -> Local[Any, R]:
    """Declare a method that only computes: called as it is, in the caller's thread."""
    return Local(method)


def attribute(getter: Callable[[Any], R]) -> Attribute[R]:
    """Declare a property (``attribute(ScenarioRun.outcome)``): read as it is."""
    return Attribute(getter)


def editable(getter: Callable[[Any], R]) -> Editable[R]:
    """Declare a settable property (``editable(ScenarioSettings.active)``)."""
    return Editable(getter)
