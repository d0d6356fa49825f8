"""Finding 11 of issue 10: the coordinator's gRPC server and every client spoke plaintext, so an API
key (a bearer token in the call's metadata) and a worker's workspace token crossed the network in
clear text, readable by anyone on the path.

The attack records the bytes between a client and the coordinator with a small TCP relay and looks
for the key in them. With TLS (``SEEDBED_TLS_CERT_FILE``/``SEEDBED_TLS_KEY_FILE``) the key is no
longer there; clients that do not speak TLS, or trust another CA, or (with
``SEEDBED_TLS_CLIENT_CA_FILE``, mutual TLS) present no certificate, are refused with a clear
message. The certificates are made here with ``cryptography``: a CA, a server certificate for
127.0.0.1 and localhost, a client certificate, and a second CA nobody trusts."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from seedbed.api.v1 import access_pb2, access_pb2_grpc, attempt_pb2, run_pb2, scenario_pb2
from seedbed.client import Client, ClientError, LogEvent
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.coordinator.access import worker_token
from seedbed.coordinator.secrets import SecretBox
from seedbed.coordinator.tls import TlsSettingsError
from seedbed.worker.agent._errors import WorkspaceError
from seedbed.worker.agent._workspace import WorkspaceReader
from seedbed.worker.settings import WorkerSettings
from tests.conftest import ADMIN_API_KEY, eventually, settings_for

pytestmark = pytest.mark.integration

NO_RETRY = scenario_pb2.RetryPolicy(disabled=True)

# -- certificates ------------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], common_name: str, *, server: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(
    folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA every good certificate chains to
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA nobody here trusts
    rogue_cert: Path  # a client certificate signed by other_ca
    rogue_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = _make_ca("Seedbed test CA")
    other = _make_ca("Somebody else's CA")
    ca_path, _ = _write(folder, "ca", *ca)
    other_path, _ = _write(folder, "other-ca", *other)
    server_cert, server_key = _write(folder, "server", *_make_leaf(ca, "coordinator", server=True))
    client_cert, client_key = _write(folder, "client", *_make_leaf(ca, "ci-runner", server=False))
    rogue_cert, rogue_key = _write(folder, "rogue", *_make_leaf(other, "intruder", server=False))
    return Pki(ca_path, server_cert, server_key, client_cert, client_key, other_path, rogue_cert, rogue_key)


def _tls_settings(tmp_path: Path, pki: Pki, *, mutual: bool = False, **overrides: Any) -> CoordinatorSettings:
    tls: dict[str, Any] = {
        "tls_cert_file": pki.server_cert,
        "tls_key_file": pki.server_key,
        "tls_ca_file": pki.ca,  # handed to the workers, so their calls back verify the coordinator
    }
    if mutual:
        tls["tls_client_ca_file"] = pki.ca
    return settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path, **(tls | overrides))


def _whoami(client: Client) -> str:
    response: Any = client.whoami()
    return str(response.user.id)


# -- a relay that records what crosses the wire ------------------------------------------------------


class WireTap:
    """A TCP relay on loopback in front of ``upstream``: every byte both ways is kept in ``seen``."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._seen = bytearray()
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def seen(self) -> bytes:
        with self._lock:
            return bytes(self._seen)

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            self._sockets += [downstream, upstream]
            threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, downstream), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    self._seen += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def tap_factory() -> Iterator[Any]:
    taps: list[WireTap] = []

    def make(upstream: str) -> WireTap:
        taps.append(WireTap(upstream))
        return taps[-1]

    yield make
    for tap in taps:
        tap.close()


# -- 1. the attack: a bearer token on the wire ------------------------------------------------------


def test_api_key_is_readable_on_the_wire_in_plaintext_and_not_with_tls(
    ray_session: None, tmp_path: Path, pki: Pki, tap_factory: Any
) -> None:
    key = ADMIN_API_KEY.encode()
    plain = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}", tmp_path / "plain")
    with running_in_thread(plain) as coordinator:
        tap = tap_factory(coordinator.address)
        with Client(tap.address) as client:
            assert _whoami(client) == "admin"
        # The way it was, and still is without TLS: anyone on the path reads the key.
        assert key in tap.seen

    with running_in_thread(_tls_settings(tmp_path, pki)) as coordinator:
        tap = tap_factory(coordinator.address)
        with Client(tap.address, tls=True, ca_file=pki.ca) as client:
            assert _whoami(client) == "admin"
        seen = tap.seen
        assert len(seen) > 1000  # the handshake and the call did go through the relay
        assert key not in seen
        assert b"Bearer" not in seen and b"authorization" not in seen


# -- 2. TLS end to end: clients, the CLI, and the worker's call back --------------------------------


def _logs(client: Client, run_id: str) -> str:
    return "\n".join(e.line.text for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent))


