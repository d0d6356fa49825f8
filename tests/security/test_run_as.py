"""A scenario's runs act as its ``run_as``, else as the user who last changed its *script*: an edit
that leaves the script alone (a rename, a pause, a trigger, a reporter, the same script put again)
lends nobody's identity and borrows nobody's.

The attack: alice may use a restricted connection (``allowed_users``) and writes a scenario that
uses it. bob, an editor of the same project, renames it, pauses and resumes it and adds a trigger.
Were the acting identity "whoever changed it last", alice's scenario would now run as bob and fail
on her connection; and conversely a scenario bob wrote would run with the rights of whoever renamed
it last. Once bob changes the script itself, the runs act as bob, who may not use alice's
connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from seedbed.api.v1 import access_pb2, connection_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import store as store_package
from seedbed.coordinator.access import Role
from seedbed.coordinator.store import Store, normalize_url

USES_ALICES_CONNECTION = """\
from seedbed.sdk import Seedbed

Seedbed().connection("conn_alice").write("rows.jsonl", [{"id": 1}], format="jsonl")
print("wrote to alice's connection")
"""

NO_RETRY = scenario_pb2.ScenarioSettings(retry_policy=scenario_pb2.RetryPolicy(disabled=True))


def _member(admin: Client, address: str, user_id: str, role: Role) -> Client:
    """A client of a new user with ``role`` in the default project."""
    admin._call(admin._access.CreateUser, access_pb2.CreateUserRequest(user_id=user_id))
    admin._call(
        admin._access.SetMembership,
        access_pb2.SetMembershipRequest(user_id=user_id, project_key="default", role=int(role)),
    )
    key = admin._call(admin._access.CreateApiKey, access_pb2.CreateApiKeyRequest(user_id=user_id))
    return Client(address, api_key=str(key.secret))


def _update(client: Client, **fields: Any) -> scenario_pb2.Scenario:
    request = scenario_pb2.UpdateScenarioRequest(scenario_id="scn_report", **fields)
    return client._call(client._scenarios.UpdateScenario, request).scenario


def _get(client: Client) -> scenario_pb2.Scenario:
    request = scenario_pb2.GetScenarioRequest(scenario_id="scn_report")
    return client._call(client._scenarios.GetScenario, request).scenario


def _every_edit_but_the_script(bob: Client) -> None:
    """bob renames the scenario, pauses and resumes it, adds a trigger and a reporter, and puts the
    very same script again: none of it is a change of the script."""
    _update(bob, name="renamed by bob")
    settings = bob.get_default_project().get_scenario("scn_report").get_settings()
    settings.active = False
    settings.save()
    settings.active = True
    # Added inactive: nothing fires or is delivered while the test runs.
    settings.add_daily_trigger(hour=3, trigger_id="nightly", active=False)
    settings.add_webhook_reporter("https://hooks.example.com/seedbed", reporter_id="hook").active = False
    settings.save()
    _update(bob, script=_get(bob).script)


@pytest.fixture
def alice_and_bob(coordinator: tuple[Any, Client]) -> Iterator[tuple[Client, Client, Client]]:
    """alice and bob, editors of the default project; conn_alice is usable by alice's runs only."""
    coord, admin = coordinator
    alice = _member(admin, coord.address, "alice", Role.EDITOR)
    bob = _member(admin, coord.address, "bob", Role.EDITOR)
    admin.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_alice", kind=connection_pb2.CONNECTION_KIND_FILE, allowed_users=["alice"]
        )
    )
    yield admin, alice, bob
    alice.close()
    bob.close()


