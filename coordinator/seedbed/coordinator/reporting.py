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

httpx and smtplib live here and nowhere else; smtplib is blocking, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from seedbed.coordinator.errors import NotFoundError
from seedbed.coordinator.reporters import (
    DEFAULT_BODY,
    DEFAULT_SUBJECT,
    FINISHED,
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


class _Retryable(Exception):
    """A try failed in a way another try may fix; ``retry_after`` is the server's wish, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Permanent(Exception):
    """A try failed in a way another try would not fix."""


class ReportSender:
    """The run listener that delivers reports."""

    def __init__(self, store: Store, settings: CoordinatorSettings) -> None:
        self._store = store
        self._settings = settings
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
        if hook.body_template:
            try:
                document = render_json(hook.body_template, fields)
            except ValueError as exc:
                return 0, f"body_template: {exc}"
        else:
            document = default_document(run, fields)
        body = json.dumps(document, ensure_ascii=False).encode()
        headers = dict(hook.headers)
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = f"{run.id}:{spec.id}:{event}"
        where = _safe_url(hook.url)

        async def once() -> None:
            try:
                async with httpx.AsyncClient(follow_redirects=False) as client:
                    answer = await client.post(hook.url, content=body, headers=headers)
            except httpx.TransportError as exc:
                raise _Retryable(f"POST {where}: {type(exc).__name__}: {exc or 'connection failed'}") from exc
            if answer.is_success:
                return
            text = f"POST {where}: HTTP {answer.status_code} {answer.text[:200]!r}"
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
