"""A caller cannot choose another run's run key: a fire without an idempotency key gets a generated
run key (`rk_…`), which seeds its data and keys its REST writes; a caller naming such a key as its
own idempotency key would share them with that run."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from seedbed.api.v1 import run_pb2, run_pb2_grpc
from seedbed.client import Client, ClientError
from tests.conftest import auth_metadata


def test_an_idempotency_key_shaped_like_a_generated_run_key_is_refused(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, client = fake_coordinator
    client.put_scenario("victim", script="print('x')\n")
    # A fire without a key (the client always sends one; a raw call need not).
    with grpc.insecure_channel(coordinator.address) as channel:
        fired = run_pb2_grpc.RunServiceStub(channel).RunScenario(
            run_pb2.RunScenarioRequest(scenario_id="victim"), metadata=auth_metadata()
        )
    victim = client.wait(fired.fire.run_id)
    assert victim.run_key.startswith("rk_")
    with pytest.raises(ClientError) as refused:
        client.run("victim", idempotency_key=victim.run_key)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "reserved for generated run keys" in refused.value.details
    # Keys of the caller's own choosing still work.
    assert client.wait(client.run("victim", idempotency_key="ci-build-42").run_id).run_key == "ci-build-42"
