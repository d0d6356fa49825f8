"""Domain values of the coordinator: ids, run states and their terminal set, validation rules.

Imports no heavyweight library: the store, the servicers and the scheduler all speak these types.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import NewType, TypeVar

from seedbed.coordinator.errors import InvalidArgumentError

T = TypeVar("T")
ScenarioId = NewType("ScenarioId", str)


def new_id(prefix: str) -> str:
    """A readable, unguessable id such as ``run_5f0c2a9e1b7d4c3a``."""
    return f"{prefix}_{secrets.token_hex(8)}"


class RunState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    ABORTED = "ABORTED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({RunState.SUCCESS, RunState.WARNING, RunState.FAILED, RunState.ABORTED})
ACTIVE_STATES = frozenset({RunState.QUEUED, RunState.RUNNING})


class FireState(enum.StrEnum):
    PENDING = "PENDING"
    RUN_CREATED = "RUN_CREATED"
    CANCELLED = "CANCELLED"


class FailureReason(enum.StrEnum):
    SCRIPT_ERROR = "SCRIPT_ERROR"
    TIMEOUT = "TIMEOUT"
    OOM = "OOM"
    KILLED = "KILLED"
    INFRASTRUCTURE = "INFRASTRUCTURE"
    # A replayed write differs from what an earlier attempt wrote; never retried.
    NONDETERMINISTIC = "NONDETERMINISTIC"


class OverlapPolicy(enum.StrEnum):
    SKIP = "SKIP"
    ALLOW_CONCURRENT = "ALLOW_CONCURRENT"
    QUEUE_ONE = "QUEUE_ONE"
    QUEUE_ALL = "QUEUE_ALL"
    CANCEL_RUNNING = "CANCEL_RUNNING"


# Letters of either case: ids are matched exactly (case-sensitively), as Dataiku's "MYSCENARIO" is.
_SCENARIO_ID = re.compile(r"^scn_[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
# Sequence numbers and revisions are int64 in the contract and the store: the largest a request may name.
MAX_INT64 = 2**63 - 1
MAX_NAME_CHARS = 200
MAX_PARAMS = 100
MAX_PARAM_VALUE_BYTES = 64 * 1024
MAX_PARAMS_BYTES = 256 * 1024
MAX_IDEMPOTENCY_KEY_CHARS = 255
# Trigger fires carry "trigger:SCENARIO:TRIGGER:TIME": a caller taking one first would block it.
RESERVED_KEY_PREFIX = "trigger:"
GENERATED_RUN_KEY_PREFIX = "rk_"


def normalize_scenario_id(raw: str) -> ScenarioId:
    """Accept ``scn_x`` or ``x``: ASCII letters of either case, digits, ``_`` and ``-``, at most 63
    characters after the prefix.

    Case is kept and lookups are exact: ``MYSCENARIO`` and ``myscenario`` are different ids. The
    store refuses to create an id that differs from an existing one only by case (its unique index on
    the lower-cased id): both would be the same file on a case-insensitive file system (``seedbed
    pull`` names files after ids) and too easily taken for one another by people."""
    ident = raw if raw.startswith("scn_") else f"scn_{raw}"
    if not _SCENARIO_ID.match(ident):
        raise InvalidArgumentError(
            "scenario_id",
            f"{raw!r} is not a valid id: use 1-63 letters, digits, '_' or '-', starting with a letter "
            "or digit (case is kept: MYSCENARIO and myscenario are different ids)",
        )
    return ScenarioId(ident)


def folded_scenario_id(scenario_id: str) -> str:
    """The form two ids that may not coexist share: the id lower-cased (ids are ASCII)."""
    return scenario_id.lower()


def validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgumentError("name", "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgumentError("name", f"is {len(name)} characters; the limit is {MAX_NAME_CHARS}")
    return name


def validate_script(script: str, max_bytes: int) -> str:
    if not script.strip():
        raise InvalidArgumentError("script", "must not be empty")
    size = len(script.encode())
    if size > max_bytes:
        raise InvalidArgumentError(
            "script",
            f"is {size} bytes; the limit is {max_bytes} bytes (SEEDBED_MAX_SCRIPT_BYTES): move data into "
            "workspace files or templates",
        )
    if "\x00" in script:
        raise InvalidArgumentError("script", "contains a NUL character")
    return script


def validate_params(params: Mapping[str, str]) -> dict[str, str]:
    if len(params) > MAX_PARAMS:
        raise InvalidArgumentError("params", f"has {len(params)} entries; the limit is {MAX_PARAMS}")
    total = 0
    for key, value in params.items():
        if not _PARAM_KEY.match(key):
            raise InvalidArgumentError(
                f"params[{key[:40]!r}]",
                "keys are 1-128 characters: letters, digits, '_', '.', '-', not starting with a digit",
            )
        size = len(value.encode())
        if size > MAX_PARAM_VALUE_BYTES:
            raise InvalidArgumentError(
                f"params[{key!r}]", f"is {size} bytes; the limit is {MAX_PARAM_VALUE_BYTES} bytes"
            )
        total += size + len(key)
    if total > MAX_PARAMS_BYTES:
        raise InvalidArgumentError("params", f"total {total} bytes; the limit is {MAX_PARAMS_BYTES} bytes")
    return dict(params)


def validate_idempotency_key(key: str) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgumentError(
            "idempotency_key", f"is {len(key)} characters; the limit is {MAX_IDEMPOTENCY_KEY_CHARS}"
        )
    if key and not key.isprintable():
        raise InvalidArgumentError("idempotency_key", "must be printable text")
    if key.startswith(RESERVED_KEY_PREFIX):
        raise InvalidArgumentError(
            "idempotency_key",
            f"keys starting with {RESERVED_KEY_PREFIX!r} are reserved for trigger fires: choose another",
        )
    if key.startswith(GENERATED_RUN_KEY_PREFIX):
        # A fire without a key gets a generated run key of this shape: a caller choosing one
        # could give its run another run's key (its seeds, its REST Idempotency-Keys).
        raise InvalidArgumentError(
            "idempotency_key",
            f"keys starting with {GENERATED_RUN_KEY_PREFIX!r} are reserved for generated run keys: "
            "choose another",
        )
    return key


def page_of(records: Sequence[T], limit: int, offset: int) -> tuple[Sequence[T], str]:
    """Records read with ``limit + 1``: the page, and the next page's token ('' on the last page)."""
    return records[:limit], (str(offset + limit) if len(records) > limit else "")


def validate_page(page_size: int, page_token: str) -> tuple[int, int]:
    """Return (limit, offset). Page tokens are opaque to clients; here an offset."""
    if page_size < 0 or page_size > 1000:
        raise InvalidArgumentError("page_size", f"{page_size} is outside 0..1000")
    offset = 0
    if page_token:
        if not (page_token.isascii() and page_token.isdigit()) or len(page_token) > 12:
            raise InvalidArgumentError("page_token", "is not a token this server issued")
        offset = int(page_token)
    return (page_size or 100), offset