def test_a_run_over_tls_reads_a_workspace_file_through_the_worker(
    ray_session: None, tmp_path: Path, pki: Pki
) -> None:
    with (
        running_in_thread(_tls_settings(tmp_path, pki)) as coordinator,
        Client(f"https://{coordinator.address}", ca_file=pki.ca) as client,
    ):
        client.upload_file("data/cities.txt", b"Lyon\nOslo\n")
        client.put_scenario(
            "reader",
            script="from seedbed.sdk import Seedbed\n"
            'print("READ", Seedbed().workspace.read_text("data/cities.txt").split())\n',
            settings=scenario_pb2.ScenarioSettings(retry_policy=NO_RETRY, timeout_seconds=60),
        )
        run = client.wait(client.run("reader").run_id)
        logs = _logs(client, run.id)
        assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
        # The worker downloaded the file from the coordinator, which listens with TLS only.
        assert "READ ['Lyon', 'Oslo']" in logs


def test_clients_that_cannot_verify_or_do_not_speak_tls_are_refused_clearly(
    ray_session: None, tmp_path: Path, pki: Pki
) -> None:
    with running_in_thread(_tls_settings(tmp_path, pki)) as coordinator:
        address = coordinator.address
        with (
            Client(address, tls=False, retries=0, timeout=10) as plain,
            pytest.raises(ClientError) as refused,
        ):
            _whoami(plain)
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE
        assert "TLS" in refused.value.details  # says what to check

        with (
            Client(f"https://{address}", ca_file=pki.other_ca, retries=0, timeout=10) as wrong_ca,
            pytest.raises(ClientError) as untrusted,
        ):
            _whoami(wrong_ca)
        assert untrusted.value.code == grpc.StatusCode.UNAVAILABLE
        assert "TLS handshake" in untrusted.value.details
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.value.details
        assert "SEEDBED_TLS_CA_FILE" in untrusted.value.details

        # A raw gRPC client without TLS gets nothing either (no fallback to plaintext on the port).
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as raw:
            access_pb2_grpc.AccessServiceStub(channel).WhoAmI(
                access_pb2.WhoAmIRequest(),
                metadata=(("authorization", f"Bearer {ADMIN_API_KEY}"),),
                timeout=10,
            )
        assert raw.value.code() == grpc.StatusCode.UNAVAILABLE

        # The client trusting the right CA works, by the https:// address or by tls=True.
        with Client(address, tls=True, ca_file=pki.ca) as good:
            assert _whoami(good) == "admin"


def test_a_tls_client_refuses_a_plaintext_coordinator(ray_session: None, tmp_path: Path, pki: Pki) -> None:
    plain = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path)
    with (
        running_in_thread(plain) as coordinator,
        Client(f"https://{coordinator.address}", ca_file=pki.ca, retries=0, timeout=10) as client,
        pytest.raises(ClientError) as refused,
    ):
        _whoami(client)
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert "TLS handshake" in refused.value.details


def _seedbed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seedbed.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_the_cli_speaks_tls_with_its_global_options(ray_session: None, tmp_path: Path, pki: Pki) -> None:
    with running_in_thread(_tls_settings(tmp_path, pki, mutual=True)) as coordinator:
        address = coordinator.address
        client_files = [
            "--tls-client-cert-file",
            str(pki.client_cert),
            "--tls-client-key-file",
            str(pki.client_key),
        ]
        result = _seedbed(
            "--address", address, "--tls", "--tls-ca-file", str(pki.ca), *client_files, "whoami"
        )
        assert result.returncode == 0, result.stderr
        assert "admin" in result.stdout
        # The same from the environment, and with an https:// address instead of --tls.
        env = {
            "SEEDBED_ADDRESS": f"https://{address}",
            "SEEDBED_TLS_CA_FILE": str(pki.ca),
            "SEEDBED_TLS_CLIENT_CERT_FILE": str(pki.client_cert),
            "SEEDBED_TLS_CLIENT_KEY_FILE": str(pki.client_key),
        }
        result = _seedbed("whoami", env=env)
        assert result.returncode == 0, result.stderr

        # Refusals say what to check, not a stack trace: unreachable (7) over plaintext or with a
        # client certificate missing, a usage error (2) for a certificate without its key.
        result = _seedbed("--address", address, "whoami")
        assert result.returncode == 7, result.stderr
        assert "if it serves TLS, connect with an https:// address" in result.stderr
        assert "Traceback" not in result.stderr
        result = _seedbed("--address", address, "--tls", "--tls-ca-file", str(pki.ca), "whoami")
        assert result.returncode == 7, result.stderr
        assert f"no coordinator answered at https://{address}" in result.stderr
        assert "Traceback" not in result.stderr
        result = _seedbed("whoami", "--address", address, "--tls-client-cert-file", str(pki.client_cert))
        assert result.returncode == 2, result.stderr
        assert "SEEDBED_TLS_CLIENT_KEY_FILE" in result.stderr and "Traceback" not in result.stderr


