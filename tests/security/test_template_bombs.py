"""Finding 3 of issue 10: template size bombs.

A few KB of nested `compute` fields render hundreds of megabytes per row, in the trusted worker (the
agent serving `generate`) or in the catalog's Ray tasks (validate, preview). The defences tried here
through the real coordinator, Ray and Docker: an estimate of every field's rendered size refuses
such a template when it is pushed (INVALID_ARGUMENT naming the field, its estimate, the cap and the
setting); a cap while rendering stops what the estimate cannot see (values that come from another
template through a `ref`) before the text is built; previewing an unsaved document needs EDITOR; and
catalog tasks hold a bounded Ray resource, so a flood of previews cannot occupy every worker.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import ray

from seedbed.api.v1 import access_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator.access import Role

pytestmark = pytest.mark.integration

# 100 characters, then x100 (10 KB), x100 (1 MB), x200 (200 MB): one row of `d` is 200 MB of text,
# from a document of under 2 KB.
BOMB = f"""\
id: tmpl_bomb
version: 1
fields:
  a: {{const: "{"x" * 100}"}}
  b: {{compute: "{"{a}" * 100}"}}
  c: {{compute: "{"{b}" * 100}"}}
  d: {{compute: "{"{c}" * 200}"}}
"""

# No field over the per-field cap, but 40 copies of a 30 KB value make a row of 1.2 MB.
WIDE = "id: tmpl_wide\nversion: 1\nfields:\n  a: {const: " + '"' + "w" * 30_000 + '"}\n'
WIDE += "".join(f'  c{i}: {{compute: "{{a}}"}}\n' for i in range(40))

# What no estimate of tmpl_amp alone can know: its `ref` values are 60,000 characters long (under the
# per-field cap), and `twice` doubles them past it.
BIG = 'id: tmpl_big\nversion: 1\nfields:\n  x: {const: "' + "y" * 60_000 + '"}\n'
AMP = """\
id: tmpl_amp
version: 1
fields:
  r: {ref: {template: tmpl_big, field: x}}
  twice: {compute: "{r}{r}"}
"""
SMALL = """\
id: tmpl_small
version: 1
fields:
  n: {sequence: {}}
  label: {compute: "item {n}"}
"""


def _error(call: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def test_a_nested_compute_bomb_is_refused_when_pushed(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    assert len(BOMB) < 2048
    error = _error(lambda: client.put_template(BOMB))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error
    # The first field over the cap is named, with its estimate, the cap and the setting to change.
    assert "fields.c.compute" in error.details, error.details
    assert "1,000,000 bytes" in error.details, error.details
    assert "65,536 bytes" in error.details and "SEEDBED_MAX_TEMPLATE_FIELD_BYTES" in error.details
    assert "fields.d.compute" in error.details, error.details
    assert client.list_templates() == []
    # Previewing it as an unsaved document is refused the same way, before any row is rendered.
    error = _error(lambda: client.preview_template(source=BOMB, count=1))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "fields.c.compute" in error.details


def test_a_row_over_the_row_cap_is_refused_when_pushed(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    error = _error(lambda: client.put_template(WIDE))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "fields" in error.details and "SEEDBED_MAX_TEMPLATE_ROW_BYTES" in error.details, error.details
    assert "1,048,576 bytes" in error.details, error.details
    assert client.list_templates() == []


def test_text_past_the_cap_fails_while_rendering_and_the_worker_lives_on(
    coordinator: tuple[Any, Client], docker_client: Any
) -> None:
    _, client = coordinator
    client.put_template(BIG)
    client.put_template(AMP)  # passes the estimate: a ref's values are not known before the run
    client.put_template(SMALL)
    error = _error(lambda: client.preview_template("tmpl_amp", count=3))
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION, error
    for part in ("tmpl_amp", "'twice'", "120,000", "65,536", "SEEDBED_MAX_TEMPLATE_FIELD_BYTES"):
        assert part in error.details, (part, error.details)
    # The worker that refused it serves the next preview.
    assert client.preview_template("tmpl_small", count=2) == [
        {"n": 1, "label": "item 1"},
        {"n": 2, "label": "item 2"},
    ]
    # The same in a run: the agent's generate fails the script with the same clear error.
    script = (
        "from seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\n"
        "dm.generate('tmpl_big', count=2)\n"
        "dm.generate('tmpl_amp', count=2)\n"
    )
    client.put_scenario(
        "amp",
        script=script,
        settings=scenario_pb2.ScenarioSettings(overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT),
    )
    run = client.wait(client.run("amp", {}).run_id)
    assert run.state == run_pb2.RUN_STATE_FAILED, run
    assert run.first_error.reason == run_pb2.FAILURE_REASON_SCRIPT_ERROR, run.first_error
    assert "'twice'" in run.first_error.message and "65,536" in run.first_error.message, run.first_error


def _user(admin: Client, user_id: str, role: Role) -> str:
    admin._call(admin._access.CreateUser, access_pb2.CreateUserRequest(user_id=user_id))  # type: ignore[attr-defined]
    admin._call(
        admin._access.SetMembership,  # type: ignore[attr-defined]
        access_pb2.SetMembershipRequest(user_id=user_id, project_key="default", role=int(role)),
    )
    reply = admin._call(admin._access.CreateApiKey, access_pb2.CreateApiKeyRequest(user_id=user_id))  # type: ignore[attr-defined]
    return str(reply.secret)


def test_previewing_an_unsaved_document_needs_editor(coordinator: tuple[Any, Client]) -> None:
    coord, admin = coordinator
    admin.put_template(SMALL)
    draft = SMALL.replace("tmpl_small", "tmpl_draft")
    for user_id, role in (("viewer", Role.VIEWER), ("runner", Role.RUNNER)):
        with Client(coord.address, api_key=_user(admin, user_id, role)) as user:
            error = _error(lambda user=user: user.preview_template(source=draft, count=1))
            assert error.code == grpc.StatusCode.PERMISSION_DENIED, error
            assert "EDITOR" in error.details, error.details
            # Previewing a stored template stays open to every role.
            assert user.preview_template("tmpl_small", count=1) == [{"n": 1, "label": "item 1"}]
    with Client(coord.address, api_key=_user(admin, "editor", Role.EDITOR)) as editor:
        assert editor.preview_template(source=draft, count=1) == [{"n": 1, "label": "item 1"}]
    # A superuser previews drafts too.
    assert admin.preview_template(source=draft, count=1) == [{"n": 1, "label": "item 1"}]


class _Hog:
    """Holds one catalog slot for as long as it lives (what a flood of slow previews would do)."""

    def ready(self) -> bool:
        return True


def test_catalog_tasks_take_a_bounded_resource(coordinator: tuple[Any, Client]) -> None:
    from seedbed.worker.catalog import CATALOG_RESOURCE

    _, client = coordinator
    slots = int(ray.cluster_resources().get(CATALOG_RESOURCE, 0))
    assert slots >= 1, ray.cluster_resources()
    client.put_template(SMALL)
    hog = ray.remote(num_cpus=0, resources={CATALOG_RESOURCE: 1.0})(_Hog)
    hogs = [hog.remote() for _ in range(slots)]
    try:
        assert ray.get([h.ready.remote() for h in hogs]) == [True] * slots
        assert ray.available_resources().get(CATALOG_RESOURCE, 0) == 0
        # Every slot is taken: a preview waits for one instead of taking another worker.
        with Client(client.address, timeout=3, retries=0) as impatient:
            error = _error(lambda: impatient.preview_template("tmpl_small"))
        assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED, error
    finally:
        for h in hogs:
            ray.kill(h)
    assert client.preview_template("tmpl_small", count=1) == [{"n": 1, "label": "item 1"}]
