"""What an attempt's worker token reads of templates (TemplateService.GetTemplate), attacked through
the real coordinator (real store, gRPC on loopback, the fake executor holding the attempt open).

The token is the one the coordinator put in the attempt's spec. A script that got hold of it (or
a worker of another tenant's run) must read only versions of templates its run's project may use,
only by version (never "the latest now", which would undo the run's fixed versions), only while the
attempt lasts, and nothing else of the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import access_pb2, run_pb2, scenario_pb2, template_pb2, template_pb2_grpc
from seedbed.client import Client, ClientError
from seedbed.coordinator.access import Role
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.server import running_in_thread
from seedbed.coordinator.store import Store
from seedbed.coordinator.store.catalog import CatalogScope
from tests.conftest import eventually, settings_for

A_ROWS = "id: tmpl_a_rows\nversion: 1\nfields:\n  id: {sequence: {start: 1}}\n  owner: {const: a-secret-1}\n"
B_ROWS = "id: tmpl_b_rows\nversion: 1\nfields:\n  id: {sequence: {start: 1}}\n  owner: {const: b-own-1}\n"
NO_RETRY = scenario_pb2.RetryPolicy(disabled=True)


@pytest.fixture
def held(store_url: str, tmp_path: Any) -> Iterator[tuple[Any, Client, str, str]]:
    """(coordinator, admin, the worker token of a running attempt of project pb, its run id).
    pa owns tmpl_a_rows (versions 1 and 2), pb owns tmpl_b_rows (versions 1 and 2)."""
    dispatcher = FakeDispatcher()
    with (
        running_in_thread(settings_for(store_url, tmp_path), dispatcher) as coord,
        Client(coord.address) as admin,
    ):
        for key in ("pa", "pb"):
            admin.create_project(key, name=key)
        for source, project in ((A_ROWS, "pa"), (B_ROWS, "pb")):
            admin.put_template(source, project_key=project)
            admin.put_template(source.replace("-1}", "-2}"), project_key=project)
        admin.put_scenario(
            "holder",
            script="sleep 60\n",
            project_key="pb",
            settings=scenario_pb2.ScenarioSettings(retry_policy=NO_RETRY, timeout_seconds=120),
        )
        run_id = admin.run("holder").run_id
        eventually(lambda: admin.get_run(run_id).state == run_pb2.RUN_STATE_RUNNING)
        [spec] = dispatcher.specs
        assert spec.coordinator_token, "the attempt's spec carries no worker token"
        try:
            yield coord, admin, spec.coordinator_token, run_id
        finally:
            admin.abort(run_id, "test over")
            admin.wait(run_id)


def _get(address: str, token: str, template_id: str, version: int = 0) -> tuple[grpc.StatusCode, Any]:
    with grpc.insecure_channel(address) as channel:
        stub = template_pb2_grpc.TemplateServiceStub(channel)
        try:
            answer = stub.GetTemplate(
                template_pb2.GetTemplateRequest(template_id=template_id, version=version),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            )
        except grpc.RpcError as exc:
            return exc.code(), exc.details()
    return grpc.StatusCode.OK, answer.template


def test_a_worker_token_reads_a_version_of_its_own_projects_template(
    held: tuple[Any, Client, str, str],
) -> None:
    coord, _, token, _ = held
    code, got = _get(coord.address, token, "tmpl_b_rows@1")
    assert code == grpc.StatusCode.OK, got
    assert (got.id, got.revision) == ("tmpl_b_rows", 1) and "b-own-1" in got.source
    code, got = _get(coord.address, token, "tmpl_b_rows", version=2)
    assert code == grpc.StatusCode.OK and "b-own-2" in got.source


@pytest.mark.parametrize("name, version", [("tmpl_a_rows@1", 0), ("tmpl_a_rows", 2), ("a_rows@1", 0)])
def test_a_worker_token_finds_no_template_of_another_project(
    held: tuple[Any, Client, str, str], name: str, version: int
) -> None:
    coord, _, token, _ = held
    code, details = _get(coord.address, token, name, version)
    assert code == grpc.StatusCode.NOT_FOUND, details
    assert "a-secret" not in str(details)


def test_a_worker_token_reads_no_template_without_a_version(held: tuple[Any, Client, str, str]) -> None:
    # The latest version is not the run's: the spec carries the run's own, fixed at its creation.
    coord, _, token, _ = held
    for name in ("tmpl_b_rows", "tmpl_a_rows"):
        code, details = _get(coord.address, token, name)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, details
        assert "a worker reads template versions only" in details


def test_a_worker_token_calls_nothing_else_of_the_catalog(held: tuple[Any, Client, str, str]) -> None:
    coord, _, token, _ = held
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(coord.address) as channel:
        stub = template_pb2_grpc.TemplateServiceStub(channel)
        calls: list[Callable[[], Any]] = [
            lambda: stub.ListTemplateVersions(
                template_pb2.ListTemplateVersionsRequest(template_id="tmpl_b_rows"), metadata=metadata
            ),
            lambda: stub.ListTemplates(template_pb2.ListTemplatesRequest(), metadata=metadata),
            lambda: stub.PreviewTemplate(
                template_pb2.PreviewTemplateRequest(template_id="tmpl_b_rows@1", count=1), metadata=metadata
            ),
            lambda: stub.DeleteTemplate(
                template_pb2.DeleteTemplateRequest(template_id="tmpl_b_rows"), metadata=metadata
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_worker_token_reads_nothing_once_its_run_ended(held: tuple[Any, Client, str, str]) -> None:
    coord, admin, token, run_id = held
    admin.abort(run_id, "ended early")
    admin.wait(run_id)
    code, _ = _get(coord.address, token, "tmpl_b_rows@1")
    assert code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


def test_a_worker_token_reads_no_version_pushed_in_another_project_under_a_reused_id(
    held: tuple[Any, Client, str, str],
) -> None:
    # pa deletes tmpl_a_rows; pb creates a template of the same id (version 3). Versions 1 and 2
    # were pa's documents: neither pb's runs nor pb's members may read them.
    coord, admin, token, _ = held
    admin.delete_template("tmpl_a_rows")
    admin.put_template(A_ROWS.replace("a-secret-1", "b-reused"), project_key="pb")
    code, got = _get(coord.address, token, "tmpl_a_rows@3")
    assert code == grpc.StatusCode.OK and "b-reused" in got.source
    for version in (1, 2):
        code, details = _get(coord.address, token, f"tmpl_a_rows@{version}")
        assert code == grpc.StatusCode.NOT_FOUND, details
        assert "a-secret" not in str(details)


# -- the same reused id, read by people and by a run's spec -------------------------------------------


def test_a_reused_id_does_not_open_the_earlier_owners_versions_to_people(
    held: tuple[Any, Client, str, str],
) -> None:
    coord, admin, _, _ = held
    admin.create_user("vb")
    admin.set_membership("vb", "pb", access_pb2.Role.Name(int(Role.VIEWER)))  # type: ignore[arg-type]
    with Client(coord.address, api_key=admin.create_api_key(user_id="vb").secret) as vb:
        admin.delete_template("tmpl_a_rows")
        admin.put_template(A_ROWS.replace("a-secret-1", "b-reused"), project_key="pb", shared=True)
        assert "b-reused" in vb.get_template("tmpl_a_rows@3").source
        assert [v.version for v in vb.list_template_versions("tmpl_a_rows")] == [3]
        for version in (1, 2):
            with pytest.raises(ClientError) as refused:
                vb.get_template(f"tmpl_a_rows@{version}")
            assert refused.value.code == grpc.StatusCode.NOT_FOUND
            with pytest.raises(ClientError):
                vb.preview_template(f"tmpl_a_rows@{version}", count=1)
    # pa's own members (here the admin) still read pa's history, as pa's.
    old = admin.get_template("tmpl_a_rows@2")
    assert "a-secret-2" in old.source and old.project_key == "pa" and not old.shared


async def test_a_run_never_uses_a_version_of_an_earlier_template_of_its_id(store_url: str) -> None:
    # pa pushes tmpl_x and deletes it; a run of pb is created; then pb creates tmpl_x. The run's
    # attempts (a retry after the re-creation) must not get pa's document: at the run's creation
    # pb had no tmpl_x.
    store = await Store.open(store_url)
    try:
        base = datetime.now(UTC) - timedelta(hours=1)

        async def put(project: str, owner: str, at: datetime) -> None:
            await store.templates.put(
                "tmpl_x",
                project_key=project,
                shared=None,
                source=owner,
                fmt="yaml",
                canonical={"id": "tmpl_x", "owner": owner},
                description="",
                field_names=["id"],
                allow_update=True,
                at=at,
            )

        await put("pa", "a-secret", base)
        await store.templates.delete("tmpl_x", "pa")
        run_created = base + timedelta(minutes=10)
        await put("pb", "b-own", base + timedelta(minutes=20))
        used = await store.templates.for_run(CatalogScope.of_project("pb"), run_created, {})
        assert used == []
        later = await store.templates.for_run(CatalogScope.of_project("pb"), base + timedelta(minutes=30), {})
        assert [(v.template_id, v.version, v.canonical["owner"]) for v in later] == [("tmpl_x", 2, "b-own")]
    finally:
        await store.aclose()
