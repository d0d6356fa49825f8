"""The run context the runtime binds once, before the script starts: params, ids, the channel."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from seedbed.sdk._channel import Channel
from seedbed.sdk._errors import ChannelClosedError

__all__ = ["Params", "bind", "call", "current"]


class Params(Mapping[str, str]):
    """The run's parameters: a read-only mapping of str to str."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Params({self._data!r})"


class _Context:
    def __init__(self) -> None:
        self.params = Params()
        self.run_id = ""
        self.run_key = ""
        self.attempt = 0
        self.channel: Channel | None = None


current = _Context()


def bind(start: Mapping[str, Any], channel: Channel) -> None:
    """Called by the runtime with the validated start frame."""
    raw = start.get("params") or {}
    current.params._data = {str(k): str(v) for k, v in dict(raw).items()}  # noqa: SLF001
    current.run_id = str(start.get("run_id", ""))
    current.run_key = str(start.get("run_key", ""))
    attempt = start.get("attempt", 0)
    current.attempt = attempt if isinstance(attempt, int) else 0
    current.channel = channel


def call(op: str, args: dict[str, Any]) -> Any:
    """Generic SDK call over the agent channel."""
    if current.channel is None:
        raise ChannelClosedError("seedbed.sdk is not connected to a worker: run this script through Seedbed")
    return current.channel.call(op, args)
