"""How the client reaches a coordinator: the address, TLS, and what a refused connection means.

The rule, one for the Python client and the ``seedbed`` command:

- ``https://host:port`` speaks TLS; ``http://host:port`` speaks plaintext, whatever the
  environment says;
- a bare ``host:port`` speaks TLS when asked in any way: ``tls=True`` (``--tls``), credentials, or a
  CA file or client certificate given as an argument or in ``SEEDBED_TLS_CA_FILE``,
  ``SEEDBED_TLS_CLIENT_CERT_FILE``, ``SEEDBED_TLS_CLIENT_KEY_FILE``; otherwise plaintext.
- ``tls=False`` is plaintext and ignores those variables; with ``https://`` or TLS arguments it is
  a contradiction (ValueError), as is ``http://`` with TLS arguments.

Without a CA file the system's roots verify the coordinator. A client certificate and its key go
together (mutual TLS). Files are read when the client is made: a missing one is a
``ConnectionSettingsError`` (a ValueError) naming the argument or variable and the path, not a
failed handshake later.

A refused TLS connection reaches the caller as UNAVAILABLE with gRPC's cause and a line saying
what to check (``explain``); a failed handshake is not retried, as retrying cannot mend it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

ENV_CA = "SEEDBED_TLS_CA_FILE"
ENV_CLIENT_CERT = "SEEDBED_TLS_CLIENT_CERT_FILE"
ENV_CLIENT_KEY = "SEEDBED_TLS_CLIENT_KEY_FILE"

_HTTPS = "https://"
_HTTP = "http://"


class ConnectionSettingsError(ValueError):
    """The address and TLS options contradict each other, or a TLS file cannot be read."""


@dataclass(frozen=True)
class _File:
    """A TLS file and where it was named (an argument or a variable), for error messages."""

    path: Path
    named_by: str


def _pick(argument: str | os.PathLike[str] | None, name: str, env: str, use_env: bool) -> _File | None:
    if argument is not None and str(argument):
        return _File(Path(argument), name)
    value = os.environ.get(env, "") if use_env else ""
    return _File(Path(value), env) if value else None


def _read(file: _File | None) -> bytes | None:
    if file is None:
        return None
    try:
        return file.path.read_bytes()
    except OSError as exc:
        raise ConnectionSettingsError(
            f"{file.named_by}: cannot read {file.path}: {exc.strerror or exc}"
        ) from None


@dataclass(frozen=True)
class Transport:
    """Where and how to connect: ``target`` for gRPC, ``credentials`` (None: plaintext)."""

    target: str
    credentials: grpc.ChannelCredentials | None
    client_certificate: bool

    @property
    def tls(self) -> bool:
        return self.credentials is not None

    def open(self, options: list[tuple[str, int]]) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(self.target, options=options)
        return grpc.secure_channel(self.target, self.credentials, options=options)


def resolve(
    address: str,
    *,
    tls: bool | None,
    ca_file: str | os.PathLike[str] | None,
    client_cert_file: str | os.PathLike[str] | None,
    client_key_file: str | os.PathLike[str] | None,
    credentials: grpc.ChannelCredentials | None,
) -> Transport:
    """Apply the module's rule. Raises ConnectionSettingsError (a ValueError) for contradictions
    and unreadable files."""
    scheme = _HTTPS if address.startswith(_HTTPS) else _HTTP if address.startswith(_HTTP) else ""
    target = address.removeprefix(scheme)
    explicit = [
        name
        for name, value in (
            ("ca_file", ca_file),
            ("client_cert_file", client_cert_file),
            ("client_key_file", client_key_file),
            ("credentials", credentials),
        )
        if value is not None
    ]
    if tls is False and (scheme == _HTTPS or explicit):
        what = "an https:// address" if scheme == _HTTPS else ", ".join(explicit)
        raise ConnectionSettingsError(f"tls=False contradicts {what}")
    if scheme == _HTTP and (tls or explicit):
        what = "tls=True" if tls else ", ".join(explicit)
        raise ConnectionSettingsError(f"an http:// address is plaintext and contradicts {what}: use https://")
    use_env = tls is not False and scheme != _HTTP
    ca = _pick(ca_file, "ca_file", ENV_CA, use_env)
    cert = _pick(client_cert_file, "client_cert_file", ENV_CLIENT_CERT, use_env)
    key = _pick(client_key_file, "client_key_file", ENV_CLIENT_KEY, use_env)
    lone = cert if key is None else key if cert is None else None
    if lone is not None:
        raise ConnectionSettingsError(
            f"{lone.named_by} is set without its pair: a client certificate (client_cert_file, "
            f"{ENV_CLIENT_CERT}) and its key (client_key_file, {ENV_CLIENT_KEY}) go together"
        )
    if credentials is not None:
        return Transport(target, credentials, client_certificate=cert is not None)
    if not (scheme == _HTTPS or tls or ca or cert):
        return Transport(target, None, client_certificate=False)
    made = grpc.ssl_channel_credentials(
        root_certificates=_read(ca), private_key=_read(key), certificate_chain=_read(cert)
    )
    return Transport(target, made, client_certificate=cert is not None)


def explain(transport: Transport, details: str) -> str:
    """A line saying what to check when a connection was refused in a way TLS explains; empty
    otherwise. ``details``: gRPC's own description of an UNAVAILABLE call."""
    lowered = details.lower()
    if transport.tls and "handshake failed" in lowered:
        if "wrong_version_number" in lowered:
            return (
                "the TLS handshake failed: the coordinator does not seem to speak TLS (give an "
                "http:// address for plaintext, or give the coordinator SEEDBED_TLS_CERT_FILE and "
                "SEEDBED_TLS_KEY_FILE)"
            )
        if "certificate_verify_failed" in lowered or "peer name" in lowered:
            return (
                "the TLS handshake failed: the coordinator's certificate is not trusted or does not "
                f"name this address: trust the CA that signed it (ca_file, --tls-ca-file, {ENV_CA})"
            )
        return "the TLS handshake failed: check the coordinator's certificate and the CA this client trusts"
    if "socket closed" in lowered:
        if not transport.tls:
            return (
                "the coordinator closed the connection: if it serves TLS, connect with an https:// "
                "address (or tls=True, --tls)"
            )
        if not transport.client_certificate:
            return (
                "the coordinator closed the connection after the TLS handshake: if it requires client "
                "certificates (mutual TLS), give one (client_cert_file and client_key_file, "
                f"--tls-client-cert-file and --tls-client-key-file, {ENV_CLIENT_CERT} and {ENV_CLIENT_KEY})"
            )
        return (
            "the coordinator closed the connection after the TLS handshake: if it requires client "
            "certificates (mutual TLS), check that this one chains to its SEEDBED_TLS_CLIENT_CA_FILE"
        )
    return ""


def is_handshake_failure(transport: Transport, details: str) -> bool:
    """A failed TLS handshake: a configuration problem that retrying does not mend."""
    return transport.tls and "handshake failed" in details.lower()
