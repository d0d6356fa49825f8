"""``validate_only`` on CreateScenario, UpdateScenario and PutTemplate, and the hidden placeholder
refused on save, through the real gRPC server and a SQLite store (fake dispatcher; templates are
validated in process): a validation makes every check of the call and answers what would be
stored, and nothing is written, whatever it finds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import access_pb2, scenario_pb2, template_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.reporters import HIDDEN
from tests.conftest import ADMIN_API_KEY, settings_for

SCRIPT = "print('v1')\n"
CUSTOMER = "id: tmpl_customer\nversion: 1\nfields:\n  id: {sequence: {start: 1}}\n"
HOOK = "https://hooks.example.com/services/T0K3N"
TOKEN = "Bearer chat-token-7f3a"


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[Any]:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coord:
        yield coord


@pytest.fixture
def admin(coordinator: Any) -> Iterator[Client]:
    with Client(coordinator.address, api_key=ADMIN_API_KEY) as client:
        yield client


def _user(coordinator: Any, admin: Client, user_id: str, role: int) -> Client:
    """A client of a new user holding ``role`` in the default project."""
    admin._call(admin._access.CreateUser, access_pb2.CreateUserRequest(user_id=user_id))
    admin._call(
        admin._access.SetMembership,
        access_pb2.SetMembershipRequest(user_id=user_id, project_key="default", role=role),
    )
    key = admin._call(admin._access.CreateApiKey, access_pb2.CreateApiKeyRequest(user_id=user_id)).secret
    return Client(coordinator.address, api_key=key)


def _refusal(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.code, caught.value.details


def _create(client: Client, **fields: Any) -> scenario_pb2.Scenario:
    request = scenario_pb2.CreateScenarioRequest(**fields)
    return client._call(client._scenarios.CreateScenario, request).scenario  # type: ignore[no-any-return]


def _update(client: Client, **fields: Any) -> scenario_pb2.Scenario:
    request = scenario_pb2.UpdateScenarioRequest(**fields)
    return client._call(client._scenarios.UpdateScenario, request).scenario  # type: ignore[no-any-return]


def _webhook_settings(url: str = HOOK, token: str = TOKEN) -> scenario_pb2.ScenarioSettings:
    return scenario_pb2.ScenarioSettings(
        timeout_seconds=600,
        reporters=[
            scenario_pb2.Reporter(
                id="chat",
                webhook=scenario_pb2.WebhookTarget(url=url, headers={"Authorization": token}),
            )
        ],
    )


def test_a_validated_creation_answers_the_scenario_and_writes_nothing(admin: Client) -> None:
    would_be = _create(
        admin,
        scenario_id="orders",
        name=" Orders ",
        script=SCRIPT,
        settings=_webhook_settings(),
        validate_only=True,
    )
    assert (would_be.id, would_be.name, would_be.revision, would_be.project_key) == (
        "scn_orders",
        "Orders",
        1,
        "default",
    )
    assert would_be.settings.timeout_seconds == 600 and would_be.settings.active
    assert would_be.settings.reporters[0].webhook.signing_secret.startswith("whsec_")
    assert would_be.last_modified_by == would_be.script_modified_by == would_be.effective_run_as != ""
    assert admin.list_scenarios() == []

    # What the real call would refuse, the validation refuses, and still writes nothing.
    cases = [
        ({"script": ""}, grpc.StatusCode.INVALID_ARGUMENT, "script"),
        (
            {"settings": scenario_pb2.ScenarioSettings(timeout_seconds=10**7)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "SEEDBED_MAX_TIMEOUT_SECONDS",
        ),
        (
            {"settings": _webhook_settings("http://127.0.0.1/x")},
            grpc.StatusCode.INVALID_ARGUMENT,
            "settings.reporters[0].webhook.url",
        ),
        (
            {"settings": scenario_pb2.ScenarioSettings(run_as="nobody")},
            grpc.StatusCode.INVALID_ARGUMENT,
            "nobody",
        ),
        ({"project_key": "nowhere"}, grpc.StatusCode.NOT_FOUND, "nowhere"),
    ]
    for change, code, words in cases:
        fields: dict[str, Any] = {"scenario_id": "orders", "script": SCRIPT, "validate_only": True, **change}
        found, details = _refusal(lambda fields=fields: _create(admin, **fields))
        assert (found, words in details) == (code, True), (change, found, details)
    assert admin.list_scenarios() == []

    # An id already taken is refused as the creation would refuse it.
    admin.put_scenario("scn_orders", script=SCRIPT)
    code, details = _refusal(lambda: _create(admin, scenario_id="orders", script=SCRIPT, validate_only=True))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "scn_orders" in details
    assert [s.revision for s in admin.list_scenarios()] == [1]


def test_a_validated_update_answers_the_would_be_scenario_and_checks_the_revision(
    admin: Client, coordinator: Any
) -> None:
    admin.put_scenario("scn_orders", script=SCRIPT, name="Orders", settings=_webhook_settings())
    stored = admin.get_scenario("scn_orders")

    would_be = _update(
        admin,
        scenario_id="scn_orders",
        script="print('v2')\n",
        settings=scenario_pb2.ScenarioSettings(timeout_seconds=900),
        expected_revision=1,
        validate_only=True,
    )
    assert (would_be.revision, would_be.name, would_be.script) == (2, "Orders", "print('v2')\n")
    assert would_be.settings.timeout_seconds == 900 and list(would_be.settings.reporters) == []
    assert would_be.create_time == stored.create_time
    assert admin.get_scenario("scn_orders") == stored  # nothing written

    # Only the name: the rest is the stored scenario.
    renamed = _update(admin, scenario_id="scn_orders", name="Orders v2", validate_only=True)
    assert (renamed.name, renamed.script, renamed.settings) == ("Orders v2", SCRIPT, stored.settings)

    code, details = _refusal(
        lambda: _update(admin, scenario_id="scn_orders", name="x", expected_revision=7, validate_only=True)
    )
    assert code == grpc.StatusCode.ABORTED and "expected revision 7, but it is at revision 1" in details
    code, details = _refusal(
        lambda: _update(
            admin,
            scenario_id="scn_orders",
            settings=_webhook_settings("ftp://hooks.example.com/x"),
            validate_only=True,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "settings.reporters[0].webhook.url" in details

    # Roles are checked as by the update itself.
    viewer = _user(coordinator, admin, "vera", access_pb2.ROLE_VIEWER)
    with viewer:
        code, _ = _refusal(lambda: _update(viewer, scenario_id="scn_orders", name="x", validate_only=True))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert admin.get_scenario("scn_orders") == stored


def test_a_validated_template_put_answers_the_template_and_writes_nothing(admin: Client) -> None:
    def put(source: str, **fields: Any) -> template_pb2.PutTemplateResponse:
        request = template_pb2.PutTemplateRequest(source=source, validate_only=True, **fields)
        return admin._call(admin._templates.PutTemplate, request)  # type: ignore[no-any-return]

    answer = put(CUSTOMER, expected_revision=0)
    assert answer.created and (answer.template.id, answer.template.revision) == ("tmpl_customer", 1)
    assert list(answer.template.field_names) == ["id"] and answer.template.digest
    assert admin.list_templates() == []

    code, details = _refusal(lambda: put("id: tmpl_bad\nversion: 1\nfields:\n  x: {nosuch: 1}\n"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "the template is invalid" in details
    code, _ = _refusal(lambda: put(CUSTOMER, expected_revision=3))
    assert code == grpc.StatusCode.ABORTED
    assert admin.list_templates() == []

    stored = admin.put_template(CUSTOMER)
    changed = CUSTOMER + "  email: {faker: email}\n"
    answer = put(changed, allow_update=True, expected_revision=1)
    assert not answer.created and answer.template.revision == 2
    assert list(answer.template.field_names) == ["id", "email"]
    assert answer.template.digest != stored.digest and answer.template.create_time == stored.create_time
    code, details = _refusal(lambda: put(changed, allow_update=True, expected_revision=0))
    assert code == grpc.StatusCode.ABORTED and "already exists (revision 1)" in details
    code, details = _refusal(lambda: put(changed, allow_update=False))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "update allowed" in details
    assert admin.get_template("tmpl_customer") == stored

    # What a validation answers is what the put then stores.
    saved = admin.put_template(changed, expected_revision=1)
    assert (saved.digest, saved.revision, saved.canonical_json) == (
        answer.template.digest,
        2,
        answer.template.canonical_json,
    )


def test_the_hidden_placeholder_is_refused_on_save_and_the_real_values_stay(
    admin: Client, coordinator: Any
) -> None:
    admin.put_scenario("scn_orders", script=SCRIPT, settings=_webhook_settings())
    stored = admin.get_scenario("scn_orders")
    viewer = _user(coordinator, admin, "vera", access_pb2.ROLE_VIEWER)
    with viewer:
        seen = viewer.get_scenario("scn_orders").settings
    assert seen.reporters[0].webhook.url == f"https://hooks.example.com/{HIDDEN}"
    assert seen.reporters[0].webhook.headers["Authorization"] == HIDDEN

    # An editor saving back what the viewer read (a pull, a REST GET) is refused, field by field.
    url_only = _webhook_settings(url=seen.reporters[0].webhook.url)
    header_only = _webhook_settings(token=HIDDEN)
    encoded = _webhook_settings(url="https://hooks.example.com/%28hidden%3A%20needs%20role%20EDITOR%29")
    secret = _webhook_settings()
    secret.reporters[0].webhook.signing_secret = HIDDEN
    cases = [
        (seen, "settings.reporters[0].webhook.url"),
        (url_only, "settings.reporters[0].webhook.url"),
        (encoded, "settings.reporters[0].webhook.url"),
        (header_only, "settings.reporters[0].webhook.headers['Authorization']"),
        (secret, "settings.reporters[0].webhook.signing_secret"),
    ]
    editor = _user(coordinator, admin, "eddie", access_pb2.ROLE_EDITOR)
    with editor:
        for settings, field in cases:
            code, details = _refusal(lambda s=settings: editor.update_scenario_settings("scn_orders", s))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, details
            assert details.startswith(f"{field}: "), details
            assert "placeholder" in details and "role EDITOR" in details
        code, details = _refusal(
            lambda: _create(editor, scenario_id="copy", script=SCRIPT, settings=url_only)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "Send the real URL" in details
    assert admin.get_scenario("scn_orders") == stored
    assert [s.id for s in admin.list_scenarios()] == ["scn_orders"]
