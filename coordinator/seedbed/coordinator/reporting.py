"""Delivers reports: the run listener that sends each matching reporter's webhook or e-mail.

``ReportSender`` is registered with ``RunSupervisor.add_listener``; it is told when a run starts its
first attempt and when it ends. For each reporter of the run's settings whose events and outcome
condition match, it claims the delivery row (``Store.reports``: at most one sender per run,
reporter and event), sends with retries, and records DELIVERED or FAILED with the tries and the last
error. A failed report is logged (WARNING) and never changes the run.

Retries: connection errors, timeouts, HTTP 5xx and 429 (its ``Retry-After`` honoured), SMTP 4xx
replies and dropped connections are tried again after an exponential backoff with jitter, up to
``reporter_max_tries`` tries and ``reporter_max_seconds`` in all. Other answers (HTTP 4xx, SMTP 5xx,
a body template that renders to something that is not JSON) fail at once. Every try of one webhook
report carries the same ``Idempotency-Key: {run_id}:{reporter_id}:{event}``; every try of one e-mail
the same ``Message-ID``.

Signing (Standard Webhooks, through the ``standardwebhooks`` library rather than a hand-made HMAC):
every try carries ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (``v1,`` + base64
HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under the reporter's ``signing_secret``). The id is
``msg_`` + the first 32 hex digits of the SHA-256 of the idempotency key: the same on every try of
one delivery, so a receiver can drop a repeat. Rejected: a random id (one more value to store, when
the key already names the delivery) and the key itself (an opaque id of fixed length and alphabet is
what receivers store; the readable key stays in ``Idempotency-Key``). The timestamp and the
signature are computed for each try, since receivers refuse a timestamp more than five minutes off
and the retries of one report may span longer. Every webhook reporter has a secret (a save generates
one; store migration 0009 gave one to those saved before deliveries were signed), so a reporter
without one is a bug: its report is not sent, and an error says so. Rejected: sending it unsigned (a
receiver that verifies would refuse it anyway, and one that does not would be taught to accept
deliveries anyone could forge).

Where a webhook may go (``egress``): the URL's host is resolved once, every address checked against
the operator's allow-list, and the connection made to a checked address (``PinnedTransport``), so
neither a host name for an internal address nor DNS rebinding reaches an internal service. A refusal
fails the report at once, naming the address class and ``SEEDBED_WEBHOOK_ALLOWED_HOSTS``. Redirects are
not followed (a 3xx fails the report): the target could point them anywhere. No proxy from the
environment is used, since a proxy would resolve and connect where this check cannot see. The stored
error keeps at most a short, scrubbed excerpt of a text answer, nothing of any other.

httpx and smtplib live here and nowhere else; smtplib is blocking, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import hashlib
import ipaddress
import json
import logging
import random
import smtplib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from seedbed.coordinator.egress import EgressPolicy, IPAddress
from seedbed.coordinator.errors import NotFoundError
from seedbed.coordinator.observability.metrics import CoordinatorMetrics
from seedbed.coordinator.reporters import (
    DEFAULT_BODY,
    DEFAULT_SUBJECT,
    FINISHED,
    RESERVED_HEADERS,
    STARTED,
    ReporterSpec,
    default_document,
    render,
    render_json,
    run_fields,
)
from seedbed.coordinator.settings import CoordinatorSettings
from seedbed.coordinator.store import RunRecord, Store
from seedbed.coordinator.store.reports import DELIVERED, FAILED

log = logging.getLogger(__name__)

NO_SMTP = "no SMTP server configured: set SEEDBED_SMTP_URL (smtp://host:port or smtps://…)"
MAX_EXCERPT_CHARS = 200
_EXCERPT_READ_BYTES = 4096


class _Retryable(Exception):
    """A try failed in a way another try may fix; ``retry_after`` is the server's wish, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Permanent(Exception):
    """A try failed in a way another try would not fix."""


