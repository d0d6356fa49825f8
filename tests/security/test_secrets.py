"""Finding 10: secrets reach what they must not.

The attacks go through the real path (gRPC → Ray → Docker sandbox → agent → target):

- a REST target that reflects the Authorization header back (raw, base64, URL- and JSON-escaped) in
  its answers and error bodies hands the connection's secret to the script;
- REST paths with matrix parameters (`;`, `%3b`), encoded dots and slashes or another host;
- a SQL URL's `?password=` is stored and shown as is;
- a user not among a connection's `allowed_users` tests it anyway;
- a workspace token outlives its run, or never expires, or is signed with the raw secret key;
- workspace reads through any codec (`unicode_escape`, `utf-16`, …);
- file connections write without bound;
- `secret.file` names the coordinator's own key file, which a run then sends to a REST target;
- a REST target that trickles its answer keeps a call alive past every per-read timeout.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import grpc
import psycopg
import pytest
import sqlalchemy as sa

from seedbed.api.v1 import (
    access_pb2,
    connection_pb2,
    run_pb2,
    scenario_pb2,
    workspace_pb2,
    workspace_pb2_grpc,
)
from seedbed.client import Client, ClientError, LogEvent
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.access import Role, worker_token
from seedbed.coordinator.secrets import SecretBox
from tests.conftest import eventually, pg_admin_url, settings_for

pytestmark = pytest.mark.integration

NO_RETRY = scenario_pb2.RetryPolicy(disabled=True)
# Every encoding of it differs from the others, and each non-base64 one still reads "Pa55".
PASSWORD = 'Pa55 w/rd+"é&=1xyz'
USER = "svc"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- a loopback REST target ---------------------------------------------------------------------------


@dataclass
class _Seen:
    paths: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    trickle_ended: threading.Event = field(default_factory=threading.Event)


def _reflections(auth: str) -> dict[str, Any]:
    """What a careless API echoes back: the header, its parts, and the password in every encoding."""
    scheme, _, credentials = auth.partition(" ")
    decoded = base64.b64decode(credentials).decode() if scheme == "Basic" else credentials
    password = decoded.partition(":")[2] or decoded
    pct = quote(password, safe="")
    return {
        "authorization": auth,
        "credentials": credentials,
        "decoded": decoded,
        "password": password,
        "b64_password": _b64(password),
        "b64_urlsafe": base64.urlsafe_b64encode(password.encode()).decode().rstrip("="),
        "b64_embedded": _b64(f"somebody:{password}"),
        "quote": pct,
        "quote_default": quote(password),
        "quote_plus": quote_plus(password),
        "quote_lower_hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), pct),
        "json_escaped": json.dumps(password)[1:-1],
        "json_document": json.dumps({"auth": auth}),
        "query": f"https://api.example.com/cb?token={quote_plus(password)}&x=1",
        password: ["as a key", {"nested": [password]}],
    }


def _handler(seen: _Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _trickle(self, headers_too: bool) -> None:
            try:
                if headers_too:
                    # The status line and headers themselves, one byte at a time.
                    for byte in (
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 10_000
                    ):
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.2)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(100_000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            finally:
                seen.trickle_ended.set()
                self.close_connection = True

        def _serve(self) -> None:
            seen.paths.append(self.path)
            auth = self.headers.get("Authorization", "")
            seen.authorizations.append(auth)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path.startswith("/api/slow-headers"):
                return self._trickle(headers_too=True)
            if self.path.startswith("/api/slow"):
                return self._trickle(headers_too=False)
            body = json.dumps(_reflections(auth), ensure_ascii=False).encode()
            if self.path.startswith("/api/fail"):
                # An error page: the excerpt a RestError carries. Not JSON: a plain text dump.
                text = "\n".join(f"{k}: {v}" for k, v in _reflections(auth).items() if isinstance(v, str))
                return self._answer(400, text.encode(), "text/plain; charset=utf-8")
            return self._answer(200, body)

        do_GET = _serve
        do_POST = _serve

    return Handler


@pytest.fixture
def echo_api() -> Iterator[tuple[str, _Seen]]:
    seen = _Seen()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", seen
    finally:
        server.shutdown()
        server.server_close()


def _rest_connection(client: Client, base_url: str, *, secret: str = BASIC, timeout: int = 10) -> None:
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_echo",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(
                base_url=base_url, auth_header="Authorization", timeout_seconds=timeout, idempotent=True
            ),
            secret=connection_pb2.SecretSource(value=secret),
            allow_update=True,
        )
    )


def _run(
    client: Client, script: str, params: dict[str, str] | None = None, *, timeout_seconds: int = 60
) -> tuple[run_pb2.Run, str]:
    client.put_scenario(
        "secrets",
        script=script,
        settings=scenario_pb2.ScenarioSettings(
            overlap_policy=scenario_pb2.OVERLAP_POLICY_ALLOW_CONCURRENT,
            retry_policy=NO_RETRY,
            timeout_seconds=timeout_seconds,
        ),
    )
    run = client.wait(client.run("secrets", params or {}).run_id)
    logs = "\n".join(e.line.text for e in client.stream_logs(run.id, follow=False) if isinstance(e, LogEvent))
    return run, logs


def _leaks(text: str) -> list[str]:
    """Every form of the secret found in ``text``."""
    found = [name for name, value in _reflections(BASIC).items() if isinstance(value, str) and value in text]
    return found + (["Pa55"] if "Pa55" in text else [])


# -- 1. REST replies are scrubbed -----------------------------------------------------------------------

ECHO = """
import json
from seedbed.sdk import RestError, Seedbed
api = Seedbed().connection("conn_echo")
print("GET", json.dumps(api.get("echo"), ensure_ascii=False))
print("POST", json.dumps(api.post("echo", [{"a": 1}, {"a": 2}]), ensure_ascii=False))
try:
    api.get("fail")
