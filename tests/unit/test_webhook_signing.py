"""Standard Webhooks signatures on webhook reports: the signing secret's form, generation, keeping
and rotation on save, hiding below EDITOR; and deliveries from a real coordinator to a receiver on
loopback that verifies every request with the ``standardwebhooks`` library, across retries."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from seedbed.api.v1 import access_pb2, access_pb2_grpc, run_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.reporters import (
    HIDDEN,
    ReporterSpec,
    check_signing_secret,
    hide_reporter_secrets,
    new_signing_secret,
    validate_reporters,
)
from seedbed.coordinator.reporting import ReportSender, signature_headers, webhook_message_id
from seedbed.coordinator.store import ScenarioSettingsValue
from tests.conftest import auth_metadata, eventually, settings_for

SECRET_FIELD = "settings.reporters[0].webhook.signing_secret"


def _secret(size: int, *, padded: bool = True) -> str:
    encoded = base64.b64encode(bytes(range(size))).decode()
    return "whsec_" + (encoded if padded else encoded.rstrip("="))


def _hook(reporter_id: str = "hook", url: str = "https://hooks.example.com/x", **kw: Any) -> Any:
    return scenario_pb2.Reporter(id=reporter_id, webhook=scenario_pb2.WebhookTarget(url=url, **kw))


def _saved_secret(saved: dict[str, Any]) -> str:
    return str(saved["webhook"]["signing_secret"])


# -- the secret on save ----------------------------------------------------------------------------


def test_a_generated_secret_is_whsec_and_base64_of_32_random_bytes() -> None:
    first, second = new_signing_secret(), new_signing_secret()
    assert first != second
    for secret in (first, second):
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
        assert check_signing_secret(secret, "f") == secret
    (hook, mail) = validate_reporters(
        [_hook(), scenario_pb2.Reporter(email=scenario_pb2.EmailTarget(recipients=["a@x.org"]))]
    )
    assert check_signing_secret(_saved_secret(hook), "f")
    assert "signing_secret" not in json.dumps(mail)


@pytest.mark.parametrize("secret", [_secret(24), _secret(32, padded=False), _secret(64)])
def test_a_well_formed_secret_is_saved_as_given(secret: str) -> None:
    (saved,) = validate_reporters([_hook(signing_secret=secret)])
    assert _saved_secret(saved) == secret


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ("s3cret-but-not-a-key", "must be 'whsec_'"),
        ("whsec_", "must be 'whsec_'"),
        ("whsec_not base64 at all", "must be 'whsec_'"),
        ("whsec_abcde", "must be 'whsec_'"),  # 5 characters of base64 decode to nothing whole
        (_secret(32).removeprefix("whsec_"), "must be 'whsec_'"),
        (_secret(16), "this one decodes to 16 bytes"),
        (_secret(65), "this one decodes to 65 bytes"),
    ],
)
def test_a_malformed_secret_is_refused_naming_the_field(secret: str, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_reporters([_hook(signing_secret=secret)])
    message = str(info.value)
    assert info.value.field == SECRET_FIELD and message.startswith(f"{SECRET_FIELD}: ")
    assert fragment in message and "24..64 random bytes" in message and "leave it empty" in message
    if secret != "whsec_":
        assert secret.removeprefix("whsec_") not in message  # a secret, even malformed, is not echoed


def test_an_empty_secret_keeps_the_current_one_and_a_new_value_rotates_it() -> None:
    current = validate_reporters([_hook("hook"), _hook("other")])
    kept = _saved_secret(current[0])

    # A definition without secrets (as exported) applied back: each reporter keeps its own key.
    again = validate_reporters([_hook("hook"), _hook("other")], current=current)
    assert [_saved_secret(r) for r in again] == [_saved_secret(r) for r in current]
    specs = [ReporterSpec.from_json(r) for r in current]
    assert _saved_secret(validate_reporters([_hook("hook")], current=specs)[0]) == kept

    rotated = _secret(40)
    (saved,) = validate_reporters([_hook("hook", signing_secret=rotated)], current=current)
    assert _saved_secret(saved) == rotated

    # Another id, or no current reporters at all: a new key.
    (renamed,) = validate_reporters([_hook("renamed")], current=current)
    (fresh,) = validate_reporters([_hook("hook")])
    assert len({_saved_secret(renamed), _saved_secret(fresh), kept}) == 3

    # A reporter stored before secrets existed gets one on its next save.
    legacy = ({"id": "hook", "webhook": {"url": "https://hooks.example.com/x"}},)
    (upgraded,) = validate_reporters([_hook("hook")], current=legacy)
    assert check_signing_secret(_saved_secret(upgraded), "f")


@pytest.mark.parametrize("name", ["webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE"])
def test_the_standard_webhooks_headers_are_reserved(name: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        validate_reporters([_hook(headers={name: "x"})])
    assert "set by Seedbed" in str(info.value) and info.value.field == "settings.reporters[0].webhook.headers"


def test_hiding_replaces_the_secret() -> None:
    (saved,) = validate_reporters([_hook()])
    message = ReporterSpec.from_json(saved).message
    hide_reporter_secrets([message])
    assert message.webhook.signing_secret == HIDDEN


# -- signing ---------------------------------------------------------------------------------------


def test_the_id_is_stable_and_each_try_gets_its_own_timestamp_and_signature() -> None:
    secret = new_signing_secret()
    signer = Webhook(secret)
    body = json.dumps({"run_id": "run_1", "text": 'ü " \\'}, ensure_ascii=False).encode()
    msg_id = webhook_message_id("run_1:hook:RUN_FINISHED")
    assert msg_id == webhook_message_id("run_1:hook:RUN_FINISHED")
    assert re.fullmatch(r"msg_[0-9a-f]{32}", msg_id)
    assert msg_id != webhook_message_id("run_1:hook:RUN_STARTED")

    now = time.time()
    first = signature_headers(signer, msg_id, body, now=now)
    second = signature_headers(signer, msg_id, body, now=now + 1.5)
    assert first["webhook-id"] == second["webhook-id"] == msg_id
    assert int(second["webhook-timestamp"]) == int(now + 1.5) != int(first["webhook-timestamp"])
    assert first["webhook-signature"] != second["webhook-signature"]
    assert first["webhook-signature"].startswith("v1,")
    for headers in (first, second):
        assert Webhook(secret).verify(body, headers) == json.loads(body)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"run_1", b"run_2"), first)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**first, "webhook-id": webhook_message_id("other")})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(body, first)
    with pytest.raises(WebhookVerificationError):  # receivers refuse a stale timestamp
        Webhook(secret).verify(body, signature_headers(signer, msg_id, body, now=now - 600))
    assert set(first) == {"webhook-id", "webhook-timestamp", "webhook-signature"}


# -- deliveries from a coordinator -----------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers ``statuses`` in turn (then 200), keeping each
    request's headers and raw body; a 429 asks for a wait of ``retry_after`` seconds."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    retry_after: str = "1"
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def requests(self, key: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.received if h.get("Idempotency-Key") == key]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.received.append((dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", state.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/seedbed"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    """A real coordinator (fake dispatcher, SQLite store) whose webhooks may reach loopback."""
    settings = settings_for(
        f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}",
        tmp_path,
        reporter_initial_backoff_seconds=0.01,
        reporter_max_tries=3,
        reporter_timeout_seconds=5,
        webhook_allowed_hosts=["127.0.0.1"],
    )
    with running_in_thread(settings, FakeDispatcher()) as coord, Client(coord.address) as client:
        yield coord, client


def _reports(client: Client, run_id: str, count: int) -> list[run_pb2.ReporterDelivery]:
    def done() -> list[run_pb2.ReporterDelivery]:
        reports = list(client.get_run(run_id).reports)
        assert len(reports) == count and all(r.status != "SENDING" for r in reports), reports
        return reports

    return eventually(done)  # type: ignore[no-any-return]


def _stored_reporters(client: Client, scenario: str) -> dict[str, scenario_pb2.Reporter]:
    reporters = client._call(
        client._scenarios.GetScenario, scenario_pb2.GetScenarioRequest(scenario_id=scenario)
    ).scenario.settings.reporters
    return {r.id: r for r in reporters}


def test_every_try_is_signed_and_verifies_at_the_receiver(
    coordinator: tuple[Any, Client], receiver: Receiver
) -> None:
    _, client = coordinator
    chosen = _secret(32)
    receiver.statuses = [429]  # the first try of the first request waits a second, then succeeds
    reporters = [
        _hook("chosen", receiver.url, signing_secret=chosen),
        _hook("generated", receiver.url, body_template='{"text": "${run_id} ${state}"}'),
    ]
    client.put_scenario(
        "signed", script="print hi", settings=scenario_pb2.ScenarioSettings(reporters=reporters)
    )
    stored = _stored_reporters(client, "signed")
    assert stored["chosen"].webhook.signing_secret == chosen
    generated = stored["generated"].webhook.signing_secret
    assert check_signing_secret(generated, "f") and generated != chosen

    run = client.wait(client.run("signed").run_id)
    reports = _reports(client, run.id, 2)
    assert {(r.reporter_id, r.status) for r in reports} == {
        ("chosen", "DELIVERED"),
        ("generated", "DELIVERED"),
    }
    assert sorted(r.tries for r in reports) == [1, 2]

    secrets = {"chosen": chosen, "generated": generated}
    for reporter_id, secret in secrets.items():
        key = f"{run.id}:{reporter_id}:RUN_FINISHED"
        tries = receiver.requests(key)
        assert len(tries) == next(r.tries for r in reports if r.reporter_id == reporter_id)
        for headers, body in tries:
            assert run.id in json.dumps(Webhook(secret).verify(body, headers))
            assert headers["webhook-id"] == webhook_message_id(key)
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(body + b" ", headers)
            other = next(s for r, s in secrets.items() if r != reporter_id)
            with pytest.raises(WebhookVerificationError):
                Webhook(other).verify(body, headers)

    # The retried delivery: one id, a timestamp and a signature of each try's own.
    (retried,) = [r.reporter_id for r in reports if r.tries == 2]
    (first, _), (second, _) = receiver.requests(f"{run.id}:{retried}:RUN_FINISHED")
    assert first["webhook-id"] == second["webhook-id"]
    assert int(second["webhook-timestamp"]) > int(first["webhook-timestamp"])
    assert first["webhook-signature"] != second["webhook-signature"]


def test_a_reporter_without_a_secret_is_never_sent_unsigned(
    coordinator: tuple[Any, Client], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Saves generate a secret and the store migration gave one to older reporters, so none lacks
    one; should one still (a bug), its report fails with an error instead of going out unsigned."""
    coord, client = coordinator
    caplog.set_level(logging.WARNING, logger="seedbed.coordinator.reporting")
    client.put_scenario("keyless", script="print hi")
    run = client.wait(client.run("keyless").run_id)
    # As stored before secrets: no key. The signed one beside it is still delivered, its header
    # stored before the Standard Webhooks names were reserved replaced by Seedbed's own.
    keyless = {"id": "keyless", "webhook": {"url": receiver.url}}
    secret = new_signing_secret()
    forged = {"Webhook-Signature": "v1,forged"}
    signed = {"id": "signed", "webhook": {"url": receiver.url, "headers": forged, "signing_secret": secret}}
    record = asyncio.run_coroutine_threadsafe(coord.store.get_run(run.id), coord.loop).result()
    record = dataclasses.replace(record, settings=ScenarioSettingsValue(reporters=(keyless, signed)))
    sender = ReportSender(coord.store, coord.settings)
    asyncio.run_coroutine_threadsafe(sender.run_finished(record), coord.loop).result()

    reports = {r.reporter_id: r for r in _reports(client, run.id, 2)}
    failed = reports["keyless"]
    assert (failed.status, failed.tries) == ("FAILED", 0)
    assert "signing_secret: none" in failed.error and "never sent unsigned" in failed.error
    assert receiver.requests(f"{run.id}:keyless:RUN_FINISHED") == []
    assert reports["signed"].status == "DELIVERED"
    ((headers, body),) = receiver.requests(f"{run.id}:signed:RUN_FINISHED")
    assert "forged" not in json.dumps(headers)
    Webhook(secret).verify(body, headers)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("reporter keyless has no signing secret" in r.getMessage() for r in errors)