class ReportSender:
    """The run listener that delivers reports."""

    def __init__(
        self, store: Store, settings: CoordinatorSettings, metrics: CoordinatorMetrics | None = None
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics or CoordinatorMetrics()  # without one: recorded, served nowhere
        self._egress = EgressPolicy.parse(settings.webhook_allowed_hosts)
        self._rng = random.Random()

    async def run_started(self, run: RunRecord) -> None:
        await self._report(run, STARTED)

    async def run_finished(self, run: RunRecord) -> None:
        await self._report(run, FINISHED)

    async def _report(self, run: RunRecord, event: str) -> None:
        chosen = [
            spec
            for spec in (ReporterSpec.from_json(raw) for raw in run.settings.reporters)
            if spec.wants(event, run.state)
        ]
        if not chosen:
            return
        try:
            name = (await self._store.get_scenario(run.scenario_id)).name
        except NotFoundError:
            name = ""  # deleted since: the report still goes out, under its id
        fields = run_fields(run, name, event)
        await asyncio.gather(*(self._deliver(run, spec, event, fields) for spec in chosen))

    async def _deliver(self, run: RunRecord, spec: ReporterSpec, event: str, fields: dict[str, str]) -> None:
        if not await self._store.reports.claim(run.id, spec.id, event):
            log.info("run %s: %s report of reporter %s was taken by another sender", run.id, event, spec.id)
            return
        started = time.monotonic()
        try:
            if spec.kind == "webhook":
                tries, error = await self._webhook(run, spec, event, fields)
            else:
                tries, error = await self._email(run, spec, event, fields)
        except Exception as exc:  # a bug here must not leave the row SENDING without a word
            log.exception("run %s: reporter %s failed unexpectedly", run.id, spec.id)
            tries, error = 1, f"internal error: {type(exc).__name__}: {exc}"
        status = DELIVERED if error is None else FAILED
        await self._store.reports.record(
            run.id, spec.id, event, status=status, tries=tries, error=error or ""
        )
        self._metrics.report_delivered(spec.kind, event, status)
        elapsed = time.monotonic() - started
        if error is None:
            log.info(
                "run %s: reporter %s (%s) delivered %s in %d tries (%.2fs)",
                run.id,
                spec.id,
                spec.kind,
                event,
                tries,
                elapsed,
            )
        else:
            log.warning(
                "run %s: reporter %s (%s) could not deliver %s after %d tries (%.2fs): %s; "
                "the run's outcome is unchanged",
                run.id,
                spec.id,
                spec.kind,
                event,
                tries,
                elapsed,
                error,
            )

    # -- retries -----------------------------------------------------------------------------------

    async def _with_retries(self, once: Callable[[], Awaitable[None]]) -> tuple[int, str | None]:
        """Try ``once`` until it succeeds, fails for good, or tries or time run out; (tries, error)."""
        cfg = self._settings
        deadline = time.monotonic() + cfg.reporter_max_seconds
        tries = 0
        while True:
            tries += 1
            left = deadline - time.monotonic()
            retry_after: float | None = None
            try:
                await asyncio.wait_for(once(), timeout=max(0.01, min(cfg.reporter_timeout_seconds, left)))
                return tries, None
            except _Permanent as exc:
                return tries, str(exc)
            except _Retryable as exc:
                error, retry_after = str(exc), exc.retry_after
            except TimeoutError:
                error = f"no answer within {min(cfg.reporter_timeout_seconds, left):.1f}s"
            if tries >= cfg.reporter_max_tries:
                return tries, f"{error} (gave up after {tries} tries, SEEDBED_REPORTER_MAX_TRIES)"
            backoff = cfg.reporter_initial_backoff_seconds * 2 ** (tries - 1)
            delay = backoff * self._rng.uniform(0.8, 1.2)
            if retry_after is not None:
                delay = max(delay, retry_after)
            if time.monotonic() + delay >= deadline:
                return tries, (
                    f"{error} (gave up after {tries} tries: the next would start after "
                    f"{cfg.reporter_max_seconds:g}s, SEEDBED_REPORTER_MAX_SECONDS)"
                )
            await asyncio.sleep(delay)

    # -- webhook -----------------------------------------------------------------------------------

    async def _webhook(
        self, run: RunRecord, spec: ReporterSpec, event: str, fields: dict[str, str]
    ) -> tuple[int, str | None]:
        hook = spec.message.webhook
        if not hook.signing_secret:
            # Saves generate a secret and store migration 0009 gave one to every older reporter.
            log.error(
                "run %s: reporter %s has no signing secret, which every webhook reporter should have: %s "
                "is not sent (reports are never sent unsigned); save the scenario to have one generated",
                run.id,
                spec.id,
                event,
            )
            return 0, (
                "signing_secret: none, and reports are never sent unsigned; save the scenario to have "
                "one generated"
            )
        if hook.body_template:
            try:
                document = render_json(hook.body_template, fields)
            except ValueError as exc:
                return 0, f"body_template: {exc}"
        else:
            document = default_document(run, fields)
        body = json.dumps(document, ensure_ascii=False).encode()
        # Saved before these names were reserved, a reporter might still carry one: ours win.
        headers = {k: v for k, v in hook.headers.items() if k.lower() not in RESERVED_HEADERS}
        headers["Content-Type"] = "application/json"
        key = f"{run.id}:{spec.id}:{event}"
        headers["Idempotency-Key"] = key
        msg_id = webhook_message_id(key)
        try:
            signer = Webhook(hook.signing_secret)
        except (ValueError, EmptyWebhookSecretError) as exc:
            return 0, (
                f"signing_secret: not a usable key ({type(exc).__name__}); save the scenario with a new "
                "secret, or an empty one to have it generated"
            )
        where = _safe_url(hook.url)

        async def once() -> None:
            transport = PinnedTransport(self._egress)
            signed = headers | signature_headers(signer, msg_id, body)
            try:
                async with (
                    httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False) as client,
                    client.stream("POST", hook.url, content=body, headers=signed) as answer,
                ):
                    if answer.is_success:
                        return
                    excerpt = await _excerpt(answer)
            except EgressRefused as exc:
                raise _Permanent(f"POST {where}: refused: {exc}") from exc
            except httpx.TransportError as exc:
                raise _Retryable(f"POST {where}: {type(exc).__name__}: {exc or 'connection failed'}") from exc
            text = f"POST {where}: HTTP {answer.status_code}" + (f" {excerpt!r}" if excerpt else "")
            if answer.is_redirect:
                raise _Permanent(
                    f"{text}: redirects are not followed (the target could send them anywhere); "
                    "set the reporter's URL to the final address"
                )
            if answer.status_code == 429 or answer.status_code >= 500:
                raise _Retryable(text, _retry_after(answer.headers.get("Retry-After")))
            raise _Permanent(text)

        return await self._with_retries(once)

    # -- e-mail ------------------------------------------------------------------------------------

    async def _email(
        self, run: RunRecord, spec: ReporterSpec, event: str, fields: dict[str, str]
    ) -> tuple[int, str | None]:
        url = self._settings.smtp_url
        if not url:
            return 0, NO_SMTP
        mail = spec.message.email
        message = EmailMessage()
        message["From"] = mail.sender or self._settings.smtp_sender
        message["To"] = ", ".join(mail.recipients)
        message["Subject"] = _one_line(render(mail.subject_template or DEFAULT_SUBJECT, fields))
        message["Date"] = email.utils.format_datetime(datetime.now(UTC))
        # The same on every try: a receiver that sees it twice can drop the copy.
        message["Message-ID"] = f"<{run.id}.{spec.id}.{event.lower()}@seedbed>"
        message.set_content(render(mail.body_template or DEFAULT_BODY, fields))
        timeout = self._settings.reporter_timeout_seconds

        async def once() -> None:
            await asyncio.to_thread(_send_mail, url, message, timeout)

        return await self._with_retries(once)