except RestError as exc:
    print("ERROR", exc)
try:
    api.post("fail", [{"a": 1}])
except RestError as exc:
    print("ERROR", exc)
"""


def test_rest_replies_reach_the_script_scrubbed_of_the_secret(
    coordinator: tuple[Any, Client], echo_api: tuple[str, _Seen]
) -> None:
    _, client = coordinator
    base_url, seen = echo_api
    _rest_connection(client, base_url)
    run, logs = _run(client, ECHO)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert seen.authorizations and set(seen.authorizations) == {BASIC}  # the target did get it
    assert "GET {" in logs and "POST [" in logs and "ERROR" in logs and "***" in logs, logs
    assert _leaks(logs) == [], logs
    # The script still sees the rest of the answer.
    assert '"as a key"' in logs or "as a key" in logs


# -- 2. smuggling paths are refused -------------------------------------------------------------------

SMUGGLING_PATHS = [
    "users;jsessionid=1",
    "users%3bx=1",
    "users%3Bx=1",
    "a/%2e%2e/b",
    "a/%2E%2e/admin",
    "a%2fb",
    "a%5cb",
    "a\\b",
    "../admin",
    "a/%252e%252e/b",
    "//evil.example/x",
    "http://evil.example/x",
    "https:evil.example",
]

PATHS = """
import json
from seedbed.sdk import InvalidArgument, Seedbed, params
api = Seedbed().connection("conn_echo")
for path in json.loads(params["paths"]):
    try:
        api.get(path)
    except InvalidArgument as exc:
        print("REFUSED", path, "|", exc)
    else:
        print("SENT", path)