# -- 3. mutual TLS -------------------------------------------------------------------------------------


def test_mutual_tls_requires_a_client_certificate_from_clients_and_workers(
    ray_session: None, tmp_path: Path, pki: Pki
) -> None:
    with running_in_thread(_tls_settings(tmp_path, pki, mutual=True)) as coordinator:
        address = f"https://{coordinator.address}"
        with (
            Client(address, ca_file=pki.ca, retries=0, timeout=10) as anonymous,
            pytest.raises(ClientError) as no_cert,
        ):
            _whoami(anonymous)
        assert no_cert.value.code == grpc.StatusCode.UNAVAILABLE
        assert "TLS" in no_cert.value.details

        rogue = Client(
            address, ca_file=pki.ca, client_cert_file=pki.rogue_cert, client_key_file=pki.rogue_key, retries=0
        )
        with rogue, pytest.raises(ClientError) as untrusted_cert:
            _whoami(rogue)
        assert untrusted_cert.value.code == grpc.StatusCode.UNAVAILABLE

        with Client(
            address, ca_file=pki.ca, client_cert_file=pki.client_cert, client_key_file=pki.client_key
        ) as client:
            assert _whoami(client) == "admin"
            client.upload_file("data/cities.txt", b"Lyon\nOslo\n")
            # The session's Ray workers were started without a client certificate in their
            # environment: under mutual TLS their call back is refused, and the script is told why.
            client.put_scenario(
                "reader",
                script="import time\nfrom seedbed.sdk import Seedbed, SeedbedError\n"
                "try:\n"
                '    Seedbed().workspace.read_text("data/cities.txt")\n'
                "except SeedbedError as exc:\n"
                '    print("REFUSED", exc, flush=True)\n'
                "time.sleep(120)\n",
                settings=scenario_pb2.ScenarioSettings(retry_policy=NO_RETRY, timeout_seconds=150),
            )
            run_id = client.run("reader").run_id
            try:
                logs = eventually(
                    lambda: "REFUSED" in _logs(client, run_id) and _logs(client, run_id), timeout=90
                )
                assert "TLS handshake" in logs and "SEEDBED_TLS_CLIENT_CERT_FILE" in logs, logs
                # A worker whose environment names a client certificate gets through (this one is
                # built in the test's process, with the token the coordinator would hand the attempt).
                box = SecretBox.from_key_or_file("", tmp_path / "coordinator-data")
                token = worker_token(box, run_id, attempt=1, timeout_seconds=150)
                spec_ca = attempt_pb2.CoordinatorTls(ca_pem=pki.ca.read_bytes())
                no_ca = attempt_pb2.CoordinatorTls()  # the coordinator had no SEEDBED_TLS_CA_FILE
                cert = {
                    "SEEDBED_TLS_CLIENT_CERT_FILE": str(pki.client_cert),
                    "SEEDBED_TLS_CLIENT_KEY_FILE": str(pki.client_key),
                }

                def read(tls: attempt_pb2.CoordinatorTls, worker_env: dict[str, str]) -> bytes:
                    settings = WorkerSettings.model_validate(worker_env)
                    reader = WorkspaceReader(coordinator.address, 2**20, token, tls=tls, settings=settings)
                    try:
                        return reader.read("data/cities.txt")
                    finally:
                        reader.close()

                assert read(spec_ca, cert) == b"Lyon\nOslo\n"
                # Without a CA in the spec, the worker's own SEEDBED_TLS_CA_FILE verifies the coordinator.
                assert read(no_ca, cert | {"SEEDBED_TLS_CA_FILE": str(pki.ca)}) == b"Lyon\nOslo\n"
                with pytest.raises(WorkspaceError, match="TLS handshake"):
                    read(no_ca, cert | {"SEEDBED_TLS_CA_FILE": str(pki.other_ca)})
                with pytest.raises(WorkspaceError, match="TLS handshake") as no_cert:
                    read(spec_ca, {})
                assert "SEEDBED_TLS_CLIENT_CERT_FILE" in str(no_cert.value)
                missing = tmp_path / "not-there.pem"
                with pytest.raises(WorkspaceError, match="SEEDBED_TLS_CA_FILE cannot be read") as unreadable:
                    read(no_ca, cert | {"SEEDBED_TLS_CA_FILE": str(missing)})
                assert str(missing) not in str(unreadable.value)  # the script is not told worker paths
            finally:
                client.abort(run_id, "test over")
                client.wait(run_id)


# -- 4. the server's settings ---------------------------------------------------------------------------


