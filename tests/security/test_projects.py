"""Projects do not leak into each other: templates, workspace files and connections belong to a
project (or are shared by an admin of it), through the real coordinator, Ray and Docker sandboxes.

The attack: ea is an EDITOR of project pa only; eb an EDITOR of pb, whose scenarios read pb's
template, workspace file and connection. Were the catalog installation-wide, ea would overwrite
what pb's runs read, read pb's objects, and a scenario of pa would receive pb's connection (its
secret included) and read pb's files.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import access_pb2, connection_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator.access import Role

B_TEMPLATE = (
    "id: tmpl_b_rows\nversion: 1\nfields:\n  id: {sequence: {start: 1}}\n  owner: {const: b-original}\n"
)
A_OVERWRITE = B_TEMPLATE.replace("b-original", "ea-was-here")

# Tries each of pb's objects and prints what happened, so one run shows all three.
PROBE = """\
from seedbed.sdk import Seedbed

dm = Seedbed()
for name, call in [
    ("template", lambda: dm.generate("tmpl_b_rows", count=1)[0]["owner"]),
    ("file", lambda: dm.workspace.read_text("b/data.txt")),
    ("connection", lambda: dm.connection("conn_b").write("probe.jsonl", [{"id": 1}], format="jsonl")),
]:
    try:
        print(name, "REACHED", call())
    except Exception as exc:
        print(name, "REFUSED", type(exc).__name__, exc)