def test_an_edit_that_leaves_the_script_alone_does_not_change_who_the_runs_act_as(
    alice_and_bob: tuple[Client, Client, Client],
) -> None:
    _, alice, bob = alice_and_bob
    scenario = alice.get_default_project().create_scenario(
        "report", "report", USES_ALICES_CONNECTION, settings=NO_RETRY
    )
    assert scenario.get_settings().effective_run_as == "alice"
    assert scenario.run_and_wait().outcome == "SUCCESS"

    _every_edit_but_the_script(bob)
    seen = _get(bob)
    assert (seen.name, seen.last_modified_by) == ("renamed by bob", "bob")
    assert (seen.script_modified_by, seen.effective_run_as) == ("alice", "alice")
    run = bob.get_default_project().get_scenario("scn_report").run_and_wait(no_fail=True)
    assert run.outcome == "SUCCESS", run.get_log()
    assert "wrote to alice's connection" in run.get_log()
    assert run.raw.run_as == "alice" and run.raw.triggered_by == "bob"

    # bob's own script runs as bob, who may not use alice's connection; alice renaming it
    # afterwards does not lend it her rights.
    changed = _update(bob, script=USES_ALICES_CONNECTION + "# bob was here\n")
    assert (changed.script_modified_by, changed.effective_run_as) == ("bob", "bob")
    renamed = _update(alice, name="renamed by alice")
    assert (renamed.last_modified_by, renamed.effective_run_as) == ("alice", "bob")
    run = alice.get_default_project().get_scenario("scn_report").run_and_wait(no_fail=True)
    assert run.outcome == "FAILED" and run.raw.run_as == "bob"
    error = run.get_details().first_error_details
    assert error is not None
    assert "connection 'conn_alice' may not be used by runs acting as 'bob' (allowed: alice)" in error.message


def test_clearing_run_as_cannot_hand_the_runs_to_the_scripts_author(
    fake_coordinator: tuple[Any, Client],
) -> None:
    """With run_as pinned to bob, bob clearing it would make alice's script run as alice: choosing
    another user's identity, which needs ADMIN as setting run_as to her does."""
    coord, admin = fake_coordinator
    alice = _member(admin, coord.address, "alice", Role.EDITOR)
    bob = _member(admin, coord.address, "bob", Role.EDITOR)
    pin_bob = scenario_pb2.ScenarioSettings(run_as="bob")
    with alice, bob:
        alice.get_default_project().create_scenario("report", "report", USES_ALICES_CONNECTION)
        assert _update(admin, settings=pin_bob).effective_run_as == "bob"

        with pytest.raises(ClientError) as denied:
            _update(bob, settings=scenario_pb2.ScenarioSettings())
        assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert "'alice'" in denied.value.details and "ADMIN" in denied.value.details
        assert _get(bob).effective_run_as == "bob"

        # An admin may; and clearing it while writing the script yourself is acting as yourself.
        assert _update(admin, settings=scenario_pb2.ScenarioSettings()).effective_run_as == "alice"
        _update(admin, settings=pin_bob)
        cleared = _update(bob, settings=scenario_pb2.ScenarioSettings(), script="print('bob')\n")
        assert (cleared.settings.run_as, cleared.script_modified_by, cleared.effective_run_as) == (
            "",
            "bob",
            "bob",
        )


def test_existing_scenarios_keep_acting_as_their_last_modifier_after_the_upgrade(store_url: str) -> None:
    """The new column starts from last_modified_by: who the runs acted as before the upgrade."""
    row = {
        "id": "scn_old",
        "name": "old",
        "script": "print(1)\n",
        "settings": "{}",
        "revision": 3,
        "created_at": datetime.now(UTC),
        "updated_at": datetime.now(UTC),
        "project_key": "default",
        "last_modified_by": "alice",
    }

    def upgrade_to_0004_and_insert(conn: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(Path(store_package.__file__).parent / "migrations"))
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        conn.execute(sa.table("scenarios", *(sa.column(c) for c in row)).insert().values(**row))

    async def scenario_after_upgrade() -> tuple[str, str]:
        engine = create_async_engine(normalize_url(store_url))
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to_0004_and_insert)
        await engine.dispose()
        store = await Store.open(store_url)
        try:
            old = await store.get_scenario("scn_old")
        finally:
            await store.aclose()
        return old.script_modified_by, old.effective_run_as

    assert asyncio.run(scenario_after_upgrade()) == ("alice", "alice")