"""


def test_rest_paths_that_smuggle_parameters_or_leave_the_base_url_are_refused(
    coordinator: tuple[Any, Client], echo_api: tuple[str, _Seen]
) -> None:
    _, client = coordinator
    base_url, seen = echo_api
    _rest_connection(client, base_url)
    run, logs = _run(client, PATHS, {"paths": json.dumps(SMUGGLING_PATHS)})
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert "SENT" not in logs, logs
    for path in SMUGGLING_PATHS:
        assert f"REFUSED {path} |" in logs, logs
    assert seen.paths == [], seen.paths
    assert "invalid path 'users;jsessionid=1'" in logs, logs


# -- 3. a password in the URL's query moves into the secret ---------------------------------------------


@pytest.fixture
def pg_role(pg_database: str) -> Iterator[tuple[str, str, str]]:
    """A login role with a password of its own on a fresh database: (user, password, database URL)."""
    user, password = f"sb_q_{secrets.token_hex(4)}", f"s3cret-{secrets.token_hex(6)}"
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
    try:
        yield user, password, pg_database
    finally:
        with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
            conn.execute(f'REVOKE ALL ON DATABASE "{sa.make_url(pg_database).database}" FROM {user}')
            conn.execute(f"DROP ROLE IF EXISTS {user}")


def test_a_password_in_the_query_is_stored_as_the_secret_and_still_connects(
    coordinator: tuple[Any, Client], pg_role: tuple[str, str, str]
) -> None:
    _, client = coordinator
    user, password, database = pg_role
    target = sa.make_url(database)
    url = f"postgresql://{user}@{target.host}:{target.port}/{target.database}?password={password}&sslmode=disable"
    saved = client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_q", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
        )
    )
    for shown in (saved, client.get_connection("conn_q"), *client.list_connections()):
        assert password not in str(shown), shown
        assert "password" not in shown.url.lower(), shown.url
    assert "sslmode=disable" in client.get_connection("conn_q").url
    run, logs = _run(
        client,
        "from seedbed.sdk import Seedbed\n"
        'print("ANSWER", Seedbed().connection("conn_q").fetch("SELECT 41 + 1 AS n"))\n',
    )
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert "ANSWER [{'n': 42}]" in logs
    # A second secret besides the one in the query is ambiguous: refused.
    with pytest.raises(ClientError) as refused:
        client.create_connection(
            connection_pb2.CreateConnectionRequest(
                connection_id="conn_q2",
                kind=connection_pb2.CONNECTION_KIND_SQL,
                url=f"postgresql+psycopg://{user}@h/db?PassWord=x",
                secret=connection_pb2.SecretSource(value="y"),
            )
        )
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "PassWord" in refused.value.details, refused.value.details


# -- 4. TestConnection honours allowed_users -------------------------------------------------------------


def _member(admin: Client, address: str, user_id: str, role: Role) -> Client:
    admin._call(admin._access.CreateUser, access_pb2.CreateUserRequest(user_id=user_id))  # type: ignore[attr-defined]
    admin._call(  # type: ignore[attr-defined]
        admin._access.SetMembership,  # type: ignore[attr-defined]
        access_pb2.SetMembershipRequest(user_id=user_id, project_key="default", role=int(role)),
    )
    key = admin._call(admin._access.CreateApiKey, access_pb2.CreateApiKeyRequest(user_id=user_id))  # type: ignore[attr-defined]
    return Client(address, api_key=str(key.secret))


def test_test_connection_refuses_users_not_allowed_to_use_it(
    coordinator: tuple[Any, Client], echo_api: tuple[str, _Seen]
) -> None:
    coord, admin = coordinator
    base_url, seen = echo_api
    alice = _member(admin, coord.address, "alice", Role.EDITOR)
    bob = _member(admin, coord.address, "bob", Role.EDITOR)
    admin.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_echo",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(base_url=base_url, auth_header="Authorization"),
            secret=connection_pb2.SecretSource(value=BASIC),
            allowed_users=["alice"],
        )
    )
    with bob, pytest.raises(ClientError) as refused:
        bob.test_connection("conn_echo")
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "may not be used by runs acting as 'bob'" in refused.value.details
    assert seen.authorizations == []  # the secret was never sent on bob's behalf
    with alice:
        assert alice.test_connection("conn_echo").ok
    assert seen.authorizations == [BASIC]


# -- 5. workspace tokens ---------------------------------------------------------------------------------


def _download(address: str, token: str) -> grpc.StatusCode | None:
    with grpc.insecure_channel(address) as channel:
        stub = workspace_pb2_grpc.WorkspaceServiceStub(channel)
        try:
            list(
                stub.DownloadFile(
                    workspace_pb2.DownloadFileRequest(path="data/cities.txt"),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=30,
                )
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return None


def test_workspace_tokens_die_with_their_run_expire_and_use_a_key_of_their_own(
    coordinator: tuple[Any, Client], tmp_path: Path
) -> None:
    coord, client = coordinator
    client.upload_file("data/cities.txt", b"Lyon\nOslo\n")
    tokens: list[str] = []
    execute = coord.dispatcher.execute

    def spy(spec: Any) -> Any:
        tokens.append(spec.coordinator_token)
        return execute(spec)

    coord.dispatcher.execute = spy
    run, logs = _run(
        client,
        "from seedbed.sdk import Seedbed\n"
        'print("READ", Seedbed().workspace.read_text("data/cities.txt").split())\n',
    )
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert "READ ['Lyon', 'Oslo']" in logs
    [captured] = tokens
    # The run has ended: its token reads nothing any more.
    assert _download(coord.address, captured) in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    box = SecretBox.from_key_or_file("", tmp_path / "coordinator-data")
    # Sealed with the raw secret key (the old way): not a token.
    forged = "sbw_" + box.seal(f"workspace-read:{run.id}")
    assert _download(coord.address, forged) == grpc.StatusCode.UNAUTHENTICATED
    # Expired, for a run that is still going: refused.
    client.put_scenario(
        "sleeper",
        script="import time\ntime.sleep(60)\n",
        settings=scenario_pb2.ScenarioSettings(retry_policy=NO_RETRY, timeout_seconds=90),
    )
    live = client.run("sleeper").run_id
    eventually(lambda: client.get_run(live).state == run_pb2.RUN_STATE_RUNNING)
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = worker_token(box, live, attempt=1, timeout_seconds=90, expires_at=past)
    fresh = worker_token(box, live, attempt=1, timeout_seconds=90, expires_at=past + timedelta(minutes=5))
    try:
        assert _download(coord.address, fresh) is None  # the same token, unexpired, reads
        assert _download(coord.address, expired) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        client.abort(live, "test over")
        client.wait(live)
    assert _download(coord.address, fresh) in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )


# -- 6. workspace encodings ------------------------------------------------------------------------------

ENCODINGS = """
import json
from seedbed.sdk import InvalidArgument, Seedbed, params
for encoding in json.loads(params["encodings"]):
    try:
        text = Seedbed().workspace.read_text("data/cities.txt", encoding=encoding)
    except InvalidArgument as exc:
        print("REFUSED", encoding, "|", exc)
    else:
        print("READ", encoding, len(text))
