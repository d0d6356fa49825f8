"""When a failed attempt is followed by another: the retry policy, a validated value object.

A scenario carries one policy (in its settings, copied into each run). The supervisor asks it two
questions after an attempt fails: ``should_retry`` (is the failure of a kind the policy retries, and
is an attempt left?) and ``backoff`` (how long to wait before the next one). Attempt n+1 starts
``min(initial_backoff * backoff_coefficient ** (n - 1), maximum_backoff)`` after attempt n ended,
spread by ±``jitter`` of itself and never beyond ``maximum_backoff``.

NONDETERMINISTIC failures are never retried, whatever the policy says: a replay of such a script
would write different data than the attempts before it, so another attempt cannot converge.

Rejected: retry settings as loose keyword arguments of the supervisor (nothing validates them
together), and a per-run override (a run is a snapshot of its scenario; change the scenario).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.model import FailureReason

MAX_ATTEMPTS = 20
MAX_BACKOFF = timedelta(hours=1)
MAX_COEFFICIENT = 10.0
DEFAULT_RETRY_ON = frozenset({FailureReason.INFRASTRUCTURE, FailureReason.KILLED})
NEVER_RETRIED = frozenset({FailureReason.NONDETERMINISTIC})


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts in all (the first included), how far apart, and which failures start another."""

    maximum_attempts: int = 3
    initial_backoff: timedelta = timedelta(seconds=1)
    maximum_backoff: timedelta = timedelta(seconds=60)
    backoff_coefficient: float = 2.0
    jitter: float = 0.2
    retry_on: frozenset[FailureReason] = field(default=DEFAULT_RETRY_ON)
    # Retry nothing, whatever the other fields say; kept apart so that it round-trips.
    disabled: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.maximum_attempts <= MAX_ATTEMPTS:
            raise InvalidArgumentError(
                "retry_policy.maximum_attempts",
                f"{self.maximum_attempts} is outside 1..{MAX_ATTEMPTS} (attempts in all, the first "
                "included; 1 disables retries)",
            )
        for name, value in (
            ("initial_backoff", self.initial_backoff),
            ("maximum_backoff", self.maximum_backoff),
        ):
            if not timedelta(0) < value <= MAX_BACKOFF:
                raise InvalidArgumentError(
                    f"retry_policy.{name}_seconds",
                    f"{value.total_seconds():g} is outside the allowed range: more than 0 and at most "
                    f"{MAX_BACKOFF.total_seconds():g} seconds",
                )
        if self.initial_backoff > self.maximum_backoff:
            raise InvalidArgumentError(
                "retry_policy.initial_backoff_seconds",
                f"{self.initial_backoff.total_seconds():g} exceeds maximum_backoff_seconds "
                f"({self.maximum_backoff.total_seconds():g}): the initial backoff must not be longer",
            )
        if not 1.0 <= self.backoff_coefficient <= MAX_COEFFICIENT:
            raise InvalidArgumentError(
                "retry_policy.backoff_coefficient",
                f"{self.backoff_coefficient:g} is outside 1..{MAX_COEFFICIENT:g}",
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise InvalidArgumentError("retry_policy.jitter", f"{self.jitter:g} is outside 0..1")
        if forbidden := self.retry_on & NEVER_RETRIED:
            names = ", ".join(sorted(r.value for r in forbidden))
            raise InvalidArgumentError(
                "retry_policy.retry_on",
                f"{names} can never be retried: a replay would write different data than the "
                "attempt before it; remove it from retry_on",
            )

    @property
    def attempts_allowed(self) -> int:
        return 1 if self.disabled else self.maximum_attempts

    def should_retry(self, attempt_number: int, reason: FailureReason | None) -> bool:
        """Whether attempt ``attempt_number`` (from 1), failed for ``reason``, is followed by another."""
        if reason is None or reason in NEVER_RETRIED or reason not in self.retry_on:
            return False
        return attempt_number < self.attempts_allowed

    def backoff(self, attempt_number: int, rng: random.Random) -> timedelta:
        """The wait between the end of attempt ``attempt_number`` and the start of the next one."""
        cap = self.maximum_backoff.total_seconds()
        exponent = max(attempt_number - 1, 0)
        try:
            base = min(self.initial_backoff.total_seconds() * self.backoff_coefficient**exponent, cap)
        except OverflowError:
            base = cap
        spread = base * self.jitter * rng.uniform(-1.0, 1.0)
        return timedelta(seconds=min(max(base + spread, 0.0), cap))

    def describe(self) -> str:
        if self.attempts_allowed == 1:
            return "retry policy: retries disabled"
        return f"retry policy: up to {self.attempts_allowed} attempts"

    # -- storage -----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "maximum_attempts": self.maximum_attempts,
            "initial_backoff_seconds": self.initial_backoff.total_seconds(),
            "maximum_backoff_seconds": self.maximum_backoff.total_seconds(),
            "backoff_coefficient": self.backoff_coefficient,
            "jitter": self.jitter,
            "retry_on": sorted(r.value for r in self.retry_on),
            "disabled": self.disabled,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RetryPolicy:
        """The stored form back; missing keys (settings saved before retries existed) are defaults."""
        if not data:
            return cls()
        default = cls()
        retry_on: Iterable[str] | None = data.get("retry_on")
        return cls(
            maximum_attempts=int(data.get("maximum_attempts", default.maximum_attempts)),
            initial_backoff=_seconds(data.get("initial_backoff_seconds"), default.initial_backoff),
            maximum_backoff=_seconds(data.get("maximum_backoff_seconds"), default.maximum_backoff),
            backoff_coefficient=float(data.get("backoff_coefficient", default.backoff_coefficient)),
            jitter=float(data.get("jitter", default.jitter)),
            retry_on=default.retry_on if retry_on is None else frozenset(FailureReason(r) for r in retry_on),
            disabled=bool(data.get("disabled", False)),
        )


def _seconds(value: Any, default: timedelta) -> timedelta:
    return default if value is None else timedelta(seconds=float(value))