def test_the_start_log_says_whether_tls_is_on_and_warns_off_loopback(
    ray_session: None, tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="seedbed.coordinator.server")
    with running_in_thread(_tls_settings(tmp_path / "a", pki, mutual=True)):
        pass
    assert any(
        "with TLS" in r.getMessage() and "client certificates required" in r.getMessage()
        for r in caplog.records
    )
    caplog.clear()
    with running_in_thread(settings_for(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", tmp_path / "b")):
        pass
    assert any("plaintext" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "TLS" in r.getMessage()]
    caplog.clear()
    # Every interface, for the second this coordinator lives.
    exposed = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", tmp_path / "c").model_copy(
        update={"listen": "0.0.0.0:0"}
    )
    with running_in_thread(exposed):
        pass
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING and "TLS" in r.getMessage()]
    assert "0.0.0.0" in warning.getMessage() and "API keys" in warning.getMessage()
    assert "SEEDBED_TLS_CERT_FILE" in warning.getMessage()


def test_bad_tls_files_stop_the_coordinator_with_the_setting_and_file_named(tmp_path: Path, pki: Pki) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    missing = tmp_path / "missing.pem"
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"tls_cert_file": missing}, "SEEDBED_TLS_CERT_FILE", str(missing)),
        ({"tls_key_file": missing}, "SEEDBED_TLS_KEY_FILE", str(missing)),
        ({"tls_cert_file": garbage}, "SEEDBED_TLS_CERT_FILE", "no PEM certificate"),
        ({"tls_key_file": garbage}, "SEEDBED_TLS_KEY_FILE", "no PEM private key"),
        ({"tls_key_file": pki.client_key}, "SEEDBED_TLS_KEY_FILE", "does not match"),
        ({"tls_cert_file": tmp_path}, "SEEDBED_TLS_CERT_FILE", "cannot read"),
        ({"tls_client_ca_file": garbage}, "SEEDBED_TLS_CLIENT_CA_FILE", str(garbage)),
        ({"tls_ca_file": missing}, "SEEDBED_TLS_CA_FILE", str(missing)),
    ]
    for override, setting, text in cases:
        settings = _tls_settings(tmp_path, pki, mutual=True, **override)
        with pytest.raises(TlsSettingsError) as refused, running_in_thread(settings):
            pass
        assert setting in str(refused.value) and text in str(refused.value), (override, str(refused.value))

    store = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    half = settings_for(store, tmp_path, tls_key_file=pki.server_key)
    expected = "SEEDBED_TLS_KEY_FILE is set but SEEDBED_TLS_CERT_FILE is not"
    with pytest.raises(TlsSettingsError, match=expected), running_in_thread(half):
        pass
    client_ca_only = settings_for(store, tmp_path, tls_client_ca_file=pki.ca)
    with (
        pytest.raises(TlsSettingsError, match="SEEDBED_TLS_CLIENT_CA_FILE"),
        running_in_thread(client_ca_only),
    ):
        pass


# -- 5. the client's rule: when does it speak TLS ------------------------------------------------------


def test_the_client_speaks_tls_when_asked_in_any_way_and_checks_its_files(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in ("SEEDBED_TLS_CA_FILE", "SEEDBED_TLS_CLIENT_CERT_FILE", "SEEDBED_TLS_CLIENT_KEY_FILE"):
        monkeypatch.delenv(env, raising=False)
    with Client("127.0.0.1:1") as client:
        assert not client.tls
    for kwargs in ({"tls": True}, {"ca_file": pki.ca}, {"credentials": grpc.ssl_channel_credentials()}):
        with Client("127.0.0.1:1", **kwargs) as client:
            assert client.tls, kwargs
    with Client("https://127.0.0.1:1") as client:
        assert client.tls and client.address == "https://127.0.0.1:1"
    monkeypatch.setenv("SEEDBED_TLS_CA_FILE", str(pki.ca))
    with Client("127.0.0.1:1") as client:
        assert client.tls  # a CA in the environment means TLS
    with Client("http://127.0.0.1:1") as client:
        assert not client.tls  # unless the address says plaintext
    with Client("127.0.0.1:1", tls=False) as client:
        assert not client.tls  # or the caller does

    with pytest.raises(ValueError, match="http://"):
        Client("http://127.0.0.1:1", tls=True)
    with pytest.raises(ValueError, match="tls=False"):
        Client("https://127.0.0.1:1", tls=False)
    with pytest.raises(ValueError, match="client_key_file"):
        Client("127.0.0.1:1", client_cert_file=pki.client_cert)
    with pytest.raises(ValueError, match=f"ca_file.*{tmp_path / 'nope.pem'}"):
        Client("127.0.0.1:1", ca_file=tmp_path / "nope.pem")
    monkeypatch.setenv("SEEDBED_TLS_CA_FILE", str(tmp_path / "gone.pem"))
    with pytest.raises(ValueError, match="SEEDBED_TLS_CA_FILE"):
        Client("127.0.0.1:1")
