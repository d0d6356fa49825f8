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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken

from seedbed.coordinator.errors import PermissionDeniedError, UnauthenticatedError

COOKIE = "seedbed_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_COOKIE_CHARS = 4096  # what browsers keep of one cookie; longer is not ours


@dataclass(frozen=True)
class Sessions:
    """Makes and reads session cookies. ``key`` and ``csrf_key`` are 32 bytes each, derived for
    these purposes alone from the coordinator's secret key. ``origin`` is the console's origin as a
    browser names it (``https://seedbed.example.com``) when a proxy in front changes the ``Host``
    header; empty: the request's own ``Host``."""

    key: bytes
    csrf_key: bytes
    lifetime_seconds: int
    origin: str = ""
    _fernet: Fernet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Made once: every request with a cookie opens it.
        object.__setattr__(self, "_fernet", Fernet(base64.urlsafe_b64encode(self.key)))

    def seal(self, api_key: str) -> str:
        """The cookie's value for a session of ``api_key``."""
        return self._fernet.encrypt(api_key.encode()).decode("ascii")

    def open(self, cookies: Sequence[str]) -> tuple[str, str]:
        """The cookie that holds a session and the API key in it; UnauthenticatedError when none
        does (forged, damaged or expired). Every cookie of the name is tried: another site of the
        same domain, or another web app on this host, may set one of the same name that the
        browser sends first."""
        fernet = self._fernet
        for cookie in cookies:
            if not cookie or len(cookie) > MAX_COOKIE_CHARS:
                continue
            try:
                return cookie, fernet.decrypt(cookie.encode("ascii"), ttl=self.lifetime_seconds).decode()
            except (InvalidToken, UnicodeError, ValueError):
                continue
        raise UnauthenticatedError("the console session has expired or is not valid: sign in again")

    def csrf_token(self, cookie: str) -> str:
        """The token a page sends back in ``X-CSRF-Token`` with every change it asks for."""
        return hmac.new(self.csrf_key, cookie.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def same_origin(self, origin: bytes, host: bytes | None) -> bool:
        """Whether ``Origin`` is the console's own (the configured origin, else the request's host)."""
        text = origin.decode("latin-1").strip().rstrip("/").lower()
        if self.origin:
            return text == self.origin.rstrip("/").lower()
        return same_host(text, host)

    def check_change(self, method: str, cookie: str, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Refuse a change made with a session that does not carry the session's CSRF token, and
        any request with it from another origin (PermissionDeniedError, which says which)."""
        found = dict(headers)
        origin = found.get(b"origin")
        if origin is not None and not self.same_origin(origin, found.get(b"host")):
            raise PermissionDeniedError(
                "a request from another site with a console session is refused (CSRF): use the "
                "console's own pages, or send the API key in an Authorization header"
                + ("" if self.origin else "; behind a proxy that changes Host, set SEEDBED_CONSOLE_ORIGIN")
            )
        if method.upper() in SAFE_METHODS:
            return
        sent = found.get(CSRF_HEADER.encode(), b"")
        if not sent or not hmac.compare_digest(sent, self.csrf_token(cookie).encode()):
            raise PermissionDeniedError(
                "this change carries no valid X-CSRF-Token for the console session (CSRF protection): "
                "reload the console page, or send the API key in an Authorization header"
            )


def same_host(origin: str, host: bytes | None) -> bool:
    """Whether an ``Origin`` (lower case, no trailing slash) names the host the request was sent to
    (any scheme: a TLS proxy in front changes it)."""
    if origin == "null" or host is None:
        return False
    _, sep, rest = origin.partition("://")
    return bool(sep) and rest == host.decode("latin-1").strip().lower()


def cookies_of(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The values of every session cookie in a request's ``Cookie`` headers, in the order sent."""
    found = []
    for name, value in headers:
        if name != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, sep, text = part.strip().partition("=")
            if sep and key == COOKIE:
                found.append(text.strip().strip('"'))
    return found
