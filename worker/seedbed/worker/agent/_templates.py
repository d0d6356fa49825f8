"""The templates an attempt generates from: the versions fixed for its run, and pinned ones.

The spec carries one document per template of the run's project: the version fixed when the run
was created (a replay's pin, else the latest then), so every attempt of a run, retries included,
generates from the same documents. A script may pin another version (``dm.generate("tmpl_x@2")``):
that version is read from the coordinator when first used, over the attempt's authenticated
channel (``TemplateService.GetTemplate`` with the worker token, as workspace reads do), and kept for
the attempt. Rejected: shipping every version of every template in the spec (it grows with each
push, for pins few scripts make).

Documents are kept under the name the script used (``tmpl_x``, ``tmpl_x@2``), the keys the row sets
look them up by; the rows themselves belong to the template (``ref`` fields draw from them whatever
version made them). Every (template, version, named with a version or not) a generate call used is
recorded once, in order (``used``): the attempt's result carries it to the run's record, and a
replay pins the versions of the uses that named none (``tmpl_x`` with the run's version 3 and
``tmpl_x@1`` in one run are two uses; only the first is the run's to pin).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from seedbed.api.v1 import attempt_pb2, template_pb2, template_pb2_grpc
from seedbed.worker import templates
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded, TemplateError, UnknownTemplate
from seedbed.worker.agent._workspace import coordinator_credentials
from seedbed.worker.settings import worker_settings

# Reads of pinned versions one attempt may make of the coordinator (refused ones included).
MAX_PINNED_VERSIONS = 100
# Template ids carry it; a script may leave it out, as the API, the CLI and the coordinator take them.
_PREFIX = "tmpl_"
_FETCH_TIMEOUT_SECONDS = 30


class TemplateVersions:
    """Resolves a script's template names to documents. ``docs`` is shared with the row sets
    (name → canonical JSON); ``hold`` counts a fetched document against the attempt's budget."""

    def __init__(
        self,
        spec: attempt_pb2.AttemptSpec,
        docs: dict[str, str],
        *,
        hold: Callable[[int, str], None],
    ) -> None:
        self.docs = docs
        self._fixed = {t.id: t.revision for t in spec.templates}
        for snapshot in spec.templates:
            docs[snapshot.id] = snapshot.canonical_json
        self._hold = hold
        self._address = spec.coordinator_address
        self._metadata = (
            (("authorization", f"Bearer {spec.coordinator_token}"),) if spec.coordinator_token else ()
        )
        self._tls = spec.coordinator_tls if spec.HasField("coordinator_tls") else None
        self._channel: grpc.Channel | None = None
        self._fetched = 0
        self.used: dict[tuple[str, int, bool], None] = {}  # ordered set: (id, version, pinned)

    def fixed(self) -> dict[str, int]:
        """The run's version of each template (unpinned names)."""
        return dict(self._fixed)

    def resolve(self, name: str) -> str:
        """The key of ``name``'s document in ``docs`` (``tmpl_x`` or ``tmpl_x@N``: the ``tmpl_``
        prefix may be left out, as wherever a template id is taken); UnknownTemplate or
        InvalidArgument naming what the script wrote."""
        try:
            pin = templates.parse_template_pin(name)
        except templates.TemplatePinError as exc:
            raise InvalidArgument(str(exc)) from None
        if not pin.template_id.startswith(_PREFIX):
            pin = templates.TemplatePin(_PREFIX + pin.template_id, pin.version)
        key = str(pin)
        fixed = self._fixed.get(pin.template_id)
        if pin.version is None:
            if fixed is None:
                known = ", ".join(sorted(self._fixed)) or "none"
                raise UnknownTemplate(
                    f"template {name!r} is not defined (known: {known}); "
                    "create it with `seedbed template create FILE`"
                )
        elif key not in self.docs:
            if fixed == pin.version:
                self.docs[key] = self.docs[pin.template_id]
            else:
                self.docs[key] = self._fetch(pin, name)
        # Row sets look their document up by the name the script wrote (and name it in messages).
        self.docs.setdefault(name, self.docs[key])
        return key

    def record_use(self, name: str) -> None:
        pin = templates.parse_template_pin(name)
        pinned = pin.version is not None
        version = pin.version if pin.version is not None else self._fixed[pin.template_id]
        self.used.setdefault((pin.template_id, version, pinned), None)

    def used_refs(self) -> list[template_pb2.TemplateVersionRef]:
        return [template_pb2.TemplateVersionRef(template_id=t, version=v, pinned=p) for t, v, p in self.used]

    def _fetch(self, pin: templates.TemplatePin, name: str) -> str:
        if self._fetched >= MAX_PINNED_VERSIONS:
            raise LimitExceeded(
                f"template {pin}: an attempt may read at most {MAX_PINNED_VERSIONS} pinned template "
                "versions; pin fewer versions"
            )
        if not self._address:
            raise TemplateError(
                f"template {pin}: this worker was not told where the coordinator is, so pinned "
                "versions cannot be read"
            )
        if self._channel is None:
            options = [("grpc.max_receive_message_length", 8 * 2**20)]
            if self._tls is None:
                self._channel = grpc.insecure_channel(self._address, options=options)
            else:
                credentials = coordinator_credentials(self._tls, worker_settings())
                self._channel = grpc.secure_channel(self._address, credentials, options=options)
        stub = template_pb2_grpc.TemplateServiceStub(self._channel)
        # Every read counts, a refused one too: a script catching UnknownTemplate must not loop
        # the coordinator through reads of versions that do not exist.
        self._fetched += 1
        request = template_pb2.GetTemplateRequest(template_id=pin.template_id, version=pin.version or 0)
        try:
            answer = stub.GetTemplate(request, timeout=_FETCH_TIMEOUT_SECONDS, metadata=self._metadata)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = (exc.details() if hasattr(exc, "details") else str(exc)) or ""
            if code == grpc.StatusCode.NOT_FOUND:
                raise UnknownTemplate(details[:500] or f"template version {pin} not found") from None
            raise TemplateError(
                f"template {pin} could not be read from the coordinator: {details[:500]}"
            ) from None
        got = answer.template
        if got.id != pin.template_id or got.revision != pin.version:
            raise TemplateError(f"template {name!r}: the coordinator answered {got.id}@{got.revision}")
        self._hold(len(got.canonical_json), f"template {pin}")
        return str(got.canonical_json)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