"""


def test_workspace_reads_take_only_plain_text_encodings(coordinator: tuple[Any, Client]) -> None:
    _, client = coordinator
    client.upload_file("data/cities.txt", b"Lyon\\nOslo\n")
    accepted = ["utf-8", "UTF8", "utf_8", "latin-1", "ISO-8859-1", "latin1", "ascii", "US-ASCII"]
    refused = [
        "unicode_escape",
        "utf-16",
        "rot13",
        "zlib_codec",
        "hex",
        "punycode",
        "idna",
        "raw_unicode_escape",
    ]
    run, logs = _run(client, ENCODINGS, {"encodings": json.dumps(accepted + refused)})
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    for encoding in accepted:
        assert f"READ {encoding} " in logs, logs
    for encoding in refused:
        assert f"REFUSED {encoding} |" in logs, logs
    assert "accepted: utf-8, latin-1, ascii" in logs, logs


# -- 7. file sink quota ----------------------------------------------------------------------------------


@pytest.fixture
def small_quota(ray_session: None, store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    settings = settings_for(store_url, tmp_path, max_file_sink_bytes=64 * 1024)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        yield coord, client


FILES = """
from seedbed.sdk import LimitExceeded, Seedbed
files = Seedbed().connection("conn_files")
rows = [{"n": i, "text": "x" * 90} for i in range(100)]
for i in range(50):
    try:
        files.write(f"part-{i}.jsonl", rows, format="jsonl")
    except LimitExceeded as exc:
        print("STOPPED AT", i, "|", exc)
        break
else:
    print("WROTE ALL")