# -- signing ---------------------------------------------------------------------------------------


def webhook_message_id(idempotency_key: str) -> str:
    """The ``webhook-id`` of one delivery: ``msg_`` + 32 hex digits of the key's SHA-256."""
    return "msg_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def signature_headers(signer: Webhook, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of one try, at ``now`` (default: the clock) in whole seconds."""
    seconds = int(time.time() if now is None else now)
    # The body is JSON we encoded as UTF-8, so its text signs exactly the bytes sent.
    when = datetime.fromtimestamp(seconds, UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signer.sign(msg_id, when, body.decode()),
    }


# -- where a webhook may go ------------------------------------------------------------------------

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class EgressRefused(Exception):
    """The destination is internal and the operator did not list it; the message says which
    address, its class and the setting to change."""


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver), in its order, without repeats."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host!r}: {exc.strerror or exc}") from exc
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to addresses the policy allows, and only to the
    addresses it checked: the host is resolved once, every address is checked, and the request goes
    to the first address that answers, by IP (the ``Host`` header and TLS name stay the host's).

    ``inner`` (default: httpx's own transport) makes the connections; ``resolver`` (default: the
    system's) answers what a host name stands for."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self._policy = policy
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._resolve = resolver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        addresses = list(await self._resolve(host, port))
        if not addresses:
            raise httpx.ConnectError(f"{host!r} resolves to no address", request=request)
        for address in addresses:
            reason = self._policy.refusal(host, address)
            if reason is not None:
                raise EgressRefused(reason)
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions.setdefault("sni_hostname", host)
        last = len(addresses) - 1
        for index, address in enumerate(addresses):
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=str(address)),
                headers=request.headers,  # carries Host: the name the URL gave
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await self._inner.handle_async_request(pinned)
            except httpx.ConnectError:
                if index == last:
                    raise
                # the next checked address may answer
        raise httpx.ConnectError(f"{host!r}: no address answered", request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _excerpt(answer: httpx.Response) -> str:
    """What the stored error may keep of an answer's body: a short, scrubbed excerpt of text; nothing
    of anything else (binary, compressed, or of no declared type)."""
    media = answer.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    textual = (
        media.startswith("text/")
        or media in ("application/json", "application/xml")
        or (media.endswith(("+json", "+xml")))
    )
    if not textual or answer.headers.get("Content-Encoding", "identity").lower() != "identity":
        return ""
    data = bytearray()
    async for chunk in answer.aiter_raw():
        data += chunk
        if len(data) >= _EXCERPT_READ_BYTES:
            break
    charset = answer.charset_encoding or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return scrub_excerpt(bytes(data[:_EXCERPT_READ_BYTES]).decode(charset, "replace"))


def scrub_excerpt(text: str, limit: int = MAX_EXCERPT_CHARS) -> str:
    """``text`` on one line, control and other unprintable characters as spaces, runs of spaces
    collapsed, cut to ``limit`` characters (then ending in "…")."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    line = " ".join(printable.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _send_mail(url: str, message: EmailMessage, timeout: float) -> None:
    """One SMTP session (blocking): connect, maybe STARTTLS and log in, send."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    where = f"{parts.scheme}://{host}:{port}"
    try:
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            if secure
            else smtplib.SMTP(host, port, timeout=timeout)
        )
        with smtp:
            if starttls:
                smtp.starttls(context=ssl.create_default_context())
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise _Permanent(f"{where} refused every recipient: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error
        said = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
        text = f"{where} answered {exc.smtp_code} {said[:200]!r}"
        if 400 <= exc.smtp_code < 500:
            raise _Retryable(text) from exc
        raise _Permanent(text) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise _Retryable(f"{where}: {type(exc).__name__}: {exc or 'connection failed'}") from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _safe_url(url: str) -> str:
    """The URL without credentials or query (both may hold secrets) for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _one_line(text: str) -> str:
    """A header value: line breaks and other control characters (from run fields such as an error
    message) become spaces, since a header may not contain them."""
    return "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text).strip()
