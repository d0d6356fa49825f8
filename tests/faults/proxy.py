"""A loopback TCP proxy in front of PostgreSQL that breaks connections on cue.

``cut_after_commit`` produces the "ambiguous commit": the client's ``COMMIT`` reaches the server and
is applied, its reply is swallowed, and both sockets are closed, so the client sees a broken
connection although the transaction is durable. To recognise ``COMMIT`` the proxy parses the
frontend protocol (a length-prefixed startup packet, then 1-byte type + 4-byte length frames) and
the backend one (typed frames throughout), which is why it answers ``SSLRequest`` and
``GSSENCRequest`` with ``N`` itself: a server with ``ssl = on`` would otherwise switch the
connection to TLS (psycopg's default ``sslmode=prefer``) and hide every frame from the proxy.

Only the simple query protocol is watched: psycopg 3 sends ``conn.commit()`` as a ``Q`` frame
whose text is ``COMMIT``, except in pipeline mode (extended protocol), which no sink uses for it.

Rejected: asyncio in a thread (same behaviour, harder to stop from a test's thread); a raw byte
proxy that searches for ``COMMIT`` in the stream (fooled by row data containing the word).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_READY_FOR_QUERY = b"Z"
_QUERY = b"Q"
_CONNECT_TIMEOUT_SECONDS = 10.0


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes from ``sock``, or None when the peer closed (or the socket was cut)."""
    chunks = bytearray()
    while len(chunks) < size:
        try:
            chunk = sock.recv(size - len(chunks))
        except OSError:
            return None
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """One typed frame: (type byte, the whole frame as sent), or None at end of stream."""
    head = _recv_exact(sock, 5)
    if head is None:
        return None
    (length,) = struct.unpack("!I", head[1:])
    if length < 4:
        return None  # not PostgreSQL: end the link rather than guess
    body = _recv_exact(sock, length - 4) if length > 4 else b""
    if body is None:
        return None
    return head[:1], head + body


def _read_startup_packet(sock: socket.socket) -> tuple[int, bytes] | None:
    """One untyped startup-phase packet: (its request code, the whole packet), or None."""
    head = _recv_exact(sock, 8)
    if head is None:
        return None
    length, code = struct.unpack("!II", head)
    if length < 8:
        return None
    body = _recv_exact(sock, length - 8) if length > 8 else b""
    if body is None:
        return None
    return code, head + body


def _is_commit(frame: bytes) -> bool:
    text = frame[5:].rstrip(b"\x00").decode("utf-8", "replace")
    return text.strip().rstrip(";").strip().upper() == "COMMIT"


class _Link:
    """One proxied connection: a client socket, its upstream socket and two pumps."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.commit_cut_pending = threading.Event()
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        for target, name in ((self._pump_client, "client"), (self._pump_server, "server")):
            threading.Thread(target=target, name=f"tcp-proxy-{name}", daemon=True).start()

    def close(self, *, cut: bool = False) -> bool:
        """Shut down and close both sockets, counting a cut first (a test reading ``cuts`` once its
        client has seen the break finds it counted); False when already closed. ``shutdown`` first:
        it wakes a pump blocked in ``recv`` on the other thread, which ``close`` alone does not."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
        if cut:
            self.proxy._count_cut()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):  # already shut down by the peer
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.proxy._forget(self)
        return True

    def _send(self, sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True

    def _pump_client(self) -> None:
        try:
            if self._startup():
                while (frame := _read_frame(self.client)) is not None:
                    kind, data = frame
                    if kind == _QUERY and _is_commit(data) and self.proxy._take_commit_cut():
                        # Flag first: the reply may come back before sendall returns.
                        self.commit_cut_pending.set()
                    if not self._send(self.server, data):
                        break
        finally:
            self.close()

    def _startup(self) -> bool:
        """Forward the startup phase; answer SSL and GSS encryption requests with 'N'."""
        while (packet := _read_startup_packet(self.client)) is not None:
            code, data = packet
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                if not self._send(self.client, b"N"):
                    return False
                continue
            return self._send(self.server, data)
        return False

    def _pump_server(self) -> None:
        try:
            while (frame := _read_frame(self.server)) is not None:
                kind, data = frame
                if self.commit_cut_pending.is_set():
                    # Swallow the COMMIT's reply; ReadyForQuery means the server is done with it.
                    if kind == _READY_FOR_QUERY:
                        self.close(cut=True)
                        return
                    continue
                if not self._send(self.client, data):
                    break
        finally:
            self.close()


class TcpProxy:
    """A loopback TCP proxy for PostgreSQL connections with switchable faults.

    ``with TcpProxy(host, port) as proxy:`` connect to ``127.0.0.1:proxy.port`` (or use
    ``proxy.proxied_url(url)``). Modes: pass-through (the default, and after ``pass_through()``);
    ``cut_after_commit(times)``: the next ``times`` COMMITs are applied and their connections cut
    before the reply. ``cut_all()`` drops every open connection at once. ``cuts`` counts the
    connections cut by either.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._commit_cuts_left = 0
        self._cuts = 0
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._listener is not None:
            raise ValueError("the proxy is already started")
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accepter = threading.Thread(
            target=self._accept, args=(listener,), name="tcp-proxy-accept", daemon=True
        )
        self._accepter.start()
        return self

    def close(self) -> None:
        """Stop accepting and drop every open connection."""
        self._closing = True
        listener = self._listener
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            listener.close()
        if self._accepter is not None:
            self._accepter.join(timeout=5)
        for link in self._open_links():
            link.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- faults ----------------------------------------------------------------------------------

    def pass_through(self) -> None:
        """Forward everything; cancels pending ``cut_after_commit`` cuts."""
        with self._lock:
            self._commit_cuts_left = 0

    def cut_after_commit(self, times: int = 1) -> None:
        """Cut the connections of the next ``times`` COMMITs once the server has answered them (a
        COMMIT the server refuses, e.g. on a deferred constraint, is cut all the same)."""
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._commit_cuts_left = times

    def cut_all(self) -> int:
        """Drop every open connection now; how many were dropped."""
        return sum(1 for link in self._open_links() if link.close(cut=True))

    # -- observation -----------------------------------------------------------------------------

    @property
    def cuts(self) -> int:
        """Connections cut so far, by ``cut_after_commit`` and ``cut_all``."""
        with self._lock:
            return self._cuts

    @property
    def pending_commit_cuts(self) -> int:
        with self._lock:
            return self._commit_cuts_left

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def proxied_url(self, url: str) -> str:
        """``url`` (a PostgreSQL URL, any driver suffix) with its host and port replaced by the proxy."""
        parts = urlsplit(url)
        credentials, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{credentials}{at}{self.address}"))

    # -- internals -------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                if not self._closing:
                    log.exception("tcp proxy: accept failed, no new connections")
                return
            threading.Thread(target=self._open_link, args=(client,), daemon=True).start()

    def _open_link(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=_CONNECT_TIMEOUT_SECONDS)
        except OSError as exc:
            log.warning("tcp proxy: upstream %s:%d unreachable: %s", *self.upstream, exc)
            client.close()
            return
        server.settimeout(None)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(self, client, server)
        with self._lock:
            accepted = not self._closing
            if accepted:
                self._links.add(link)
        if accepted:
            link.start()
        else:
            link.close()

    def _open_links(self) -> list[_Link]:
        with self._lock:
            return list(self._links)

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _take_commit_cut(self) -> bool:
        with self._lock:
            if self._commit_cuts_left <= 0:
                return False
            self._commit_cuts_left -= 1
            return True

    def _count_cut(self) -> None:
        with self._lock:
            self._cuts += 1
