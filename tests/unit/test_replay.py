"""Replaying runs: the mapping's checks (pure), the worker's side (aliases, Faker release, the pinned
image), and ReplayRun over the API with the fake executor (what the replay's spec carries, what
its run records, idempotency, refusals). Real databases and the real stack:
tests/integration/test_replay.py."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from seedbed.api.v1 import attempt_pb2, connection_pb2, replay_pb2, run_pb2, scenario_pb2
from seedbed.cli import main
from seedbed.cli._replay import input_rows
from seedbed.client import Client, ClientError, ScenarioRun
from seedbed.coordinator._convert import replay_template_pins, run_to_proto
from seedbed.coordinator.access import Role
from seedbed.coordinator.app.replay import (
    MAX_MAPPED_CONNECTIONS,
    ConnectionUse,
    _used_names,
    check_mapping,
    script_connections,
)
from seedbed.coordinator.attempt import ledger_key
from seedbed.coordinator.errors import FailedPreconditionError, InvalidArgumentError
from seedbed.coordinator.model import RunState
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.store import RunRecord
from seedbed.coordinator.store.catalog import ConnectionRecord
from seedbed.coordinator.store.records import ScenarioSettingsValue
from seedbed.coordinator.store.replays import ReplayPin
from seedbed.worker import templates
from seedbed.worker._replay import PinnedImageError, check_image, version_refusal
from seedbed.worker.agent import Agent
from seedbed.worker.agent._connections import aliased_connections, to_spec
from seedbed.worker.agent._errors import UnknownConnection
from tests.unit.test_access import make_user

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _conn(connection_id: str, kind: str = "postgresql", allowed: tuple[str, ...] = ()) -> ConnectionRecord:
    return ConnectionRecord(
        id=connection_id,
        kind=kind,
        description="",
        url=f"postgresql://u@db/{connection_id}" if kind != "rest" else "",
        rest={},
        secret_kind="none",
        secret_ref="",
        secret_cipher=None,
        created_at=AT,
        updated_at=AT,
        allowed_users=allowed,
    )


def _use(**catalog: ConnectionRecord) -> ConnectionUse:
    return ConnectionUse(used={"conn_shop", "conn_api"}, catalog=catalog, caller="alice", run_as="robot")


CATALOG = {
    "conn_shop": _conn("conn_shop"),
    "conn_shop_b": _conn("conn_shop_b"),
    "conn_api": _conn("conn_api", "rest"),
    "conn_locked": _conn("conn_locked", allowed=("robot",)),
    "conn_robots_no": _conn("conn_robots_no", allowed=("alice",)),
}


def test_a_mapping_of_used_connections_to_ones_of_the_same_kind_passes() -> None:
    # Ids as everywhere: "shop" is conn_shop.
    assert check_mapping({"shop": "conn_shop_b"}, _use(**CATALOG)) == {"conn_shop": "conn_shop_b"}
    assert check_mapping({}, _use(**CATALOG)) == {}


@pytest.mark.parametrize(
    ("mapping", "field", "words"),
    [
        (
            {"orders": "shop_b"},
            "connections['orders']",
            "never used a connection 'conn_orders' (it used: conn_api, conn_shop)",
        ),
        ({"shop": "nowhere"}, "connections['shop']", "connection 'conn_nowhere' does not exist"),
        (
            {"shop": "api"},
            "connections['shop']",
            "'conn_shop' is a postgresql connection and 'conn_api' a rest",
        ),
        ({"shop": "locked"}, "connections['shop']", "may not be used by runs acting as 'alice'"),
        ({"shop": "robots_no"}, "connections['shop']", "may not be used by runs acting as 'robot'"),
        ({"shop": ""}, "connections", "old=new"),
        ({"": "shop_b"}, "connections", "old=new"),
        ({"shop": "x" * 101}, "connections['shop']", "at most 100 characters"),
        ({"shop": "Bad Id!"}, "connections['shop']", "is not a valid id"),
    ],
)
def test_a_bad_mapping_is_refused_naming_the_entry(mapping: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_mapping(mapping, _use(**CATALOG))
    assert info.value.field == field
    assert words in str(info.value)


def test_too_many_mapped_connections_are_refused_naming_the_cap() -> None:
    mapping = {f"c{i}": "shop_b" for i in range(MAX_MAPPED_CONNECTIONS + 1)}
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_MAPPED_CONNECTIONS} connections"):
        check_mapping(mapping, _use(**CATALOG))


def test_a_used_connection_deleted_since_may_be_mapped_to_any_kind() -> None:
    catalog = {k: v for k, v in CATALOG.items() if k != "conn_shop"}
    assert check_mapping({"shop": "shop_b"}, _use(**catalog)) == {"conn_shop": "conn_shop_b"}


def test_the_pin_survives_its_json() -> None:
    pin = ReplayPin("run_a", "run_0", "seedbed-python:abc", {"shop": "shop_b"}, {"faker": "1.0"}, {"t": 3})
    assert ReplayPin.from_json(pin.to_json()) == pin


# -- the worker's side -------------------------------------------------------------------------------


def _snapshot(connection_id: str, database: str) -> attempt_pb2.ConnectionSnapshot:
    return attempt_pb2.ConnectionSnapshot(
        id=connection_id, kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=f"postgresql://u@db/{database}"
    )


def test_an_alias_resolves_the_old_name_to_the_new_connection() -> None:
    named = aliased_connections([_snapshot("shop", "a"), _snapshot("shop_b", "b")], {"shop": "shop_b"})
    spec, _ = to_spec(named["shop"])
    # The sink (and every batch it reports) carries the new connection's id and database.
    assert spec.id == "shop_b"
    assert spec.options["url"].endswith("/b")
    assert to_spec(named["shop_b"])[0].options["url"].endswith("/b")


def test_an_alias_to_a_connection_the_attempt_was_not_given_is_refused_not_the_old_one() -> None:
    named = aliased_connections([_snapshot("shop", "a")], {"shop": "gone"})
    with pytest.raises(UnknownConnection, match="'shop' is replayed into 'gone'"):
        to_spec(named["shop"])


def test_another_faker_release_refuses_the_replay_naming_both() -> None:
    recorded = replay_pb2.ReplayPin(replayed_from="run_a", versions={"faker": "0.0.1"})
    refusal = version_refusal(recorded)
    assert refusal is not None
    assert "run run_a was generated with Faker release 0.0.1" in refusal
    assert f"this worker has {templates.FAKER_VERSION}" in refusal
    same = replay_pb2.ReplayPin(
        versions={"faker": templates.FAKER_VERSION, "generation": str(templates.GENERATION_VERSION)}
    )
    assert version_refusal(same) is None
    other = replay_pb2.ReplayPin(versions={"generation": "999"})
    assert "generation version 999" in (version_refusal(other) or "")


def test_an_image_other_than_the_recorded_one_fails_naming_both() -> None:
    check_image("", "seedbed-python:new")
    check_image("seedbed-python:old", "seedbed-python:old")
    with pytest.raises(PinnedImageError) as info:
        check_image("seedbed-python:old", "seedbed-python:new", "run_a")
    assert "run run_a ran in image seedbed-python:old" in str(info.value)
    assert "now give seedbed-python:new" in str(info.value)


# -- over the API, with the fake executor ------------------------------------------------------------

SCRIPT = "batch conn_shop customers 1 0 5\nbatch conn_shop orders 2 0 7\n"


def _pg(client: Client, connection_id: str, **extra: Any) -> None:
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id=connection_id,
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url=f"postgresql://u@db/{connection_id}",
            **extra,
        )
    )


def _finished(client: Client) -> run_pb2.Run:
    _pg(client, "shop")
    _pg(client, "shop_b")
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="files", kind=connection_pb2.CONNECTION_KIND_FILE
        )
    )
    client.put_scenario("seeding", script=SCRIPT)
    run = client.wait(client.run("seeding", {"rows": "5"}).run_id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS
    return run


def test_replay_runs_the_recorded_script_and_key_into_the_mapped_connection(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, client = fake_coordinator
    original = _finished(client)
    assert original.inputs.image == "fake" and original.inputs.ledger_run_id == original.id
    assert not original.replayed_from
    # The scenario changes after the run: the replay still runs the script the run ran.
    client.put_scenario("seeding", script="print changed\n")

    fire = client.replay_run(original.id, {"shop": "shop_b"}, idempotency_key="replay-1")
    replayed = client.wait(fire.run_id)
    assert replayed.state == run_pb2.RUN_STATE_SUCCESS
    assert replayed.replayed_from == original.id
    assert (replayed.run_key, dict(replayed.params)) == (original.run_key, {"rows": "5"})
    assert replayed.scenario_revision == original.scenario_revision
    assert dict(replayed.inputs.connection_aliases) == {"conn_shop": "conn_shop_b"}
    assert replayed.inputs.ledger_run_id == original.id

    spec = coordinator.dispatcher.specs[-1]
    assert spec.run_id == replayed.id and spec.script == SCRIPT
    assert dict(spec.replay.connection_aliases) == {"conn_shop": "conn_shop_b"}
    assert (spec.replay.ledger_run_id, spec.replay.image, spec.replay.replayed_from) == (
        original.id,
        "fake",
        original.id,
    )
    # Its ledger rows are signed for the original: a replay into the same targets skips them.
    settings = coordinator.settings
    box = SecretBox.from_key_or_file(settings.secret_key, settings.data_dir)
    assert spec.ledger_key == ledger_key(box, original.id)

    # The same key and request: the same fire; another request: ALREADY_EXISTS.
    assert client.replay_run(original.id, {"shop": "shop_b"}, idempotency_key="replay-1").id == fire.id
    with pytest.raises(ClientError) as info:
        client.replay_run(original.id, {}, idempotency_key="replay-1")
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS

    # A replay of the replay keeps the ledger identity of the first run and its mapping.
    again = client.wait(client.replay_run(replayed.id).run_id)
    assert again.inputs.ledger_run_id == original.id
    assert dict(again.inputs.connection_aliases) == {"conn_shop": "conn_shop_b"}


def test_replay_refuses_bad_mappings_active_and_unknown_runs(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    original = _finished(client)
    cases = [
        ({"orders": "shop_b"}, grpc.StatusCode.INVALID_ARGUMENT, "never used a connection 'conn_orders'"),
        ({"shop": "nowhere"}, grpc.StatusCode.INVALID_ARGUMENT, "'conn_nowhere' does not exist"),
        (
            {"shop": "files"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "postgresql connection and 'conn_files' a file one",
        ),
    ]
    for mapping, code, words in cases:
        with pytest.raises(ClientError) as info:
            client.replay_run(original.id, mapping)
        assert info.value.code == code and words in info.value.details
    with pytest.raises(ClientError) as info:
        client.replay_run("run_doesnotexist")
    assert info.value.code == grpc.StatusCode.NOT_FOUND

    client.put_scenario("slow", script="sleep 30\n")
    slow = client.run("slow").run_id
    with pytest.raises(ClientError) as info:
        client.replay_run(slow)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "can be replayed once it has ended" in info.value.details
    client.abort(slow)
    client.wait(slow)
    # Nothing was started by the refusals: the original and the slow run only.
    assert len(client.list_runs("seeding", 10)) == 1


def test_a_connection_the_caller_may_not_use_is_refused(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    original = _finished(client)
    client.create_user("somebody-else")
    _pg(client, "staff_only", allowed_users=["somebody-else"])
    with pytest.raises(ClientError) as info:
        client.replay_run(original.id, {"shop": "staff_only"})
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "may not be used by runs acting as" in info.value.details


def test_seedbed_run_replay_and_show(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    address = ["--address", coordinator.address]
    original = _finished(client)
    assert main([*address, "run", "replay", original.id, "--connection", "shop=shop_b"]) == 0
    replayed = client.list_runs("seeding", 10)[0]
    assert replayed.replayed_from == original.id
    capsys.readouterr()
    assert main([*address, "run", "show", replayed.id]) == 0
    out = capsys.readouterr().out
    assert "replay of" in out and original.id in out
    assert "conn_shop → conn_shop_b" in out and "fake" in out
    assert main([*address, "run", "replay", original.id, "-c", "shop"]) == 2
    assert main([*address, "run", "replay", original.id, "-c", "nope=shop_b"]) != 0
    # The Python client's run object replays too.
    again = (
        ScenarioRun(client, client.get_run(original.id)).replay({"shop": "shop_b"}).wait_for_scenario_run()
    )
    assert again is not None and again.raw.replayed_from == original.id


def test_replay_needs_the_runner_role_and_answers_over_rest(fake_coordinator: tuple[Any, Client]) -> None:
    coordinator, client = fake_coordinator
    original = _finished(client)
    viewer_key = make_user(client, "vera", "default", Role.VIEWER)
    runner_key = make_user(client, "rudy", "default", Role.RUNNER)
    with Client(coordinator.address, api_key=viewer_key) as viewer:
        assert viewer.get_run(original.id).inputs.image == "fake"  # viewers see what it recorded
        with pytest.raises(ClientError) as info:
            viewer.replay_run(original.id, {"shop": "shop_b"})
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED

    with httpx.Client(
        base_url=f"http://{coordinator.rest_address}",
        headers={"Authorization": f"Bearer {runner_key}"},
        timeout=30,
    ) as http:
        answer = http.post(
            f"/v1/runs/{original.id}/replay?wait=true",
            json={"connections": {"shop": "shop_b"}},
            headers={"Idempotency-Key": "rest-replay-1"},
        )
        assert answer.status_code == 200, answer.text
        run = answer.json()["run"]
        assert run["replayed_from"] == original.id and run["state"] == "RUN_STATE_SUCCESS"
        assert run["inputs"]["connection_aliases"] == {"conn_shop": "conn_shop_b"}
        again = http.post(
            f"/v1/runs/{original.id}/replay",
            json={"connections": {"shop": "shop_b"}},
            headers={"Idempotency-Key": "rest-replay-1"},
        )
        assert again.json()["fire"]["id"] == answer.json()["fire"]["id"]
        bad = http.post(f"/v1/runs/{original.id}/replay", json={"connections": {"shop": "nowhere"}})
        assert bad.status_code == 400 and "conn_nowhere" in bad.json()["error"]["message"]
        extra = http.post(f"/v1/runs/{original.id}/replay", json={"connection": {}})
        assert extra.status_code == 400 and "connection" in extra.text
        wrong = http.post(f"/v1/runs/{original.id}/replay", json={"connections": {"shop": 5}})
        assert wrong.status_code == 400


# -- template versions: a replay pins only the uses that named no version ----------------------------


def _run_record(templates_used: list[dict[str, Any]], replay: ReplayPin | None = None) -> RunRecord:
    return RunRecord(
        id="run_orig",
        scenario_id="seeding",
        fire_id="fire_orig",
        run_key="k",
        state=RunState.SUCCESS,
        params={},
        script="",
        settings=ScenarioSettingsValue(),
        scenario_revision=1,
        created_at=AT,
        started_at=AT,
        ended_at=AT,
        error=None,
        attempt_count=1,
        logs_truncated=False,
        dropped_log_lines=0,
        warning_count=0,
        exit_code=0,
        last_sequence=0,
        abort_reason=None,
        details={"versions": {}, "steps": [], "templates": templates_used},
        replay=replay,
    )


def test_a_replay_pins_the_runs_version_of_a_plain_use_not_a_named_one() -> None:
    # The original generated from plain tmpl_x (its run's version 3) and from tmpl_x@1. Its replay
    # must give plain tmpl_x version 3 again; @1 names its own version and is no pin.
    original = _run_record(
        [
            {"id": "tmpl_x", "version": 3, "pinned": False},
            {"id": "tmpl_x", "version": 1, "pinned": True},
            {"id": "tmpl_y", "version": 2, "pinned": True},
        ]
    )
    assert replay_template_pins(original) == {"tmpl_x": 3}
    run = run_to_proto(original)
    assert [(u.template_id, u.version, u.pinned) for u in run.templates_used] == [
        ("tmpl_x", 3, False),
        ("tmpl_x", 1, True),
        ("tmpl_y", 2, True),
    ]
    assert dict(run.inputs.template_versions) == {"tmpl_x": 3}
    # `run show` lists every use, and which named its version.
    assert ("templates", "tmpl_x@3, tmpl_x@1 (pinned), tmpl_y@2 (pinned)") in input_rows(run)
    # Hostile or damaged records are skipped, never a crash; a replay without uses passes its pins on.
    assert (
        replay_template_pins(_run_record([{"id": 5, "version": 1}, {"id": "tmpl_z", "version": "2"}])) == {}
    )
    pin = ReplayPin(replayed_from="run_a", ledger_run_id="run_a", image="i", template_versions={"tmpl_x": 3})
    assert replay_template_pins(_run_record([], replay=pin)) == {"tmpl_x": 3}


def test_the_agent_records_a_plain_and_a_named_use_of_the_same_version_apart(tmp_path: Path) -> None:
    doc = {"id": "tmpl_x", "version": 1, "fields": {"id": {"sequence": {"start": 1}}}}
    spec = attempt_pb2.AttemptSpec(
        run_id="run_uses",
        attempt=1,
        templates=[attempt_pb2.TemplateSnapshot(id="tmpl_x", canonical_json=json.dumps(doc), revision=1)],
    )
    agent = Agent(spec, artifacts_dir=tmp_path)
    try:
        agent("generate", {"template_id": "tmpl_x", "count": 1})
        agent("generate", {"template_id": "tmpl_x@1", "count": 1})
        agent("generate", {"template_id": "tmpl_x", "count": 1})
        assert [(u.template_id, u.version, u.pinned) for u in agent.templates_used()] == [
            ("tmpl_x", 1, False),
            ("tmpl_x", 1, True),
        ]
    finally:
        agent.close()


def test_a_replay_of_a_dry_run_is_a_dry_run(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    _finished(client)
    dry = client.wait(client.run("seeding", {"rows": "5"}, dry_run=True).run_id)
    assert dry.dry_run and dry.inputs.image
    replayed = client.wait(client.replay_run(dry.id, {"shop": "shop_b"}).run_id)
    assert replayed.replayed_from == dry.id and replayed.dry_run


def test_the_connections_a_script_used_are_its_literal_connection_arguments() -> None:
    # Only what it passes to connection(...): an id mentioned in text (a print, a comment, a dict
    # key) is no connection the run used, so a mapping may not name it.
    script = (
        "from seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\n"
        "dm.connection('conn_shop').insert('t', [])\n"
        "Seedbed().connection(connection_id=\"conn_api\").post('/x', [])\n"
        "connection('conn_files')\n"
        "name = 'conn_mentioned'\n"
        "dm.connection(name)\n"
        "print('conn_text', {'conn_key': 1})  # conn_comment\n"
        "dm.template('conn_not_a_connection')\n"
    )
    assert script_connections(script) == {"conn_shop", "conn_api", "conn_files"}
    assert script_connections("batch conn_shop customers 1 0 5\n") == set()  # not Python
    assert script_connections("(" * 10_000) == set()
    # Batches count (through their aliases for a replay of a replay), and the mapping already made.
    used = _used_names({"conn_shop"}, {"conn_b", "conn_log"}, {"conn_old": "conn_b", "conn_x": "conn_y"})
    assert used == {"conn_shop", "conn_old", "conn_log", "conn_x"}
    with pytest.raises(InvalidArgumentError, match="never used a connection 'conn_text'"):
        check_mapping(
            {"text": "shop_b"},
            ConnectionUse(
                used=script_connections(script),
                catalog={"conn_shop_b": _conn("conn_shop_b")},
                caller="a",
                run_as="a",
            ),
        )


def test_a_run_whose_scenario_was_deleted_is_not_replayed_saying_why(
    fake_coordinator: tuple[Any, Client],
) -> None:
    _, client = fake_coordinator
    original = _finished(client)
    client.delete_scenario("seeding")
    words = f"run {original.id}'s scenario 'scn_seeding' was deleted; a replay needs its scenario"
    with pytest.raises(ClientError) as info:
        client.replay_run(original.id)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and words in info.value.details
    # A scenario given its id since is not the run's: its run-as and settings never were.
    client.put_scenario("seeding", script=SCRIPT)
    with pytest.raises(ClientError) as info:
        client.replay_run(original.id, {"shop": "shop_b"})
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and words in info.value.details
    assert [r.id for r in client.list_runs("seeding", 10)] == [original.id]


# -- whom a replay acts as ---------------------------------------------------------------------------


def test_a_replay_never_runs_an_old_script_as_an_identity_it_was_not_approved_for(
    fake_coordinator: tuple[Any, Client],
) -> None:
    """The attack: an editor runs script v1 while the scenario acts as themselves, changes it to an
    innocent v2, then an admin sets run_as=carol (approving v2 to act as her). Replaying the v1 run
    would run v1 with carol's rights (her connections)."""
    coordinator, client = fake_coordinator
    _pg(client, "shop")
    carol_key = make_user(client, "carol", "default", Role.RUNNER)
    with (
        Client(coordinator.address, api_key=make_user(client, "ed", "default", Role.EDITOR)) as ed,
        Client(coordinator.address, api_key=make_user(client, "pam", "default", Role.ADMIN)) as pam,
    ):
        ed.put_scenario("seeding", script=SCRIPT)
        v1 = ed.wait(ed.run("seeding").run_id)
        assert (v1.state, v1.run_as) == (run_pb2.RUN_STATE_SUCCESS, "ed")
        ed.put_scenario("seeding", script="print innocent\n")
        pam.put_scenario(
            "seeding", script="print innocent\n", settings=scenario_pb2.ScenarioSettings(run_as="carol")
        )

        with pytest.raises(ClientError) as info:
            ed.replay_run(v1.id)
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
        words = ("'ed'", "'carol'", "ask an admin of project 'default' to replay it", "run the scenario anew")
        assert all(w in info.value.details for w in words), info.value.details
        # The store checks it again under the scenario's lock: a run-as changed after the use
        # case's check (here: an identity the scenario no longer has) is refused too.
        store = coordinator.store

        async def late() -> Any:
            record = await store.get_run(v1.id)
            pin = ReplayPin(v1.id, v1.id, "fake", {}, {}, {})
            return await store.replays.replay(record, pin, "", run_as="ed", triggered_by="ed")

        with pytest.raises(FailedPreconditionError, match="now acts as 'carol', not 'ed'"):
            asyncio.run_coroutine_threadsafe(late(), coordinator.loop).result(30)
        assert [r.id for r in client.list_runs("seeding", 10)] == [v1.id]  # nothing started

        # A project admin may (they could set run_as anyway): the replay acts as the scenario's
        # run-as now, with the run's own script.
        replayed = pam.wait(pam.replay_run(v1.id).run_id)
        assert (replayed.run_as, replayed.replayed_from) == ("carol", v1.id)
        assert coordinator.dispatcher.specs[-1].script == SCRIPT
        # The same identity as the run had needs no more than RUNNER: a replay of the admin's
        # replay (it acted as carol, as the scenario does now).
        again = ed.wait(ed.replay_run(replayed.id).run_id)
        assert again.run_as == "carol"
    # carol herself may lend her own identity (as she may set run_as to herself).
    with Client(coordinator.address, api_key=carol_key) as carol:
        assert carol.wait(carol.replay_run(v1.id).run_id).run_as == "carol"
