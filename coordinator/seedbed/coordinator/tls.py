"""TLS of the coordinator's gRPC server: the ``SEEDBED_TLS_*`` files read once at start and checked
(and turned into what a worker needs to verify the coordinator); the gRPC face makes the server's
credentials of them (``faces.grpc.auth.server_credentials``), so this module imports no grpc.

    SEEDBED_TLS_CERT_FILE + SEEDBED_TLS_KEY_FILE   the server speaks TLS, and only TLS, on its port
    + SEEDBED_TLS_CLIENT_CA_FILE                   every client must present a certificate chaining
                                                   to one of these CAs (mutual TLS)
    SEEDBED_TLS_CA_FILE                            handed to workers in each attempt: the CAs that
                                                   verify this coordinator's certificate

Neither file set: plaintext, as fits loopback (the default listen address) or a proxy that
terminates TLS in front; a listen address off loopback without TLS is logged as a warning, not
refused, for that second case. A file that is missing, unreadable, not PEM, an encrypted key, a key
that does not match the certificate or a certificate past its end refuses the start with a
``TlsSettingsError`` naming the setting and the file: gRPC itself would report most of these late
and vaguely (a failed handshake on every call).

Workers get the CA, public material, in the attempt spec; a worker's own client certificate and key
(mutual TLS) come from the worker's environment, so no private key ever travels through Ray. The
rejected alternative, the coordinator handing each attempt a client key, would put a long-lived key
in every spec.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from seedbed.api.v1 import attempt_pb2
from seedbed.coordinator.settings import CoordinatorSettings


class TlsSettingsError(Exception):
    """A TLS setting is inconsistent or names a file that cannot serve; ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsSettingsError(setting, f"cannot read {path}: {exc.strerror or exc}") from exc


def _certificates(setting: str, path: Path) -> bytes:
    data = _read(setting, path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TlsSettingsError(setting, f"{path} holds no PEM certificate ({exc})") from exc
    now = dt.datetime.now(dt.UTC)
    for cert in certs:
        if cert.not_valid_after_utc < now:
            raise TlsSettingsError(
                setting,
                f"{path}: the certificate for {cert.subject.rfc4514_string()} expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
            )
    return data


def _private_key(setting: str, path: Path, certificate_chain: bytes, cert_path: Path) -> bytes:
    data = _read(setting, path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted
        raise TlsSettingsError(
            setting, f"{path} is encrypted: give the key without a passphrase (readable by its owner only)"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TlsSettingsError(setting, f"{path} holds no PEM private key ({exc})") from exc
    leaf = x509.load_pem_x509_certificates(certificate_chain)[0]
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise TlsSettingsError(
            setting, f"{path} does not match the certificate in {cert_path} (SEEDBED_TLS_CERT_FILE)"
        )
    return data


@dataclass(frozen=True)
class ServerTls:
    """The server's TLS material, checked."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None  # set: client certificates are required (mutual TLS)

    @classmethod
    def from_settings(cls, settings: CoordinatorSettings) -> ServerTls | None:
        """The checked material; None when TLS is off. Raises TlsSettingsError."""
        cert, key = settings.tls_cert_file, settings.tls_key_file
        if settings.tls_ca_file is not None:
            _certificates("SEEDBED_TLS_CA_FILE", settings.tls_ca_file)
        if cert is None and key is None:
            if settings.tls_client_ca_file is not None:
                raise TlsSettingsError(
                    "SEEDBED_TLS_CLIENT_CA_FILE",
                    "client certificates need TLS: set SEEDBED_TLS_CERT_FILE and SEEDBED_TLS_KEY_FILE too",
                )
            return None
        if cert is None:
            raise TlsSettingsError(
                "SEEDBED_TLS_CERT_FILE", "SEEDBED_TLS_KEY_FILE is set but SEEDBED_TLS_CERT_FILE is not"
            )
        if key is None:
            raise TlsSettingsError(
                "SEEDBED_TLS_KEY_FILE", "SEEDBED_TLS_CERT_FILE is set but SEEDBED_TLS_KEY_FILE is not"
            )
        chain = _certificates("SEEDBED_TLS_CERT_FILE", cert)
        client_ca = settings.tls_client_ca_file
        return cls(
            certificate_chain=chain,
            private_key=_private_key("SEEDBED_TLS_KEY_FILE", key, chain, cert),
            client_ca=_certificates("SEEDBED_TLS_CLIENT_CA_FILE", client_ca) if client_ca else None,
        )

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def describe(self) -> str:
        return "with TLS, client certificates required" if self.mutual else "with TLS"


def coordinator_tls(settings: CoordinatorSettings) -> attempt_pb2.CoordinatorTls | None:
    """What an attempt's worker needs to call the coordinator back over TLS; None when it serves
    plaintext. Public material only (see the module's note)."""
    if settings.tls_cert_file is None:
        return None
    ca = _certificates("SEEDBED_TLS_CA_FILE", settings.tls_ca_file) if settings.tls_ca_file else b""
    return attempt_pb2.CoordinatorTls(ca_pem=ca)


def is_loopback(listen: str) -> bool:
    """Whether the host of ``host:port`` only reaches this machine."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface
