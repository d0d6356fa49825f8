"""Reads workspace files from the coordinator (the files live in its store), and decodes them.

Only three encodings decode a workspace file: UTF-8, Latin-1 and ASCII. Python's codec registry
holds far more (`unicode_escape` interprets escapes, `utf-16` doubles memory, `punycode` and `idna`
run costly algorithms, byte codecs such as `zlib_codec` decompress), and a codec name is looked up
in it only after it was mapped through this fixed table, so a script never names a codec module.
"""

from __future__ import annotations

import grpc

from seedbed.api.v1 import workspace_pb2, workspace_pb2_grpc
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded, WorkspaceError

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


class WorkspaceReader:
    def __init__(self, address: str, max_bytes: int, token: str = "") -> None:
        self._address = address
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._max_bytes = max_bytes
        self._channel: grpc.Channel | None = None

    def read(self, path: str) -> bytes:
        if not self._address:
            raise WorkspaceError(
                "this worker was not told where the coordinator is; workspace files are unavailable"
            )
        if self._channel is None:
            self._channel = grpc.insecure_channel(
                self._address, options=[("grpc.max_receive_message_length", 8 * 2**20)]
            )
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
            raise WorkspaceError(f"workspace file {path!r} could not be read: {details}") from None
        return b"".join(parts)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
