"""Scrubbing secrets out of everything the agent hands back to a script.

A target may reflect the credentials it received: an echo endpoint returns the `Authorization`
header, an error page quotes the request URL, a proxy logs `user:password` in base64. So a secret is
looked for in every encoding a server is likely to use, not only as written:

- as is, and the parts of an HTTP credential (`Basic <b64>` → the base64, `user:password`, the
  password; `Bearer <token>` → the token);
- base64 (standard and URL-safe, padded or not) of each, including the three alignments of the
  secret inside a longer base64 text (the base64 of `anyone:secret`);
- percent-encoded (`quote` with and without `/` safe, `quote_plus`, lower-case hex too);
- JSON-escaped (ASCII and UTF-8 forms, and with `\\/`).

Every form is replaced by `***`, longest first, in text (error messages) and in parsed JSON
(strings, keys, and numbers that spell a digit-only secret). A message cut short (a body excerpt)
may end with the start of a form: that tail is replaced too.

Rejected: scrubbing the raw body bytes before parsing JSON alone (a `\\u0073` escape spells a secret
no byte pattern matches); hashing or HMAC-ing candidates (nothing to compare a fragment against).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MIN_SECRET_CHARS", "Scrubber"]

MASK = "***"
# Shorter secrets would mask ordinary words; such a secret is not worth protecting this way anyway.
MIN_SECRET_CHARS = 3
# Encoded forms shorter than this are too likely to occur by chance.
_MIN_FORM_CHARS = 4
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def _b64_forms(raw: bytes) -> set[str]:
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms.update((whole, whole.rstrip("=")))
        # Inside a longer base64 text the secret starts at offset 0, 1 or 2 of a 3-byte group: keep
        # only the characters that depend on the secret's bytes alone.
        for offset in (1, 2):
            shifted = encode(b"\0" * offset + raw).decode().rstrip("=")
            lead = (offset * 8 + 5) // 6  # characters touched by the padding bytes
            tail = (len(raw) + offset) % 3  # a last, incomplete group depends on what follows
            core = shifted[lead : len(shifted) - (1 if tail else 0)]
            forms.add(core)
        tail = len(raw) % 3
        forms.add(whole.rstrip("=")[: len(whole.rstrip("=")) - (1 if tail else 0)])
    return forms


def _forms(secret: str) -> set[str]:
    """Every encoding of one secret value worth looking for."""
    forms = {secret}
    pct = quote(secret, safe="")
    for encoded in (pct, quote(secret), quote_plus(secret)):
        forms.add(encoded)
        forms.add(_PERCENT.sub(lambda m: m.group().lower(), encoded))
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms.update((escaped, escaped.replace("/", "\\/")))
    forms.update(_b64_forms(secret.encode()))
    return {f for f in forms if len(f) >= min(_MIN_FORM_CHARS, len(secret))}


def _parts(secret: str, username: str | None) -> set[str]:
    """The secret and what a server may quote of it: the credentials of an HTTP auth value, the
    `user:password` pair."""
    parts = {secret}
    scheme, _, credentials = secret.strip().partition(" ")
    credentials = credentials.strip()
    if credentials and scheme.isalpha():
        parts.add(credentials)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except ValueError:
                decoded = ""
            if ":" in decoded:
                parts.update((decoded, decoded.partition(":")[2]))
    if username:
        parts.add(f"{username}:{secret}")
    return {p for p in parts if len(p) >= MIN_SECRET_CHARS}


class Scrubber:
    """The secrets of an attempt's connections, and the means to mask them in what leaves."""

    def __init__(self) -> None:
        self._forms: list[str] = []
        self._digits: list[str] = []

    def add(self, secret: str | None, *, username: str | None = None) -> None:
        """Look for ``secret`` (and its user's ``user:secret`` pair) from now on."""
        if not secret or len(secret) < MIN_SECRET_CHARS:
            return
        forms = set(self._forms)
        for part in _parts(secret, username):
            forms.update(_forms(part))
            if part.isdigit():
                self._digits.append(part)
        self._forms = sorted(forms, key=len, reverse=True)

    def extend(self, other: Scrubber) -> None:
        self._forms = sorted(set(self._forms) | set(other._forms), key=len, reverse=True)
        self._digits.extend(other._digits)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, text: str) -> str:
        """``text`` with every form masked, and a cut-off start of one at its very end too."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return self._tail(text)

    def _tail(self, text: str) -> str:
        end = text.rstrip("\ufffd")  # an excerpt cut inside a UTF-8 sequence ends with U+FFFD
        for form in self._forms:
            for size in range(min(len(form) - 1, len(end)), MIN_SECRET_CHARS - 1, -1):
                if end.endswith(form[:size]):
                    return end[: len(end) - size] + MASK
        return text

    def value(self, value: Any) -> Any:
        """A parsed JSON value with every string, key and digit-only number masked where it holds a
        form. Values holding none are returned as they are (one scan of the serialised value)."""
        if not self._forms:
            return value
        try:
            flat = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            flat = None
        if flat is not None and not any(form in flat for form in self._forms):
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._masked(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            text = str(value)
            return MASK if any(d in text for d in self._digits) else value
        if isinstance(value, dict):
            return {self._masked(str(k)): self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value

    def _masked(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Scrubber:
        scrubber = cls()
        for secret in secrets:
            scrubber.add(secret)
        return scrubber
