"""Purge records and time to live with a real store and the fake dispatcher: one claim at a time,
resumed once its lease passes, never again once DONE; the periodic pass; ListPurges; hostile
settings (a REST undo that could leave its base URL, a time to live past its bound) refused with
the field named; `seedbed scenario set-purge-after`, `seedbed run purges` and `--rest-undo`.
The real stack: tests/integration/test_purge_everywhere.py."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest
from prometheus_client import CollectorRegistry

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.cli import main
from seedbed.client import Client, ClientError
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.purge import RunPurger
from seedbed.coordinator.purge_pass import PurgePass
from seedbed.coordinator.store import Store, now
from seedbed.coordinator.store.records import ScenarioSettingsValue
from tests.conftest import eventually, settings_for
from tests.unit.test_purge_api import _count, _seeded_run


def _ran(client: Client, scenario_id: str = "quiet") -> run_pb2.Run:
    client.put_scenario(scenario_id, script="print hi")
    return client.wait(client.run(scenario_id).run_id)


def test_a_purge_is_claimed_once_resumed_after_its_lease_and_never_again_once_done(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, client = fake_coordinator
    run = _ran(client)
    url = coordinator.settings.resolved_store_url()

    async def story() -> list[Any]:
        store = await Store.open(url)
        lease, t0 = timedelta(seconds=60), now()
        seen: list[Any] = []

        async def claim(holder: str, at: Any, *, trigger: str = "ttl", again: bool = False) -> bool:
            return await store.purges.claim(
                run.id,
                scenario_id="quiet",
                project_key="default",
                trigger=trigger,
                holder=holder,
                at=at,
                lease=lease,
                again=again,
            )

        try:
            seen.append(await claim("a", t0))
            seen.append(await claim("b", t0 + timedelta(seconds=1)))  # a holds it
            seen.append(await claim("b", t0 + timedelta(seconds=61)))  # a's lease passed: resumed

            async def finish(holder: str, *, failed: bool, at: Any) -> bool:
                return await store.purges.finish(
                    run.id, holder, failed=failed, message="m", result="{}", at=at, retry_after=retry
                )

            retry = timedelta(minutes=10)
            seen.append(await finish("a", failed=False, at=t0))  # not a's now
            seen.append(await finish("b", failed=False, at=t0 + timedelta(seconds=62)))
            seen.append(await claim("c", t0 + timedelta(days=1)))  # DONE: the pass never again
            # Nor a request: what the purge removed may be a replay's since (same ledger identity).
            seen.append(await claim("d", t0 + timedelta(days=1), trigger="request", again=True))
            late = t0 + timedelta(days=1, seconds=1)
            seen.append(await finish("d", failed=True, at=late))
            seen.append(await claim("e", late + timedelta(minutes=11)))
            record = await store.purges.get(run.id)
            seen.append(None if record is None else (record.holder, record.attempts, record.trigger))
        finally:
            await store.aclose()
        return seen

    assert asyncio.run(story()) == [
        True,
        False,
        True,
        False,
        True,
        False,
        False,
        False,
        False,
        ("b", 2, "ttl"),
    ]


def test_one_runs_failed_purge_stops_no_other_and_each_claim_is_fenced(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, client = fake_coordinator
    runs = [_ran(client, "expiring").id, _ran(client, "expiring").id]
    settings = client.get_project("default").get_scenario("expiring").get_settings()
    settings.purge_after = timedelta(seconds=1)
    settings.save()
    time.sleep(1.2)
    url = coordinator.settings.resolved_store_url()

    class BrokenOnce:
        """Purges as a purger whose first run fails with what no one expected."""

        holder, lease = "coord-1", timedelta(seconds=60)

        def __init__(self) -> None:
            self.seen: list[str] = []

        def claimant(self, trigger: str) -> str:
            return f"{self.holder} ({trigger} {len(self.seen)})"

        async def held(self, run: Any, holder: str, *, trigger: str) -> run_pb2.PurgeRunResponse:
            self.seen.append(run.id)
            if len(self.seen) == 1:
                raise RuntimeError("a bug in one run's purge")
            return run_pb2.PurgeRunResponse()

    async def story() -> tuple[list[str], list[str], list[bool]]:
        store = await Store.open(url)
        try:
            broken = BrokenOnce()
            swept = await PurgePass(store, cast(RunPurger, broken), interval_seconds=60).sweep()
            # The same coordinator claims a run again once a claim's lease passed (its renewals
            # failed): the first claim can neither renew nor end the one that replaced it.
            purger = RunPurger(
                store,
                cast(Any, None),
                cast(Any, None),
                cast(Any, None),
                holder="coord-1",
                registry=CollectorRegistry(),
            )
            first, second = purger.claimant("request"), purger.claimant("request")
            t0, lease = now() + timedelta(seconds=61), timedelta(seconds=60)  # the pass's claims passed
            fenced = []
            for holder, at in ((first, t0), (second, t0 + timedelta(seconds=61))):
                fenced.append(
                    await store.purges.claim(
                        runs[0],
                        scenario_id="expiring",
                        project_key="default",
                        trigger="request",
                        holder=holder,
                        at=at,
                        lease=lease,
                        again=True,
                    )
                )
            fenced.append(await store.purges.renew(runs[0], first, t0 + timedelta(seconds=200)))
            ended = {"failed": False, "message": "m", "result": "{}", "retry_after": lease}
            fenced.append(await store.purges.finish(runs[0], first, at=t0 + timedelta(seconds=62), **ended))
            fenced.append(await store.purges.finish(runs[0], second, at=t0 + timedelta(seconds=63), **ended))
        finally:
            await store.aclose()
        return swept, broken.seen, fenced

    swept, seen, fenced = asyncio.run(story())
    assert sorted(seen) == sorted(runs) and sorted(swept) == sorted(runs)
    assert fenced == [True, True, False, False, True]


class _Recording:
    """A purger that records the runs the pass hands it and purges nothing."""

    holder, lease = "coord-1", timedelta(seconds=60)

    def __init__(self) -> None:
        self.seen: list[str] = []

    def claimant(self, trigger: str) -> str:
        return f"{self.holder} ({trigger} {len(self.seen)})"

    async def held(self, run: Any, holder: str, *, trigger: str) -> run_pb2.PurgeRunResponse:
        self.seen.append(run.id)
        return run_pb2.PurgeRunResponse()


def _swept(url: str, before: Any = None) -> list[str]:
    """One pass over the store at ``url`` (after ``before(store)``): the runs it would purge."""

    async def story() -> list[str]:
        store = await Store.open(url)
        try:
            if before is not None:
                await before(store)
            purger = _Recording()
            await PurgePass(store, cast(RunPurger, purger), interval_seconds=60).sweep()
            return purger.seen
        finally:
            await store.aclose()

    return asyncio.run(story())


def test_a_scenario_id_taken_again_in_another_project_purges_none_of_the_old_runs(
    fake_coordinator: tuple[Any, Client],
) -> None:
    """Project A deletes scenario `nightly`; project B creates `nightly` with a time to live of a
    second: the pass must not purge A's runs (B's editor holds no role in A)."""
    coordinator, client = fake_coordinator
    old = _ran(client, "nightly")
    client.delete_scenario(old.scenario_id)

    async def taken_in_b(store: Store) -> None:
        await store.access.create_project("tenant-b", "B", "")
        settings = ScenarioSettingsValue(purge_after_seconds=1)
        await store.create_scenario(old.scenario_id, "nightly", "print hi", settings, project_key="tenant-b")
        await asyncio.sleep(1.2)

    assert _swept(coordinator.settings.resolved_store_url(), taken_in_b) == []


def test_a_scenario_deleted_and_created_again_purges_only_its_own_runs(
    fake_coordinator: tuple[Any, Client],
) -> None:
    coordinator, client = fake_coordinator
    old = _ran(client, "nightly")
    client.delete_scenario(old.scenario_id)
    new = _ran(client, "nightly")
    assert new.scenario_id == old.scenario_id
    settings = client.get_project("default").get_scenario("nightly").get_settings()
    settings.purge_after = timedelta(seconds=1)
    settings.save()
    time.sleep(1.2)
    assert _swept(coordinator.settings.resolved_store_url()) == [new.id]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_periodic_pass_purges_a_run_past_its_time_to_live(store_url: str, tmp_path: Path) -> None:
    settings = settings_for(store_url, tmp_path, purge_interval_seconds=0.2)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        run_id, parents, children = _seeded_run(coordinator, client, tmp_path)
        assert client.list_purges() == []
        settings_obj = client.get_project("default").get_scenario("seeding").get_settings()
        settings_obj.purge_after = timedelta(seconds=1)
        settings_obj.save()

        def purged() -> run_pb2.PurgeRecord:
            found = client.list_purges(run_id)
            assert found and found[0].state == run_pb2.PURGE_STATE_DONE
            return found[0]

        record = eventually(purged)
        assert (record.trigger, record.attempts, record.scenario_id) == ("ttl", 1, "scn_seeding")
        assert [(t.table, t.rows_deleted) for t in record.result.targets] == [("parents", 6), ("children", 3)]
        assert "purged 9 rows" in record.message
        assert _count(parents, "parents") == 0 and _count(children, "children") == 0
        # Asked for again after the pass: its record answers, nothing is purged again.
        assert client.purge_run(run_id) == record.result
        assert [(p.trigger, p.attempts) for p in client.list_purges(run_id)] == [("ttl", 1)]


def test_list_purges_checks_its_arguments(fake_coordinator: tuple[Any, Client]) -> None:
    _, client = fake_coordinator
    with pytest.raises(ClientError) as caught:
        client.list_purges(limit=501)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and "500" in caught.value.details
    with pytest.raises(ClientError) as caught:
        client.list_purges("run_0123456789abcdef")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


def _rest(connection_id: str, undo: str, id_field: str = "") -> connection_pb2.CreateConnectionRequest:
    return connection_pb2.CreateConnectionRequest(
        connection_id=connection_id,
        kind=connection_pb2.CONNECTION_KIND_REST,
        rest=connection_pb2.RestOptions(base_url="http://127.0.0.1:9/api", undo=undo, undo_id_field=id_field),
    )


@pytest.mark.parametrize(
    ("undo", "id_field", "field"),
    [
        ("POST /things/{id}", "", "rest.undo"),  # only DELETE
        ("DELETE /things", "", "rest.undo"),  # no {id}
        ("DELETE http://elsewhere/{id}", "", "rest.undo"),  # leaves the base URL
        ("DELETE //elsewhere/{id}", "", "rest.undo"),
        ("DELETE /a/../{id}", "", "rest.undo"),
        ("DELETE /things/{id}?force=1", "", "rest.undo"),
        ("DELETE /things/{id}/{other}", "", "rest.undo"),
        ("DELETE /x/" + "a" * 600 + "/{id}", "", "rest.undo"),
        ("DELETE /things/{id}", "data..id", "rest.undo_id_field"),
        ("", "id", "rest.undo_id_field"),  # an id field without an undo
    ],
)
def test_a_rest_undo_is_checked_when_the_connection_is_created(
    fake_coordinator: tuple[Any, Client], undo: str, id_field: str, field: str
) -> None:
    _, client = fake_coordinator
    with pytest.raises(ClientError) as caught:
        client.create_connection(_rest("conn_api", undo, id_field))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details


def test_a_declared_undo_is_kept_and_shown(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, client = fake_coordinator
    address = ["--address", coordinator.address]
    client.create_connection(_rest("conn_api", "DELETE {path}/{id}", "data.id"))
    saved = client.get_connection("conn_api").rest
    assert (saved.undo, saved.undo_id_field) == ("DELETE {path}/{id}", "data.id")
    code = main(
        [*address, "connection", "create", "conn_cli", "--kind", "rest", "--base-url", "http://127.0.0.1:9"]
        + ["--rest-undo", "DELETE /things/{id}", "-o", "json"]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["rest"]["undo"] == "DELETE /things/{id}"
    assert main([*address, "connection", "show", "conn_cli"]) == 0
    assert "DELETE /things/{id} (id: id)" in capsys.readouterr().out


def test_a_time_to_live_is_bounded_and_set_from_the_command_line(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, client = fake_coordinator
    address = ["--address", coordinator.address]
    with pytest.raises(ClientError) as caught:
        client.put_scenario(
            "ttl",
            script="print hi",
            settings=scenario_pb2.ScenarioSettings(purge_after_seconds=10 * 366 * 86_400 + 1),
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "settings.purge_after_seconds" in caught.value.details
    client.put_scenario("ttl", script="print hi")
    assert main([*address, "scenario", "set-purge-after", "ttl", "--after", "7d", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["purge_after_seconds"] == 7 * 86_400
    assert client.get_scenario("ttl").settings.purge_after_seconds == 7 * 86_400
    assert main([*address, "scenario", "show", "ttl"]) == 0
    assert "604,800 s" in capsys.readouterr().out
    assert main([*address, "scenario", "set-purge-after", "ttl", "--after", "soon"]) == 2
    assert "not a duration such as 7d" in capsys.readouterr().err
    assert main([*address, "scenario", "set-purge-after", "ttl", "--after", "never"]) == 0
    capsys.readouterr()
    assert client.get_scenario("ttl").settings.purge_after_seconds == 0


def test_seedbed_run_purges_lists_them(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    coordinator, client = fake_coordinator
    address = ["--address", coordinator.address]
    assert main([*address, "run", "purges"]) == 0
    assert "no purge recorded" in capsys.readouterr().out
    run_id, _, _ = _seeded_run(coordinator, client, tmp_path)
    client.purge_run(run_id, dry_run=True)  # not recorded
    assert client.list_purges() == []
    client.purge_run(run_id)
    assert main([*address, "run", "purges"]) == 0
    out = capsys.readouterr().out
    assert "request" in out and "DONE" in out
    assert main([*address, "run", "purges", run_id, "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [p["state"] for p in document["purges"]] == ["PURGE_STATE_DONE"]
    assert [int(t["rows_deleted"]) for t in document["purges"][0]["result"]["targets"]] == [6, 3]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_rest_lists_purges_and_purges_a_run(store_url: str, tmp_path: Path) -> None:
    from tests.unit.test_rest_api import ADMIN, error_of

    settings = settings_for(store_url, tmp_path)
    with (
        running_in_thread(settings, FakeDispatcher()) as coordinator,
        Client(coordinator.address) as client,
        httpx.Client(base_url=f"http://{coordinator.rest_address}", headers=ADMIN, timeout=30) as http,
    ):
        run_id, _, _ = _seeded_run(coordinator, client, tmp_path)
        assert http.get("/v1/purges").json() == {"purges": []}
        answer = http.post(f"/v1/runs/{run_id}/purge")
        assert answer.status_code == 200, answer.text
        assert answer.json()["assets_deleted"] == 0 and answer.json()["rows_left"] == []
        listed = http.get("/v1/purges", params={"run_id": run_id}).json()["purges"]
        assert [(p["run_id"], p["trigger"], p["state"]) for p in listed] == [
            (run_id, "request", "PURGE_STATE_DONE")
        ]
        assert "500" in error_of(http.get("/v1/purges", params={"limit": 501}), 400)["message"]
        error_of(http.get("/v1/purges", params={"run_id": "run_0123456789abcdef"}), 404)
