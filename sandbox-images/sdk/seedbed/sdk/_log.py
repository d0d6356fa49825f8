"""`seedbed.sdk.log`: structured log lines that go to the worker as calls (not as plain output)."""

from __future__ import annotations

from typing import Any

from seedbed.sdk import _context

__all__ = ["Log"]


class Log:
    """`log.info/warning/warn/error(message, **fields)`; each call waits for the worker's reply."""

    def _emit(self, level: str, message: object, fields: dict[str, Any]) -> None:
        _context.call("log", {"level": level, "message": str(message), "fields": fields})

    def info(self, message: object, **fields: Any) -> None:
        self._emit("info", message, fields)

    def warning(self, message: object, **fields: Any) -> None:
        self._emit("warning", message, fields)

    warn = warning

    def error(self, message: object, **fields: Any) -> None:
        self._emit("error", message, fields)

    def __repr__(self) -> str:
        return "<seedbed.sdk.log>"
