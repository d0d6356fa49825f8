"""The console's sessions: an API key kept in an encrypted, HttpOnly, SameSite=Strict cookie, and
the CSRF token every change must carry.

Signing in trades an API key for a cookie holding that key, encrypted and authenticated (Fernet)
with a key derived from the coordinator's secret key, so a session survives a restart of the
coordinator (a page following a run reconnects and carries on) and every coordinator of a cluster
reads the others' cookies. The key inside is authenticated again on every request, exactly as a
``Bearer`` header is: revoking the key ends its sessions at once, and the API's roles decide what
the console may do. A cookie older than the session's lifetime, or one this coordinator did not
make, is refused (401) and the page asks to sign in again.

CSRF: the cookie is ``SameSite=Strict`` (a cross-site request carries none), and every request that
changes something with a session (any method but GET, HEAD and OPTIONS) must also send
``X-CSRF-Token``: an HMAC of the cookie that only a page of the same origin can read (from the
sign-in answer or ``GET /console/session``). A request whose ``Origin`` is another site is refused
whatever it carries.

Rejected: server-side session rows (a restarted or second coordinator would need the store for
every request, and signing out everywhere is what revoking the key already does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from seedbed.coordinator.errors import PermissionDeniedError, UnauthenticatedError

COOKIE = "seedbed_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_COOKIE_CHARS = 4096  # what browsers keep of one cookie; longer is not ours


@dataclass(frozen=True)
class Sessions:
    """Makes and reads session cookies. ``key`` is 32 bytes (the secret box's key for the console)."""

    key: bytes
    lifetime_seconds: int

    def _fernet(self) -> Fernet:
        return Fernet(base64.urlsafe_b64encode(self.key))

    def seal(self, api_key: str) -> str:
        """The cookie's value for a session of ``api_key``."""
        return self._fernet().encrypt(api_key.encode()).decode("ascii")

    def open(self, cookie: str) -> str:
        """The API key a cookie holds; UnauthenticatedError when it is forged, damaged or expired."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            raise UnauthenticatedError("the console session is not valid: sign in again")
        try:
            return self._fernet().decrypt(cookie.encode("ascii"), ttl=self.lifetime_seconds).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise UnauthenticatedError(
                "the console session has expired or is not valid: sign in again"
            ) from None

    def csrf_token(self, cookie: str) -> str:
        """The token a page sends back in ``X-CSRF-Token`` with every change it asks for."""
        return hmac.new(self.key, b"csrf\x00" + cookie.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def check_change(self, method: str, cookie: str, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Refuse a change made with a session that does not carry the session's CSRF token, or
        that comes from another site (PermissionDeniedError, which says which)."""
        found = dict(headers)
        origin = found.get(b"origin")
        if origin is not None and not same_origin(origin, found.get(b"host")):
            raise PermissionDeniedError(
                "a change made from another site with a console session is refused (CSRF): use the "
                "console's own pages, or send the API key in an Authorization header"
            )
        if method.upper() in SAFE_METHODS:
            return
        sent = found.get(CSRF_HEADER.encode(), b"").decode("latin-1")
        if not sent or not hmac.compare_digest(sent, self.csrf_token(cookie)):
            raise PermissionDeniedError(
                "this change carries no valid X-CSRF-Token for the console session (CSRF protection): "
                "reload the console page, or send the API key in an Authorization header"
            )


def same_origin(origin: bytes, host: bytes | None) -> bool:
    """Whether ``Origin`` names the host the request was sent to (any scheme: a TLS proxy in front
    changes it)."""
    text = origin.decode("latin-1").strip()
    if text == "null" or host is None:
        return False
    _, sep, rest = text.partition("://")
    return bool(sep) and rest.rstrip("/").lower() == host.decode("latin-1").strip().lower()


def cookie_of(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The session cookie's value in a request's ``Cookie`` headers, if any."""
    for name, value in headers:
        if name != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, sep, found = part.strip().partition("=")
            if sep and key == COOKIE:
                return found.strip().strip('"')
    return None
