"""A coordinator under a flood of fires and uploads: per-caller limits, RESOURCE_EXHAUSTED naming
the limit.

The attack: one API key fires a scenario as fast as it can (each fire is a run: a sandbox, a store
transaction, log lines) and uploads workspace files in a loop (each one stored in the coordinator's
store). Without a limit every call is accepted and other tenants wait behind the flood. With limits,
the caller past its allowance gets RESOURCE_EXHAUSTED naming the limit, the setting and when to try
again (also as ``retry-after`` trailing metadata, in seconds); other callers are unaffected; an
idempotent retry of a fire already made costs nothing; and the client does not retry the refusal
blindly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import access_pb2, run_pb2, run_pb2_grpc, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.access import Role
from seedbed.coordinator.fakes import FakeDispatcher
from tests.conftest import auth_metadata, settings_for

ALLOW = scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT)
TEMPLATE = "id: tmpl_flood{n}\nversion: 1\nfields:\n  n: {{const: {n}}}\n"


def _member(admin: Client, address: str, user_id: str, role: Role) -> Client:
    """A client of a new user with ``role`` in the default project."""
    admin._call(admin._access.CreateUser, access_pb2.CreateUserRequest(user_id=user_id))
    admin._call(
        admin._access.SetMembership,
        access_pb2.SetMembershipRequest(user_id=user_id, project_key="default", role=int(role)),
    )
    key = admin._call(admin._access.CreateApiKey, access_pb2.CreateApiKeyRequest(user_id=user_id))
    return Client(address, api_key=str(key.secret))


@pytest.fixture
def limited(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    """A real coordinator (real store, fake executor) with small per-caller limits."""
    settings = settings_for(
        store_url,
        tmp_path,
        fires_per_minute=5,
        upload_bytes_per_minute=100_000,
        template_pushes_per_minute=2,
        scenario_puts_per_minute=3,
    )
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as admin:
        yield coordinator, admin


def _refused(exc: pytest.ExceptionInfo[ClientError], setting: str, limit: str) -> None:
    assert exc.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.value
    text = exc.value.details
    assert setting in text and limit in text and "try again in" in text, text


def test_a_flood_of_fires_from_one_key_is_refused_past_its_limit(limited: tuple[Any, Client]) -> None:
    coordinator, admin = limited
    admin.put_scenario("flood", script="print hi\n", settings=ALLOW)
    alice = _member(admin, coordinator.address, "alice", Role.RUNNER)
    bob = _member(admin, coordinator.address, "bob", Role.RUNNER)

    # Fifty fires at once from one key: five make runs, the rest are refused, none waits.
    def fire(n: int) -> str:
        try:
            return str(alice.run("flood", idempotency_key=f"alice-{n}").run_id)
        except ClientError as exc:
            return exc.code.name

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(fire, range(50)))
    made = [a for a in answers if a.startswith("run_")]
    assert len(made) == 5, answers
    assert answers.count("RESOURCE_EXHAUSTED") == 45

    with pytest.raises(ClientError) as refused:
        alice.run("flood")
    _refused(refused, "SEEDBED_FIRES_PER_MINUTE", "5 fires a minute")
    assert refused.value.retry_after_seconds is not None and 1 <= refused.value.retry_after_seconds <= 60

    # The refusal says when to come back, in the trailers too.
    stub = run_pb2_grpc.RunServiceStub(alice._channel)
    with pytest.raises(grpc.RpcError) as raw:
        stub.RunScenario(run_pb2.RunScenarioRequest(scenario_id="flood"))
    trailers = dict(raw.value.trailing_metadata() or ())
    assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 1 <= int(trailers["retry-after"]) <= 60

    # An idempotent retry of a fire already made is answered: it starts nothing, so it costs nothing.
    first = next(n for n, a in enumerate(answers) if a.startswith("run_"))
    assert alice.run("flood", idempotency_key=f"alice-{first}").run_id == answers[first]

    # The limit is per caller: bob (and the admin) fire as usual.
    assert bob.run("flood").run_id.startswith("run_")
    assert admin.run("flood").run_id.startswith("run_")
    for client in (alice, bob):
        client.close()


def test_the_client_does_not_retry_a_refusal_blindly(
    limited: tuple[Any, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator, admin = limited
    admin.put_scenario("flood", script="print hi\n", settings=ALLOW)
    for n in range(5):
        admin.run("flood", idempotency_key=f"k{n}")
    calls: list[str] = []
    original = admin._runs.RunScenario

    def counted(request: Any, **kwargs: Any) -> Any:
        calls.append(request.idempotency_key)
        return original(request, **kwargs)

    monkeypatch.setattr(admin._runs, "RunScenario", counted)
    started = time.monotonic()
    with pytest.raises(ClientError) as refused:
        admin.run("flood", idempotency_key="one-more")
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # One call, no backoff loop against a limit that lasts seconds: the caller decides when to retry.
    assert calls == ["one-more"]
    assert time.monotonic() - started < 5


def test_uploads_past_the_byte_rate_are_refused_and_store_nothing(limited: tuple[Any, Client]) -> None:
    _coordinator, admin = limited
    admin.upload_file("a.bin", b"a" * 60_000)
    with pytest.raises(ClientError) as refused:
        admin.upload_file("b.bin", b"b" * 60_000)
    _refused(refused, "SEEDBED_UPLOAD_BYTES_PER_MINUTE", "100000 bytes a minute")
    assert [f.path for f in admin.list_files()] == ["a.bin"]


def test_template_pushes_and_scenario_puts_are_limited(limited: tuple[Any, Client]) -> None:
    _coordinator, admin = limited
    for n in range(2):
        admin.put_template(TEMPLATE.format(n=n))
    with pytest.raises(ClientError) as refused:
        admin.put_template(TEMPLATE.format(n=2))
    _refused(refused, "SEEDBED_TEMPLATE_PUSHES_PER_MINUTE", "2 template pushes a minute")

    for n in range(3):
        admin._call(
            admin._scenarios.CreateScenario,
            scenario_pb2.CreateScenarioRequest(scenario_id=f"s{n}", script="print hi\n"),
        )
    with pytest.raises(ClientError) as refused:
        admin._call(
            admin._scenarios.CreateScenario,
            scenario_pb2.CreateScenarioRequest(scenario_id="s3", script="print hi\n"),
        )
    _refused(refused, "SEEDBED_SCENARIO_PUTS_PER_MINUTE", "3 scenario puts a minute")


HELLO = "print('hello')\n"


def test_a_real_coordinator_refuses_the_fire_past_the_limit_and_runs_the_others(
    ray_session: None, tmp_path: Path
) -> None:
    """Real Ray and Docker: the fires within the limit run to the end; the one past it starts
    nothing (no run, no sandbox)."""
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", tmp_path, fires_per_minute=2)
    with running_in_thread(settings) as coordinator, Client(coordinator.address) as client:
        client.put_scenario("hello", script=HELLO, settings=ALLOW)
        run_ids = [client.run("hello").run_id for _ in range(2)]
        with pytest.raises(ClientError) as refused:
            client.run("hello")
        _refused(refused, "SEEDBED_FIRES_PER_MINUTE", "2 fires a minute")
        for run_id in run_ids:
            assert client.wait(run_id).state == run_pb2.RUN_STATE_SUCCESS
        assert sorted(r.id for r in client.list_runs("hello")) == sorted(run_ids)


def test_the_defaults_allow_a_burst_of_fifty(fake_coordinator: tuple[Any, Client]) -> None:
    """What the benchmarks and a CI job do: fifty fires at once with one key."""
    _coordinator, client = fake_coordinator
    client.put_scenario("burst", script="print hi\n", settings=ALLOW)
    stub = run_pb2_grpc.RunServiceStub(grpc.insecure_channel(client.address))
    with ThreadPoolExecutor(max_workers=16) as pool:
        fires = list(
            pool.map(
                lambda _: (
                    stub.RunScenario(
                        run_pb2.RunScenarioRequest(scenario_id="burst"), metadata=auth_metadata()
                    ).fire
                ),
                range(50),
            )
        )
    assert len({f.run_id for f in fires}) == 50