"""


def _user(admin: Client, address: str, user_id: str, project: str, role: Role) -> Client:
    admin.create_user(user_id)
    admin.set_membership(user_id, project, access_pb2.Role.Name(int(role)))  # type: ignore[arg-type]
    return Client(address, api_key=admin.create_api_key(user_id=user_id).secret)


def _connection(connection_id: str, project: str, **kw: Any) -> connection_pb2.CreateConnectionRequest:
    return connection_pb2.CreateConnectionRequest(
        connection_id=connection_id, kind=connection_pb2.CONNECTION_KIND_FILE, project_key=project, **kw
    )


@pytest.fixture
def tenants(coordinator: tuple[Any, Client]) -> Iterator[tuple[Client, Client, Client]]:
    """admin (superuser), ea (EDITOR in pa), eb (EDITOR in pb); pb owns tmpl_b_rows, the file
    b/data.txt and conn_b; pa owns conn_a."""
    coord, admin = coordinator
    for key in ("pa", "pb"):
        admin.create_project(key, name=key)
    ea = _user(admin, coord.address, "ea", "pa", Role.EDITOR)
    eb = _user(admin, coord.address, "eb", "pb", Role.EDITOR)
    eb.put_template(B_TEMPLATE, project_key="pb")
    eb.upload_file("b/data.txt", b"b-original", project_key="pb")
    admin.create_connection(_connection("conn_b", "pb"))
    admin.create_connection(_connection("conn_a", "pa"))
    yield admin, ea, eb
    ea.close()
    eb.close()


def _refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.code, info.value.details


def _probe(client: Client, project: str) -> str:
    scenario = client.get_project(project).create_scenario(f"probe_{project}", "probe", PROBE)
    run = scenario.run_and_wait(no_fail=True)
    assert run is not None and run.outcome == "SUCCESS", run and run.get_log()
    return run.get_log()


def test_an_editor_of_another_project_can_neither_change_nor_read_its_catalog(
    tenants: tuple[Client, Client, Client],
) -> None:
    _, ea, eb = tenants
    not_found = grpc.StatusCode.NOT_FOUND
    # Changing: pb's ids are taken (without naming pb), and pb itself is unknown to ea.
    code, details = _refused(lambda: ea.put_template(A_OVERWRITE, allow_update=True, project_key="pa"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "pb" not in details
    code, details = _refused(lambda: ea.upload_file("b/data.txt", b"ea", overwrite=True, project_key="pa"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "pb" not in details
    assert _refused(lambda: ea.put_template(A_OVERWRITE, project_key="pb"))[0] == not_found
    assert (
        _refused(lambda: ea.upload_file("b/data.txt", b"ea", overwrite=True, project_key="pb"))[0]
        == not_found
    )
    assert _refused(lambda: ea.delete_template("tmpl_b_rows"))[0] == not_found
    assert _refused(lambda: ea.delete_file("b/data.txt"))[0] == not_found
    assert _refused(lambda: ea.test_connection("conn_b"))[0] == not_found
    # Reading: as if none of it existed.
    assert _refused(lambda: ea.get_template("tmpl_b_rows"))[0] == not_found
    assert _refused(lambda: ea.preview_template("tmpl_b_rows"))[0] == not_found
    assert _refused(lambda: ea.download_file("b/data.txt"))[0] == not_found
    assert _refused(lambda: ea.get_connection("conn_b"))[0] == not_found
    assert _refused(lambda: ea.list_templates("pb"))[0] == not_found
    assert ea.list_templates() == []
    assert ea.list_files() == []
    assert [c.id for c in ea.list_connections()] == ["conn_a"]

    # pb's runs read what eb put there, unchanged.
    log = _probe(eb, "pb")
    assert "template REACHED b-original" in log
    assert "file REACHED b-original" in log
    assert "connection REACHED 1" in log
    assert eb.get_template("tmpl_b_rows").revision == 1


def test_a_run_receives_only_its_own_projects_catalog(tenants: tuple[Client, Client, Client]) -> None:
    _, ea, _ = tenants
    log = _probe(ea, "pa")
    assert "REACHED" not in log, log
    lines = {line.split(" ", 1)[0]: line for line in log.splitlines()}
    assert "REFUSED UnknownTemplate" in lines["template"]
    assert "template 'tmpl_b_rows' is not defined (known: none)" in lines["template"]
    assert "REFUSED WorkspaceError" in lines["file"] and "'b/data.txt' not found" in lines["file"]
    # Another project's connection is not even named among the known ones.
    assert "REFUSED UnknownConnection" in lines["connection"]
    assert "connection 'conn_b' is not defined (known: conn_a)" in lines["connection"]


def test_what_an_admin_shares_is_read_and_used_everywhere_but_changed_only_in_its_project(
    tenants: tuple[Client, Client, Client],
) -> None:
    admin, ea, eb = tenants
    # Sharing needs ADMIN in the owning project: eb is an editor.
    code, details = _refused(lambda: eb.put_template(B_TEMPLATE, project_key="pb", shared=True))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "needs role ADMIN in project 'pb'" in details
    assert admin.put_template(B_TEMPLATE, project_key="pb", shared=True).shared
    admin.upload_file("b/data.txt", b"b-original", overwrite=True, project_key="pb", shared=True)
    admin.create_connection(_connection("conn_b", "pb", allow_update=True, shared=True))
    # An update by an editor leaves the flag alone.
    assert eb.put_template(B_TEMPLATE, project_key="pb").shared

    seen = ea.get_template("tmpl_b_rows")
    assert (seen.project_key, seen.shared) == ("pb", True)
    assert [t.id for t in ea.list_templates("pa")] == ["tmpl_b_rows"]
    assert ea.download_file("b/data.txt")[1] == b"b-original"
    assert ea.get_connection("conn_b").shared
    code, details = _refused(lambda: ea.delete_template("tmpl_b_rows"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "needs role EDITOR in 'pb'" in details
    assert _refused(lambda: ea.delete_file("b/data.txt"))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert (
        _refused(lambda: ea.put_template(A_OVERWRITE, project_key="pa"))[0] == grpc.StatusCode.ALREADY_EXISTS
    )

    log = _probe(ea, "pa")
    assert "template REACHED b-original" in log
    assert "file REACHED b-original" in log
    assert "connection REACHED 1" in log