"""


def test_file_connections_stop_at_the_run_quota(small_quota: tuple[Any, Client]) -> None:
    _, client = small_quota
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_files", kind=connection_pb2.CONNECTION_KIND_FILE
        )
    )
    run, logs = _run(client, FILES)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    assert "WROTE ALL" not in logs, logs
    assert "STOPPED AT 6 |" in logs, logs  # ~10.5 KB a file: the 7th passes 64 KiB
    assert "65536 bytes" in logs and "SEEDBED_MAX_FILE_SINK_BYTES" in logs, logs


# -- 8. secret files are confined to a folder ---------------------------------------------------------


def _file_secret_connection(client: Client, base_url: str, path: Path) -> connection_pb2.Connection:
    return client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="conn_echo",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(base_url=base_url, auth_header="Authorization"),
            secret=connection_pb2.SecretSource(file=str(path)),
            allow_update=True,
        )
    )


def test_a_file_secret_cannot_name_the_coordinators_key(
    coordinator: tuple[Any, Client], echo_api: tuple[str, _Seen], tmp_path: Path
) -> None:
    _, client = coordinator
    base_url, seen = echo_api
    key_file = tmp_path / "coordinator-data" / "secret.key"
    assert key_file.exists()
    try:
        _file_secret_connection(client, base_url, key_file)
    except ClientError as exc:
        refusal: ClientError | None = exc
    else:
        refusal = None
        run, logs = _run(
            client, 'from seedbed.sdk import Seedbed\nSeedbed().connection("conn_echo").get("x")\n'
        )
    assert seen.authorizations == [], "the coordinator's key was sent to the REST target"
    assert refusal is not None and refusal.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "SEEDBED_SECRET_FILE_DIR" in refusal.details, refusal.details


@pytest.fixture
def secret_dir_coordinator(
    ray_session: None, store_url: str, tmp_path: Path
) -> Iterator[tuple[Any, Client, Path]]:
    folder = tmp_path / "secrets"
    folder.mkdir()
    settings = settings_for(store_url, tmp_path, secret_file_dir=folder)
    with running_in_thread(settings) as coord, Client(coord.address) as client:
        yield coord, client, folder


def test_file_secrets_stay_inside_their_folder(
    secret_dir_coordinator: tuple[Any, Client, Path], echo_api: tuple[str, _Seen], tmp_path: Path
) -> None:
    _, client, folder = secret_dir_coordinator
    base_url, seen = echo_api
    outside = tmp_path / "coordinator-data" / "secret.key"
    (folder / "link").symlink_to(outside)
    for path in (outside, folder / "link", folder / ".." / "coordinator-data" / "secret.key"):
        with pytest.raises(ClientError) as refused:
            _file_secret_connection(client, base_url, path)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert str(folder) in refused.value.details, refused.value.details
    (folder / "api-token").write_text(BASIC + "\n")
    _file_secret_connection(client, base_url, folder / "api-token")
    # This worker sets no SEEDBED_SECRET_FILE_DIR of its own: it reads no secret file at all.
    run, logs = _run(client, 'from seedbed.sdk import Seedbed\nSeedbed().connection("conn_echo").get("x")\n')
    assert run.state == run_pb2.RUN_STATE_FAILED, (run.first_error, logs)
    assert "SEEDBED_SECRET_FILE_DIR" in run.first_error.message, run.first_error
    assert seen.authorizations == []


# -- 9. REST calls have a total deadline ----------------------------------------------------------------

TRICKLE = """
import time
from seedbed.sdk import RestError, Seedbed
api = Seedbed().connection("conn_echo")
for path in ("slow", "slow-headers"):
    started = time.monotonic()
    try:
        api.get(path)
    except RestError as exc:
        print("GAVE UP", path, round(time.monotonic() - started), "|", exc)
"""


def test_a_trickling_rest_target_cannot_hold_a_call_past_its_total_deadline(
    coordinator: tuple[Any, Client], echo_api: tuple[str, _Seen]
) -> None:
    _, client = coordinator
    base_url, seen = echo_api
    _rest_connection(client, base_url, timeout=1)
    started = time.monotonic()
    run, logs = _run(client, TRICKLE, timeout_seconds=40)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    for path in ("slow", "slow-headers"):
        assert f"GAVE UP {path} " in logs, logs
    assert "total deadline" in logs, logs
    # GET is retried (it is safe): 4 tries of 1 s each and their backoff, far from the 40 s deadline.
    assert time.monotonic() - started < 30
    assert seen.trickle_ended.wait(10)