def test_a_malformed_secret_is_refused_over_the_api(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    settings = scenario_pb2.ScenarioSettings(reporters=[_hook(signing_secret="hunter2")])
    with pytest.raises(ClientError) as info:
        client.put_scenario("bad-secret", script="print hi", settings=settings)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details.startswith(SECRET_FIELD) and "hunter2" not in info.value.details


def _viewer_key(address: str) -> str:
    with grpc.insecure_channel(address) as channel:
        stub = access_pb2_grpc.AccessServiceStub(channel)
        stub.CreateUser(access_pb2.CreateUserRequest(user_id="viewer"), metadata=auth_metadata())
        stub.SetMembership(
            access_pb2.SetMembershipRequest(
                user_id="viewer", project_key="default", role=access_pb2.ROLE_VIEWER
            ),
            metadata=auth_metadata(),
        )
        answer = stub.CreateApiKey(access_pb2.CreateApiKeyRequest(user_id="viewer"), metadata=auth_metadata())
        return str(answer.secret)


def test_a_viewer_does_not_see_the_secret(coordinator: tuple[Any, Client]) -> None:
    coord, client = coordinator
    settings = scenario_pb2.ScenarioSettings(reporters=[_hook("hook")])
    client.put_scenario("shown", script="print hi", settings=settings)
    secret = _stored_reporters(client, "shown")["hook"].webhook.signing_secret
    assert check_signing_secret(secret, "f")
    with Client(coord.address, api_key=_viewer_key(coord.address)) as viewer:
        seen = _stored_reporters(viewer, "shown")["hook"].webhook
        assert seen.signing_secret == HIDDEN
        listed = viewer._call(
            viewer._scenarios.ListScenarios, scenario_pb2.ListScenariosRequest(project_key="default")
        )
        assert secret not in str(listed) and HIDDEN in str(listed)
