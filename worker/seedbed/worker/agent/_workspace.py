"""Reads workspace files from the coordinator (the files live in its store), and decodes them.

Only three encodings decode a workspace file: UTF-8, Latin-1 and ASCII. Python's codec registry
holds far more (`unicode_escape` interprets escapes, `utf-16` doubles memory, `punycode` and `idna`
run costly algorithms, byte codecs such as `zlib_codec` decompress), and a codec name is looked up
in it only after it was mapped through this fixed table, so a script never names a codec module.

When the attempt says the coordinator serves TLS (``spec.coordinator_tls``), the reader calls it
over TLS only, trusting the CA the spec carries, else the worker's ``SEEDBED_TLS_CA_FILE``, else the
system's roots; under mutual TLS it presents the worker's own client certificate
(``SEEDBED_TLS_CLIENT_CERT_FILE``/``SEEDBED_TLS_CLIENT_KEY_FILE``), which never travels in a spec.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from seedbed.api.v1 import attempt_pb2, workspace_pb2, workspace_pb2_grpc
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded, WorkspaceError
from seedbed.worker.settings import WorkerSettings, worker_settings

ACCEPTED_ENCODINGS = ("utf-8", "latin-1", "ascii")
_ALIASES = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
    "l1": "latin-1",
    "ascii": "ascii",
    "us-ascii": "ascii",
}


def text_encoding(name: object) -> str:
    """The canonical name of an accepted encoding (aliases and case folded), or InvalidArgument."""
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) and len(name) <= 40 else None
    found = _ALIASES.get(key or "")
    if found is None:
        raise InvalidArgument(
            f"encoding {str(name)[:40]!r} is not accepted for workspace files "
            f"(accepted: {', '.join(ACCEPTED_ENCODINGS)}; decode other text in the script)"
        )
    return found


def _read_setting(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        # The message reaches the script: it names the variable, not the worker's path.
        raise WorkspaceError(
            f"this worker's {setting} cannot be read ({exc.strerror or type(exc).__name__}); workspace "
            "files are unavailable"
        ) from None


def coordinator_credentials(
    tls: attempt_pb2.CoordinatorTls, settings: WorkerSettings
) -> grpc.ChannelCredentials:
    """TLS credentials for calling the coordinator; WorkspaceError names a setting that cannot serve."""
    roots = tls.ca_pem or None
    if roots is None and settings.tls_ca_file is not None:
        roots = _read_setting("SEEDBED_TLS_CA_FILE", settings.tls_ca_file)
    cert, key = settings.tls_client_cert_file, settings.tls_client_key_file
    if (cert is None) != (key is None):
        raise WorkspaceError(
            "this worker sets one of SEEDBED_TLS_CLIENT_CERT_FILE and SEEDBED_TLS_CLIENT_KEY_FILE: "
            "set both (mutual TLS) or neither"
        )
    return grpc.ssl_channel_credentials(
        root_certificates=roots,
        private_key=_read_setting("SEEDBED_TLS_CLIENT_KEY_FILE", key) if key else None,
        certificate_chain=_read_setting("SEEDBED_TLS_CLIENT_CERT_FILE", cert) if cert else None,
    )


class WorkspaceReader:
    """Downloads workspace files for one attempt, with the attempt's token. ``tls``: the spec's
    ``coordinator_tls`` (None: the coordinator serves plaintext); ``settings``: the worker's own,
    read from its environment unless given."""

    def __init__(
        self,
        address: str,
        max_bytes: int,
        token: str = "",
        *,
        tls: attempt_pb2.CoordinatorTls | None = None,
        settings: WorkerSettings | None = None,
    ) -> None:
        self._address = address
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._max_bytes = max_bytes
        self._tls = tls
        self._settings = settings
        self._channel: grpc.Channel | None = None

    def _open(self) -> grpc.Channel:
        options = [("grpc.max_receive_message_length", 8 * 2**20)]
        if self._tls is None:
            return grpc.insecure_channel(self._address, options=options)
        credentials = coordinator_credentials(self._tls, self._settings or worker_settings())
        return grpc.secure_channel(self._address, credentials, options=options)

    def _tls_hint(self, details: str) -> str:
        """Why a call over TLS may have been refused, and what to check; empty when it does not look
        like a TLS problem."""
        lowered = details.lower()
        if self._tls is None or ("handshake" not in lowered and "socket closed" not in lowered):
            return ""
        settings = self._settings or worker_settings()
        hint = (
            " (the TLS handshake with the coordinator failed or was cut: check the CA this worker trusts, "
            "the coordinator's SEEDBED_TLS_CA_FILE or else this worker's"
        )
        if settings.tls_client_cert_file is None:
            hint += (
                "; this worker presents no client certificate, and a coordinator that requires one "
                "(mutual TLS) closes the connection: set SEEDBED_TLS_CLIENT_CERT_FILE and "
                "SEEDBED_TLS_CLIENT_KEY_FILE on the worker"
            )
        return hint + ")"

    def read(self, path: str) -> bytes:
        if not self._address:
            raise WorkspaceError(
                "this worker was not told where the coordinator is; workspace files are unavailable"
            )
        if self._channel is None:
            self._channel = self._open()
        stub = workspace_pb2_grpc.WorkspaceServiceStub(self._channel)
        parts: list[bytes] = []
        size = 0
        try:
            for message in stub.DownloadFile(
                workspace_pb2.DownloadFileRequest(path=path), timeout=120, metadata=self._metadata
            ):
                if message.HasField("file") and message.file.size_bytes > self._max_bytes:
                    raise LimitExceeded(
                        f"workspace file {path!r} is {message.file.size_bytes} bytes; "
                        "a read may return at most "
                        f"{self._max_bytes} bytes"
                    )
                size += len(message.chunk)
                parts.append(message.chunk)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            if code == grpc.StatusCode.NOT_FOUND:
                raise WorkspaceError(
                    f"workspace file {path!r} not found: upload it with `seedbed workspace upload`"
                ) from None
            hint = self._tls_hint(details or "") if code == grpc.StatusCode.UNAVAILABLE else ""
            raise WorkspaceError(f"workspace file {path!r} could not be read: {details}{hint}") from None
        return b"".join(parts)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
