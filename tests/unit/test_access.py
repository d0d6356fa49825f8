"""Access control: API keys, roles per project, run_as and which connections a run may use."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import yaml
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seedbed.api.v1 import (
    access_pb2,
    run_pb2,
    run_pb2_grpc,
    scenario_pb2,
    scenario_pb2_grpc,
    workspace_pb2,
    workspace_pb2_grpc,
)
from seedbed.client import Client, ClientError
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.access import Principal, Role, acting_as, key_id_of, worker_token
from seedbed.coordinator.connections import run_snapshot
from seedbed.coordinator.errors import NotFoundError, PermissionDeniedError
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.store.catalog import ConnectionRecord
from seedbed.worker.agent._connections import to_spec
from seedbed.worker.agent._errors import UnknownConnection
from tests.conftest import ADMIN_API_KEY, auth_metadata, settings_for

OK_SCRIPT = "print('hello')\n"
ROLES = {"viewer": Role.VIEWER, "runner": Role.RUNNER, "editor": Role.EDITOR, "padmin": Role.ADMIN}


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}"


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[Any]:
    with running_in_thread(settings_for(_sqlite(tmp_path), tmp_path), FakeDispatcher()) as coordinator:
        yield coordinator


def access(client: Client, method: str, request: Any) -> Any:
    return client._call(getattr(client._access, method), request)


def scenarios(client: Client, method: str, request: Any) -> Any:
    return client._call(getattr(client._scenarios, method), request)


def runs(client: Client, method: str, request: Any) -> Any:
    return client._call(getattr(client._runs, method), request)


def make_user(admin: Client, user_id: str, project: str | None = None, role: Role | None = None) -> str:
    """Create a user (with a role in a project); return a new API key of theirs."""
    access(admin, "CreateUser", access_pb2.CreateUserRequest(user_id=user_id))
    if project and role:
        access(
            admin,
            "SetMembership",
            access_pb2.SetMembershipRequest(user_id=user_id, project_key=project, role=int(role)),
        )
    return str(access(admin, "CreateApiKey", access_pb2.CreateApiKeyRequest(user_id=user_id)).secret)


@pytest.fixture
def team(coordinator: Any) -> Iterator[dict[str, Client]]:
    """Project p1 with one user per role, an outsider (viewer of 'default' only) and scenario scn_s1
    in p1 created by the admin."""
    clients: dict[str, Client] = {"admin": Client(coordinator.address, api_key=ADMIN_API_KEY)}
    admin = clients["admin"]
    access(admin, "CreateProject", access_pb2.CreateProjectRequest(key="p1", name="Project one"))
    for user, role in ROLES.items():
        clients[user] = Client(coordinator.address, api_key=make_user(admin, user, "p1", role))
    clients["outsider"] = Client(
        coordinator.address, api_key=make_user(admin, "outsider", "default", Role.EDITOR)
    )
    scenarios(
        admin,
        "CreateScenario",
        scenario_pb2.CreateScenarioRequest(scenario_id="s1", script=OK_SCRIPT, project_key="p1"),
    )
    yield clients
    for client in clients.values():
        client.close()


def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.code, info.value.details


# -- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer sbk_0123456789abcdef_" + "x" * 40),)])
def test_missing_or_unknown_key_is_unauthenticated_for_unary_and_streaming(
    coordinator: Any, metadata: tuple[tuple[str, str], ...]
) -> None:
    with grpc.insecure_channel(coordinator.address) as channel:
        calls = [
            lambda: scenario_pb2_grpc.ScenarioServiceStub(channel).ListScenarios(
                scenario_pb2.ListScenariosRequest(), metadata=metadata
            ),
            lambda: list(
                run_pb2_grpc.RunServiceStub(channel).StreamRunLogs(
                    run_pb2.StreamRunLogsRequest(run_id="run_x"), metadata=metadata
                )
            ),
            lambda: list(
                run_pb2_grpc.RunServiceStub(channel).WatchRuns(
                    run_pb2.WatchRunsRequest(run_ids=["run_x"]), metadata=metadata
                )
            ),
            lambda: workspace_pb2_grpc.WorkspaceServiceStub(channel).UploadFile(
                iter([workspace_pb2.UploadFileRequest(header=workspace_pb2.UploadHeader(path="a"))]),
                metadata=metadata,
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "admin-api-key" in (info.value.details() or "")
        # Health checks stay open to probes.
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_revoked_key_is_unauthenticated(coordinator: Any) -> None:
    with Client(coordinator.address, api_key=ADMIN_API_KEY) as admin:
        secret = make_user(admin, "u1", "default", Role.VIEWER)
        with Client(coordinator.address, api_key=secret) as user:
            me = access(user, "WhoAmI", access_pb2.WhoAmIRequest())
            assert me.user.id == "u1" and me.api_key_id == key_id_of(secret)
            access(user, "RevokeApiKey", access_pb2.RevokeApiKeyRequest(api_key_id=me.api_key_id))
            code, details = code_of(lambda: access(user, "WhoAmI", access_pb2.WhoAmIRequest()))
            assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in details
            with grpc.insecure_channel(coordinator.address) as channel, pytest.raises(grpc.RpcError) as info:
                list(
                    run_pb2_grpc.RunServiceStub(channel).StreamRunLogs(
                        run_pb2.StreamRunLogsRequest(run_id="run_x"), metadata=auth_metadata(secret)
                    )
                )
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_keys_are_hashed_at_rest_and_last_use_is_recorded(coordinator: Any, tmp_path: Path) -> None:
    with Client(coordinator.address, api_key=ADMIN_API_KEY) as admin:
        secret = make_user(admin, "u1", "default", Role.VIEWER)
        with Client(coordinator.address, api_key=secret) as user:
            access(user, "WhoAmI", access_pb2.WhoAmIRequest())
        listed = access(admin, "ListApiKeys", access_pb2.ListApiKeysRequest(user_id="u1")).api_keys
    assert [k.id for k in listed] == [key_id_of(secret)]
    assert listed[0].HasField("last_used_time")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'seedbed.db'}")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM api_keys"))]
    engine.dispose()
    stored = next(r for r in rows if r["user_id"] == "u1")
    assert stored["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    secret_part = secret.split("_", 2)[2]
    assert not any(secret_part in str(value) for row in rows for value in row.values())


def test_generated_admin_key_is_written_0600_and_survives_restart(tmp_path: Path) -> None:
    settings = settings_for(_sqlite(tmp_path), tmp_path, admin_api_key="")
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        path = settings.data_dir / "admin-api-key"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        key = path.read_text().strip()
        with Client(coordinator.address, api_key=key) as admin:
            me = access(admin, "WhoAmI", access_pb2.WhoAmIRequest())
            assert me.user.id == "admin" and me.user.superuser
    with running_in_thread(settings, FakeDispatcher()) as coordinator:
        assert path.read_text().strip() == key  # users exist: nothing generated again
        with Client(coordinator.address, api_key=key) as admin:
            assert access(admin, "WhoAmI", access_pb2.WhoAmIRequest()).user.id == "admin"


def test_configured_admin_key_works_after_restart(tmp_path: Path) -> None:
    chosen = "my-operator-chosen-admin-key-123"
    settings = settings_for(_sqlite(tmp_path), tmp_path, admin_api_key=chosen)
    for _ in range(2):
        with (
            running_in_thread(settings, FakeDispatcher()) as coordinator,
            Client(coordinator.address, api_key=chosen) as admin,
        ):
            assert access(admin, "WhoAmI", access_pb2.WhoAmIRequest()).user.superuser
            keys = access(admin, "ListApiKeys", access_pb2.ListApiKeysRequest()).api_keys
            assert len(keys) == 1
    assert not (settings.data_dir / "admin-api-key").exists()


# -- roles -----------------------------------------------------------------------------------------


def test_viewer_reads_but_cannot_run(team: dict[str, Client]) -> None:
    viewer = team["viewer"]
    assert scenarios(viewer, "GetScenario", scenario_pb2.GetScenarioRequest(scenario_id="s1")).scenario.id
    code, details = code_of(lambda: viewer.run("s1", {}))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "RUNNER" in details and "VIEWER" in details


def test_runner_runs_and_aborts_but_cannot_edit(team: dict[str, Client]) -> None:
    runner = team["runner"]
    fire = runner.run("s1", {})
    assert fire.triggered_by == "runner"
    run = runs(runner, "GetRun", run_pb2.GetRunRequest(run_id=fire.run_id)).run
    assert run.triggered_by == "runner" and run.run_as == "admin"
    runs(runner, "AbortRun", run_pb2.AbortRunRequest(run_id=fire.run_id))
    update = scenario_pb2.UpdateScenarioRequest(scenario_id="s1", script="print(2)\n")
    code, details = code_of(lambda: scenarios(runner, "UpdateScenario", update))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "EDITOR" in details
    code, _ = code_of(lambda: runs(runner, "PurgeRun", run_pb2.PurgeRunRequest(run_id=fire.run_id)))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_editor_edits_and_becomes_run_as_but_cannot_reassign_it(team: dict[str, Client]) -> None:
    editor = team["editor"]
    update = scenario_pb2.UpdateScenarioRequest(scenario_id="s1", script="print(3)\n")
    updated = scenarios(editor, "UpdateScenario", update).scenario
    assert updated.last_modified_by == "editor" and updated.effective_run_as == "editor"
    request = scenario_pb2.UpdateScenarioRequest(
        scenario_id="s1", settings=scenario_pb2.ScenarioSettings(run_as="runner")
    )
    code, details = code_of(lambda: scenarios(editor, "UpdateScenario", request))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "ADMIN" in details
    # Setting it to yourself needs no more than EDITOR.
    request.settings.run_as = "editor"
    assert scenarios(editor, "UpdateScenario", request).scenario.effective_run_as == "editor"


def test_project_admin_reassigns_run_as_and_runs_act_as_that_user(team: dict[str, Client]) -> None:
    padmin = team["padmin"]
    request = scenario_pb2.UpdateScenarioRequest(
        scenario_id="s1", settings=scenario_pb2.ScenarioSettings(run_as="runner")
    )
    assert scenarios(padmin, "UpdateScenario", request).scenario.effective_run_as == "runner"
    request.settings.run_as = "editor"
    scenario = scenarios(padmin, "UpdateScenario", request).scenario
    assert scenario.effective_run_as == "editor" and scenario.last_modified_by == "padmin"
    fire = padmin.run("s1", {})
    assert runs(padmin, "GetRun", run_pb2.GetRunRequest(run_id=fire.run_id)).run.run_as == "editor"
    # The user must exist and have a role in the project.
    for user in ("nobody", "outsider"):
        request.settings.run_as = user
        code, details = code_of(lambda: scenarios(padmin, "UpdateScenario", request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and user in details


def test_other_projects_objects_are_not_found(team: dict[str, Client]) -> None:
    fire = team["admin"].run("s1", {})
    outsider = team["outsider"]
    for call in (
        lambda: scenarios(outsider, "GetScenario", scenario_pb2.GetScenarioRequest(scenario_id="s1")),
        lambda: outsider.run("s1", {}),
        lambda: runs(outsider, "GetRun", run_pb2.GetRunRequest(run_id=fire.run_id)),
        lambda: runs(outsider, "GetTriggerFire", run_pb2.GetTriggerFireRequest(fire_id=fire.id)),
        lambda: runs(outsider, "AbortRun", run_pb2.AbortRunRequest(run_id=fire.run_id)),
        lambda: list(outsider.stream_logs(fire.run_id)),
    ):
        code, details = code_of(call)
        assert code == grpc.StatusCode.NOT_FOUND, details
    listed = scenarios(outsider, "ListScenarios", scenario_pb2.ListScenariosRequest()).scenarios
    assert "scn_s1" not in [s.id for s in listed]
    assert runs(outsider, "ListRuns", run_pb2.ListRunsRequest()).runs == []
    code, _ = code_of(lambda: runs(outsider, "ListRuns", run_pb2.ListRunsRequest(project_key="p1")))
    assert code == grpc.StatusCode.NOT_FOUND
    mine = runs(team["viewer"], "ListRuns", run_pb2.ListRunsRequest(project_key="p1")).runs
    assert [r.id for r in mine] == [fire.run_id]


def test_create_scenario_in_unknown_project_is_not_found(team: dict[str, Client]) -> None:
    request = scenario_pb2.CreateScenarioRequest(scenario_id="s2", script=OK_SCRIPT, project_key="nope")
    code, details = code_of(lambda: scenarios(team["admin"], "CreateScenario", request))
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in details
    created = scenarios(
        team["outsider"],
        "CreateScenario",
        scenario_pb2.CreateScenarioRequest(scenario_id="s3", script=OK_SCRIPT),
    ).scenario
    assert created.project_key == "default" and created.effective_run_as == "outsider"


def test_access_service_rights(team: dict[str, Client]) -> None:
    editor = team["editor"]
    code, _ = code_of(lambda: access(editor, "CreateProject", access_pb2.CreateProjectRequest(key="p2")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(lambda: access(editor, "GetUser", access_pb2.GetUserRequest(user_id="runner")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(
        lambda: access(
            editor,
            "SetMembership",
            access_pb2.SetMembershipRequest(user_id="viewer", project_key="p1", role=access_pb2.ROLE_ADMIN),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(lambda: team["viewer"].run("s1", {}))  # its key is now trusted for a while…
    assert code == grpc.StatusCode.PERMISSION_DENIED
    user = access(
        team["padmin"],
        "SetMembership",
        access_pb2.SetMembershipRequest(user_id="viewer", project_key="p1", role=access_pb2.ROLE_RUNNER),
    ).user
    assert [(m.project_key, m.role) for m in user.memberships] == [("p1", access_pb2.ROLE_RUNNER)]
    assert team["viewer"].run("s1", {}).run_id  # …and the new role applies at once all the same
    projects = access(team["outsider"], "ListProjects", access_pb2.ListProjectsRequest()).projects
    assert [p.key for p in projects] == ["default"]
    code, _ = code_of(lambda: access(team["outsider"], "GetProject", access_pb2.GetProjectRequest(key="p1")))
    assert code == grpc.StatusCode.NOT_FOUND


def test_an_editor_cannot_change_the_script_of_a_scenario_running_as_someone_else(
    team: dict[str, Client],
) -> None:
    """Otherwise an editor's code would run with the run_as user's rights (their connections)."""
    pin = scenario_pb2.UpdateScenarioRequest(
        scenario_id="s1", settings=scenario_pb2.ScenarioSettings(run_as="padmin")
    )
    scenarios(team["padmin"], "UpdateScenario", pin)
    swap = scenario_pb2.UpdateScenarioRequest(scenario_id="s1", script="print('mine')\n")
    code, details = code_of(lambda: scenarios(team["editor"], "UpdateScenario", swap))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "'padmin'" in details and "ADMIN" in details
    assert (
        scenarios(
            team["admin"], "GetScenario", scenario_pb2.GetScenarioRequest(scenario_id="s1")
        ).scenario.script
        == OK_SCRIPT
    )
    # Taking the scenario over (run_as yourself, or empty) in the same change is allowed.
    swap.settings.run_as = "editor"
    changed = scenarios(team["editor"], "UpdateScenario", swap).scenario
    assert (changed.script, changed.effective_run_as) == ("print('mine')\n", "editor")


def test_run_as_borrows_the_rights_of_project_members_only(team: dict[str, Client]) -> None:
    # A project admin may not add a user to the project (then run as them), nor run as a superuser
    # who is no member.
    add = access_pb2.SetMembershipRequest(user_id="outsider", project_key="p1", role=access_pb2.ROLE_VIEWER)
    code, details = code_of(lambda: access(team["padmin"], "SetMembership", add))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "superuser" in details
    request = scenario_pb2.UpdateScenarioRequest(
        scenario_id="s1", settings=scenario_pb2.ScenarioSettings(run_as="admin")
    )
    code, details = code_of(lambda: scenarios(team["padmin"], "UpdateScenario", request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "'admin' has no role in project 'p1'" in details
    # The superuser adds members.
    access(team["admin"], "SetMembership", add)
    request.settings.run_as = "outsider"
    assert scenarios(team["padmin"], "UpdateScenario", request).scenario.effective_run_as == "outsider"


def test_watching_a_hidden_id_answers_like_an_unknown_one(team: dict[str, Client]) -> None:
    hidden = team["admin"].run("s1", {})
    outsider = team["outsider"]
    request = run_pb2.WatchRunsRequest(fire_ids=[hidden.id, "fire_bogus"], run_ids=[hidden.run_id])
    with pytest.raises(grpc.RpcError) as info:
        list(outsider._runs.WatchRuns(request))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    details = info.value.details()
    assert hidden.id in details and "fire_bogus" in details and hidden.run_id in details


def test_webhook_secrets_are_hidden_below_editor(team: dict[str, Client]) -> None:
    hook = scenario_pb2.Reporter(
        id="hook",
        webhook=scenario_pb2.WebhookTarget(
            url="https://hooks.example.com/services/T000/SECRET", headers={"Authorization": "Bearer s3cret"}
        ),
    )
    update = scenario_pb2.UpdateScenarioRequest(
        scenario_id="s1", settings=scenario_pb2.ScenarioSettings(reporters=[hook])
    )
    scenarios(team["editor"], "UpdateScenario", update)
    get = scenario_pb2.GetScenarioRequest(scenario_id="s1")
    seen = scenarios(team["editor"], "GetScenario", get).scenario.settings.reporters[0].webhook
    assert seen.url.endswith("/SECRET") and seen.headers["Authorization"] == "Bearer s3cret"
    for role in ("viewer", "runner"):
        (reporter,) = scenarios(team[role], "GetScenario", get).scenario.settings.reporters
        listed = scenarios(team[role], "ListScenarios", scenario_pb2.ListScenariosRequest(project_key="p1"))
        for shown in (reporter.webhook, listed.scenarios[0].settings.reporters[0].webhook):
            assert "SECRET" not in shown.url and shown.url.startswith("https://hooks.example.com/")
            assert "s3cret" not in shown.headers["Authorization"]


# -- the domain rules and the snapshot filter ------------------------------------------------------


def test_require_hides_foreign_projects_and_names_roles() -> None:
    user = Principal("u1", roles={"p1": Role.RUNNER})
    user.require("p1", Role.RUNNER, "run", "run_1")
    with pytest.raises(NotFoundError):
        user.require("p2", Role.VIEWER, "run", "run_2")
    with pytest.raises(PermissionDeniedError, match="needs role EDITOR and 'u1' has RUNNER"):
        user.require("p1", Role.EDITOR, "run", "run_1")
    Principal("root", superuser=True).require("p9", Role.ADMIN, "run", "run_9")


def test_worker_token_opens_only_with_the_same_key() -> None:
    box = SecretBox(Fernet.generate_key())
    from seedbed.coordinator.access import worker_principal

    token = worker_token(box, "run_1", attempt=1, timeout_seconds=60)
    assert worker_principal(box, token).worker_run_id == "run_1"
    with pytest.raises(Exception, match="not valid"):
        worker_principal(SecretBox(Fernet.generate_key()), token)
    with acting_as(Principal("w", worker_run_id="run_1")) as principal:
        assert principal.projects() == frozenset()


def _connection(allowed: tuple[str, ...], box: SecretBox) -> ConnectionRecord:
    at = datetime.now(UTC)
    return ConnectionRecord(
        id="conn_x",
        kind="postgresql",
        description="",
        url="postgresql://u@db/x",
        rest={},
        secret_kind="stored",
        secret_ref="",
        secret_cipher=box.seal("hunter2"),
        created_at=at,
        updated_at=at,
        allowed_users=allowed,
    )


def test_snapshot_of_a_connection_the_run_may_not_use_carries_no_credentials() -> None:
    box = SecretBox(Fernet.generate_key())
    rec = _connection(("u2",), box)
    refused = run_snapshot(rec, box, "u1")
    assert refused.refused_reason == (
        "connection 'conn_x' may not be used by runs acting as 'u1' (allowed: u2); ask an admin to add "
        "the user or change the scenario's run_as"
    )
    assert not refused.url and not refused.HasField("secret") and "hunter2" not in str(refused)
    with pytest.raises(UnknownConnection, match="may not be used by runs acting as 'u1'"):
        to_spec(refused)
    allowed = run_snapshot(rec, box, "u2")
    assert allowed.secret.value == "hunter2" and not allowed.refused_reason
    assert run_snapshot(_connection((), box), box, "anyone").secret.value == "hunter2"


def test_cli_access_commands(
    coordinator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seedbed.cli import main

    monkeypatch.setenv("SEEDBED_CONFIG_FILE", str(tmp_path / "profiles.yaml"))  # no saved profile
    monkeypatch.setenv("SEEDBED_ADDRESS", coordinator.address)
    monkeypatch.setenv("SEEDBED_API_KEY", ADMIN_API_KEY)

    def cli(*argv: str, output: str = "json") -> Any:
        assert main([*argv, "-o", output]) == 0
        out = capsys.readouterr().out
        return json.loads(out) if output == "json" else yaml.safe_load(out)

    who = cli("whoami")
    assert who["user"]["id"] == "admin" and set(who) == {"user", "api_key_id"}
    assert cli("project", "create", "p7", "--description", "seven")["key"] == "p7"
    assert cli("project", "show", "p7")["project"]["description"] == "seven"
    assert cli("user", "create", "u7", "--email", "u7@example.com")["id"] == "u7"
    user = cli("member", "set", "u7", "p7", "runner")
    assert user["memberships"] == [{"project_key": "p7", "role": "ROLE_RUNNER"}]
    assert cli("user", "show", "u7", output="yaml")["email"] == "u7@example.com"
    assert [u["id"] for u in cli("member", "list", "--project", "p7")] == ["u7"]
    assert {u["id"] for u in cli("user", "list")} == {"admin", "u7"}
    assert {p["key"] for p in cli("project", "list")} == {"default", "p7"}
    created = cli("key", "create", "--user", "u7", "--description", "ci")
    assert set(created) == {"api_key", "secret"} and created["api_key"]["user_id"] == "u7"
    assert cli("whoami", "--api-key", created["secret"])["user"]["id"] == "u7"
    assert [p["key"] for p in cli("--api-key", created["secret"], "project", "list")] == ["p7"]
    keys = cli("key", "list", "--user", "u7")
    assert [(k["id"], k["description"], k["revoked"]) for k in keys] == [
        (created["api_key"]["id"], "ci", False)
    ]
    assert cli("key", "revoke", created["api_key"]["id"])["revoked"] is True
    # A revoked key: permission denied (6), with what to do.
    assert main(["whoami", "--api-key", created["secret"]]) == 6
    err = capsys.readouterr().err
    assert "revoked" in err and "seedbed login" in err
    assert cli("member", "delete", "u7", "p7")["memberships"] == []

    # Tables for people: the secret alone on stdout, what it is on stderr.
    assert main(["key", "create", "--description", "laptop"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("sbk_") and len(out.splitlines()) == 1 and "shown only now" in err
    assert main(["member", "set", "u7", "p7", "editor"]) == 0
    assert "p7:editor" in capsys.readouterr().out
    assert main(["project", "show", "p7"]) == 0
    assert "your role" in capsys.readouterr().out

    # Not found: 5; a refusal the CLI can check itself (a role that does not exist): usage, 2.
    assert main(["user", "show", "nobody"]) == 5
    assert main(["project", "show", "nowhere"]) == 5
    assert main(["member", "set", "u7", "p7", "owner"]) == 2
    capsys.readouterr()

    monkeypatch.setenv("SEEDBED_API_KEY", ADMIN_API_KEY)
    created_line = [
        "connection", "create", "conn_u7", "--kind", "file", "--allowed-user", "u7", "--allowed-user", "admin"
    ]  # fmt: skip
    assert main(created_line) == 0
    assert "runs acting as: u7, admin" in capsys.readouterr().out
    assert cli("connection", "show", "conn_u7")["allowed_users"] == ["u7", "admin"]


def test_cli_without_a_key_says_how_to_give_one(
    coordinator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seedbed.cli import main

    monkeypatch.setenv("SEEDBED_CONFIG_FILE", str(tmp_path / "profiles.yaml"))
    monkeypatch.delenv("SEEDBED_API_KEY", raising=False)
    assert main(["whoami", "--address", coordinator.address]) == 6
    err = capsys.readouterr().err
    assert "UNAUTHENTICATED" in err and "seedbed login" in err and "SEEDBED_API_KEY" in err
    assert main(["key", "list", "--address", coordinator.address]) == 6


def test_cli_old_access_spellings_still_work_and_say_the_new_one(
    coordinator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from seedbed.cli import main

    monkeypatch.setenv("SEEDBED_CONFIG_FILE", str(tmp_path / "profiles.yaml"))
    monkeypatch.setenv("SEEDBED_API_KEY", ADMIN_API_KEY)
    # --json was on every access command: now -o json.
    assert main(["--address", coordinator.address, "whoami", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["user"]["id"] == "admin" and "`--json` is now `-o json`" in err
    assert main(["--address", coordinator.address, "project", "list", "--json"]) == 0
    assert [p["key"] for p in json.loads(capsys.readouterr().out)] == ["default"]
