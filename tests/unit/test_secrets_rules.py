"""The rules of finding 10 one by one, without Ray or Docker: the scrubber, REST path checks and
the total deadline, workspace encodings, file quotas, secret files and query secrets, worker tokens."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.fernet import Fernet

from seedbed.api.v1 import attempt_pb2, connection_pb2
from seedbed.coordinator import connections as coordinator_connections
from seedbed.coordinator.access import worker_attempt_refusal, worker_claims, worker_token
from seedbed.coordinator.errors import InvalidArgumentError, UnauthenticatedError
from seedbed.coordinator.secrets import SecretBox
from seedbed.worker import sinks
from seedbed.worker.agent import _connections as worker_connections
from seedbed.worker.agent._errors import InvalidArgument, UnknownConnection
from seedbed.worker.agent._scrub import Scrubber
from seedbed.worker.agent._workspace import text_encoding
from seedbed.worker.sinks._rest import _check_path

SECRET = 'Pa55 w/rd+"é&=1xyz'


def test_the_scrubber_masks_every_encoding() -> None:
    scrubber = Scrubber()
    scrubber.add("Basic " + base64.b64encode(f"svc:{SECRET}".encode()).decode())
    forms = [
        SECRET,
        f"svc:{SECRET}",
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        quote(SECRET, safe="").lower().replace("pa55", "Pa55").replace("w", "w"),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
    ]
    for form in forms[:-3] + forms[-2:]:
        assert "Pa55" not in scrubber.text(f"before {form} after"), form
    # Inside a longer base64 text, whatever precedes it.
    for prefix in ("a:", "ab:", "abc:"):
        embedded = base64.b64encode(f"{prefix}{SECRET}".encode()).decode()
        assert embedded not in scrubber.text(embedded)
    # Parsed JSON: keys, values, nested; untouched when nothing matches.
    value = {SECRET: [SECRET, {"k": f"x{SECRET}y"}], "n": 1}
    assert "Pa55" not in json.dumps(scrubber.value(value), ensure_ascii=False)
    clean = {"a": [1, "b"]}
    assert scrubber.value(clean) is clean
    # An excerpt cut inside the secret.
    assert scrubber.text("body: Pa55 w/") == "body: ***"


def test_digit_secrets_are_masked_in_numbers_too() -> None:
    scrubber = Scrubber.of(["31415926"])
    assert scrubber.value({"pin": 31415926, "other": 7}) == {"pin": "***", "other": 7}


@pytest.mark.parametrize(
    "path",
    [
        "a;b",
        "a%3bb",
        "a%3Bb",
        "a/%2e%2e/b",
        "a%2fb",
        "a%5Cb",
        "a\\b",
        "..",
        "//h/x",
        "http://h/x",
        "a/%252e/b",
        "a%00b",
        "a/\uff0e\uff0e/b",
    ],
)
def test_smuggling_paths_are_refused(path: str) -> None:
    with pytest.raises(sinks.InvalidRequestError, match="invalid path"):
        _check_path(path, "conn_x")


@pytest.mark.parametrize("path", ["users", "users/1", "/users?x=1;2", "cities/Z%C3%BCrich", "/"])
def test_plain_paths_pass(path: str) -> None:
    _check_path(path, "conn_x")


def _trickler() -> tuple[str, threading.Event, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    ended = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                conn.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass
        finally:
            ended.set()
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", ended, listener


def test_a_trickled_answer_ends_at_the_total_deadline() -> None:
    url, ended, listener = _trickler()
    spec = sinks.ConnectionSpec("conn_x", "rest", {"base_url": url, "timeout_seconds": 0.5, "max_retries": 0})
    with sinks.RestSink(spec) as sink:
        started = time.monotonic()
        with pytest.raises(sinks.RestError, match="total deadline"):
            sink.get("x")
        assert time.monotonic() - started < 3
    assert ended.wait(5)
    listener.close()


def test_interrupt_stops_a_call_in_flight_and_refuses_later_ones() -> None:
    url, ended, listener = _trickler()
    spec = sinks.ConnectionSpec("conn_x", "rest", {"base_url": url, "timeout_seconds": 60, "max_retries": 0})
    sink = sinks.RestSink(spec)
    threading.Timer(0.5, sink.interrupt).start()
    started = time.monotonic()
    with pytest.raises(sinks.RestError):
        sink.get("x")
    assert time.monotonic() - started < 5
    with pytest.raises(sinks.RestError, match="the attempt has ended"):
        sink.get("x")
    sink.close()
    assert ended.wait(5)
    listener.close()


def test_the_attempt_deadline_bounds_a_call() -> None:
    url, _, listener = _trickler()
    spec = sinks.ConnectionSpec("conn_x", "rest", {"base_url": url, "timeout_seconds": 60})
    with sinks.RestSink(spec) as sink:
        started = time.monotonic()
        with pytest.raises(sinks.RestError, match="total deadline"):
            sink.get("x", deadline=time.monotonic() + 0.5)
        assert time.monotonic() - started < 3  # no retry: the attempt has no time left
    listener.close()


@pytest.mark.parametrize(
    ("name", "canonical"), [("UTF8", "utf-8"), ("iso-8859-1", "latin-1"), ("US_ASCII", "ascii")]
)
def test_encoding_aliases(name: str, canonical: str) -> None:
    assert text_encoding(name) == canonical


@pytest.mark.parametrize("name", ["unicode_escape", "utf-16", "rot13", "zlib_codec", "idna", "x" * 100, 3])
def test_other_encodings_are_refused(name: object) -> None:
    with pytest.raises(InvalidArgument, match="accepted: utf-8, latin-1, ascii"):
        text_encoding(name)


def test_file_quota_is_shared_and_leaves_no_partial_file(tmp_path: Path) -> None:
    quota = sinks.FileQuota(1000, setting="SEEDBED_MAX_FILE_SINK_BYTES")
    a = sinks.FileSink(sinks.ConnectionSpec("conn_a", "file"), artifacts_dir=tmp_path, quota=quota)
    b = sinks.FileSink(sinks.ConnectionSpec("conn_b", "file"), artifacts_dir=tmp_path, quota=quota)
    a.write("one.jsonl", [{"x": "y" * 500}], fmt="jsonl")
    with pytest.raises(sinks.QuotaExceededError, match="at most 1000 bytes.*SEEDBED_MAX_FILE_SINK_BYTES"):
        b.write("two.csv", [{"x": "y" * 600}])
    # Each connection writes in a folder of its own; no file of conn_b, not even a temporary one.
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "conn_a/one.jsonl"
    ]


def _file_snapshot(path: Path) -> attempt_pb2.ConnectionSnapshot:
    return attempt_pb2.ConnectionSnapshot(
        id="conn_x",
        kind=connection_pb2.CONNECTION_KIND_REST,
        rest=connection_pb2.RestOptions(base_url="http://h", auth_header="Authorization"),
        secret=connection_pb2.SecretSource(file=str(path)),
    )


def test_worker_reads_secret_files_only_inside_its_folder(tmp_path: Path) -> None:
    folder, outside = tmp_path / "secrets", tmp_path / "key"
    folder.mkdir()
    outside.write_text("coordinator key")
    (folder / "token").write_text("Bearer t0ken\n")
    (folder / "link").symlink_to(outside)
    spec, _ = worker_connections.to_spec(_file_snapshot(folder / "token"), secret_file_dir=folder)
    assert spec.options["headers"] == {"Authorization": "Bearer t0ken"}
    for path in (outside, folder / "link"):
        with pytest.raises(UnknownConnection, match="outside"):
            worker_connections.to_spec(_file_snapshot(path), secret_file_dir=folder)
    with pytest.raises(UnknownConnection, match="disabled on this worker"):
        worker_connections._secret_file("conn_x", str(folder / "token"), None)


def test_query_secrets_travel_in_the_secret_and_come_back() -> None:
    assert coordinator_connections.SECRET_DOCUMENT_PREFIX == worker_connections.SECRET_DOCUMENT_PREFIX
    url, moved = coordinator_connections.split_sql_url(
        "sql", "postgresql+psycopg://u:pwd1@h/db?sslPassword=a&API-KEY=bbbb&sslmode=require"
    )
    assert url == "postgresql+psycopg://u@h/db?sslmode=require"
    choice = coordinator_connections.choose_secret("", "", moved)
    snapshot = attempt_pb2.ConnectionSnapshot(
        id="conn_x",
        kind=connection_pb2.CONNECTION_KIND_SQL,
        url=url,
        secret=connection_pb2.SecretSource(value=choice.value),
    )
    spec, scrubber = worker_connections.to_spec(snapshot)
    rebuilt = spec.options["url"]
    assert (
        "u:pwd1@h" in rebuilt
        and "sslPassword=a" in rebuilt
        and "API-KEY=bbbb" in rebuilt
        and "sslmode=require" in rebuilt
    )
    assert scrubber.text("pwd1 and a and bbbb") == "*** and a and ***"  # one character: too short to mask
    with pytest.raises(InvalidArgumentError, match="query parameter 'sslPassword'"):
        coordinator_connections.choose_secret("env", "X", moved)
    with pytest.raises(InvalidArgumentError, match="reserved"):
        coordinator_connections.choose_secret("value", coordinator_connections.SECRET_DOCUMENT_PREFIX + "{}")


def test_coordinator_checks_secret_files_at_creation(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "link").symlink_to(tmp_path / "elsewhere")
    assert (
        coordinator_connections.choose_secret("file", str(folder / "t"), secret_file_dir=folder).kind
        == "file"
    )
    with pytest.raises(InvalidArgumentError, match="file secrets are disabled"):
        coordinator_connections.choose_secret("file", str(folder / "t"))
    for path in (folder / "link", folder / ".." / "x", Path("/etc/passwd")):
        with pytest.raises(InvalidArgumentError, match="resolves outside"):
            coordinator_connections.choose_secret("file", str(path), secret_file_dir=folder)


def test_worker_tokens_are_signed_with_a_derived_key_and_expire() -> None:
    key = Fernet.generate_key()
    box = SecretBox(key)
    token = worker_token(box, "run_1", attempt=2, timeout_seconds=60)
    claims = worker_claims(box, token)
    assert (claims.run_id, claims.attempt, claims.timeout_seconds) == ("run_1", 2, 60)
    assert box.derive_key("a") != box.derive_key("b") and base64.urlsafe_b64decode(key) not in (
        box.derive_key("a"),
    )
    with pytest.raises(UnauthenticatedError, match="expired"):
        worker_claims(box, token, now=datetime.now(UTC) + timedelta(hours=2))
    with pytest.raises(UnauthenticatedError, match="not valid"):
        worker_claims(box, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    with pytest.raises(UnauthenticatedError, match="not valid"):
        worker_claims(box, "sbw_" + box.seal("workspace-read:run_1"))


def test_worker_tokens_follow_their_attempt() -> None:
    box = SecretBox(Fernet.generate_key())
    claims = worker_claims(box, worker_token(box, "run_1", attempt=2, timeout_seconds=60))
    start = datetime.now(UTC)
    ok = dict(run_state="RUNNING", current_attempt=2, attempt_state="RUNNING", started_at=start)
    assert worker_attempt_refusal(claims, **ok) == ""  # type: ignore[arg-type]
    assert "has ended" in worker_attempt_refusal(claims, **{**ok, "run_state": "SUCCESS"})  # type: ignore[arg-type]
    assert "is over" in worker_attempt_refusal(claims, **{**ok, "current_attempt": 3})  # type: ignore[arg-type]
    assert "is over" in worker_attempt_refusal(claims, **{**ok, "attempt_state": "ENDED"})  # type: ignore[arg-type]
    late = start + timedelta(seconds=60) + timedelta(minutes=2)
    assert "past its deadline" in worker_attempt_refusal(claims, **ok, now=late)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["SEEDBED_SECRET_KEY", "seedbed_admin_api_key", "RAY_ADDRESS"])
def test_env_secrets_may_not_name_seedbed_or_ray_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A local coordinator's workers inherit its environment: its keys must not leave as a secret.
    with pytest.raises(InvalidArgumentError, match="configure Seedbed and Ray"):
        coordinator_connections.choose_secret("env", name, None)
    monkeypatch.setenv(name, "the-coordinators-own-secret")
    snapshot = attempt_pb2.ConnectionSnapshot(id="conn_x", kind=connection_pb2.CONNECTION_KIND_REST)
    snapshot.secret.env = name
    with pytest.raises(UnknownConnection, match="never a connection's secret"):
        worker_connections.resolve_secret(snapshot)
    assert coordinator_connections.choose_secret("env", "SHOP_API_TOKEN", None).ref == "SHOP_API_TOKEN"
