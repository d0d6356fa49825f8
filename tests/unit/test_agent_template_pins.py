"""The agent's template names: ``tmpl_x`` is the run's version, ``tmpl_x@N`` that version (the run's
own served from the spec, another read from the coordinator), malformed and unknown names refused,
`ref`s drawing from a template's rows whichever version made them, and every version used recorded
once, in order. (Reading another version from a real coordinator: tests/integration.)"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from seedbed.api.v1 import attempt_pb2, template_pb2, template_pb2_grpc
from seedbed.worker.agent import Agent
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded, TemplateError, UnknownTemplate
from seedbed.worker.agent._templates import MAX_PINNED_VERSIONS

CUSTOMER = {"id": "tmpl_customer", "version": 1, "fields": {"id": {"sequence": {"start": 1}}}}
ORDER = {
    "id": "tmpl_order",
    "version": 1,
    "fields": {"id": {"sequence": {}}, "customer_id": {"ref": {"template": "tmpl_customer", "field": "id"}}},
}


def _snapshot(doc: dict[str, Any], version: int) -> attempt_pb2.TemplateSnapshot:
    return attempt_pb2.TemplateSnapshot(id=doc["id"], canonical_json=json.dumps(doc), revision=version)


@pytest.fixture
def agent(tmp_path: Path) -> Any:
    spec = attempt_pb2.AttemptSpec(
        run_id="run_pins", attempt=1, templates=[_snapshot(CUSTOMER, 2), _snapshot(ORDER, 1)]
    )
    made = Agent(spec, artifacts_dir=tmp_path)
    yield made
    made.close()


def test_the_runs_version_by_either_name_and_refs_across_names(agent: Any) -> None:
    customers = agent("generate", {"template_id": "tmpl_customer@2", "count": 5})
    assert customers["columns"] == ["id"]
    orders = agent("generate", {"template_id": "tmpl_order", "count": 20})
    rows = agent("rows.read", {"rows": orders["$rows"]})
    assert {row["customer_id"] for row in rows} <= {1, 2, 3, 4, 5}  # drawn from tmpl_customer@2's rows
    agent("generate", {"template_id": "tmpl_customer", "count": 1})
    # Each use once, with whether it named its version: a replay pins only the plain ones.
    used = [(u.template_id, u.version, u.pinned) for u in agent.templates_used()]
    assert used == [("tmpl_customer", 2, True), ("tmpl_order", 1, False), ("tmpl_customer", 2, False)]


class _Versions(template_pb2_grpc.TemplateServiceServicer):
    """A coordinator answering any version of a template from ``docs`` (id → document)."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self._docs = docs

    def GetTemplate(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC's name
        return template_pb2.GetTemplateResponse(
            template=template_pb2.Template(
                id=request.template_id,
                revision=request.version,
                canonical_json=json.dumps(self._docs[request.template_id]),
            )
        )


@pytest.fixture
def coordinator() -> Any:
    """Starts a fake coordinator answering versions from the given documents: its address."""
    servers: list[Any] = []

    def start(docs: dict[str, dict[str, Any]]) -> str:
        server = grpc.server(ThreadPoolExecutor(max_workers=2))
        template_pb2_grpc.add_TemplateServiceServicer_to_server(_Versions(docs), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)


# tmpl_order@1 refs tmpl_customer.email; the run's own version (2) refs tmpl_customer.id only.
CUSTOMER_WITH_EMAIL = {
    "id": "tmpl_customer",
    "version": 1,
    "fields": {"id": {"sequence": {"start": 1}}, "email": {"faker": "email"}},
}
ORDER_BY_EMAIL = {
    "id": "tmpl_order",
    "version": 1,
    "fields": {"id": {"sequence": {}}, "email": {"ref": {"template": "tmpl_customer", "field": "email"}}},
}


def _orders_of_pinned_version(tmp_path: Path, spec: attempt_pb2.AttemptSpec, name: str) -> list[Any]:
    made = Agent(spec, artifacts_dir=tmp_path)
    try:
        customers = made("generate", {"template_id": "tmpl_customer", "count": 5})
        emails = [r["email"] for r in made("rows.read", {"rows": customers["$rows"]})]
        orders = made("generate", {"template_id": name, "count": 20})
        rows = made("rows.read", {"rows": orders["$rows"]})
        assert {r["email"] for r in rows} <= set(emails)
        return rows
    finally:
        made.close()


def test_a_ref_of_a_pinned_version_draws_from_rows_made_before_it(tmp_path: Path, coordinator: Any) -> None:
    # No version of the run's refs tmpl_customer.email: the pinned tmpl_order@1 still finds the
    # customers made before it, and draws what it would had the run's own version referred to it.
    order_v2 = {**ORDER, "version": 2}
    spec = attempt_pb2.AttemptSpec(
        run_id="run_pins",
        attempt=1,
        templates=[_snapshot(CUSTOMER_WITH_EMAIL, 1), _snapshot(order_v2, 2)],
        coordinator_address=coordinator({"tmpl_order": ORDER_BY_EMAIL}),
    )
    pinned = _orders_of_pinned_version(tmp_path, spec, "tmpl_order@1")
    retried = _orders_of_pinned_version(tmp_path, spec, "tmpl_order@1")
    own = attempt_pb2.AttemptSpec(
        run_id="run_pins",
        attempt=1,
        templates=[_snapshot(CUSTOMER_WITH_EMAIL, 1), _snapshot(ORDER_BY_EMAIL, 1)],
    )
    assert pinned == retried == _orders_of_pinned_version(tmp_path, own, "tmpl_order")


def test_another_version_needs_the_coordinator(agent: Any) -> None:
    with pytest.raises(
        TemplateError, match="tmpl_customer@1: this worker was not told where the coordinator is"
    ):
        agent("generate", {"template_id": "tmpl_customer@1", "count": 1})
    assert agent.templates_used() == []


@pytest.mark.parametrize("name", ["tmpl_customer@", "tmpl_customer@0", "tmpl_customer@-1", "tmpl_customer@x"])
def test_a_malformed_pin_is_an_invalid_argument(agent: Any, name: str) -> None:
    with pytest.raises(InvalidArgument, match="pin a version as 'tmpl_x@3'"):
        agent("generate", {"template_id": name, "count": 1})


def test_an_unknown_template_names_those_the_run_has(agent: Any) -> None:
    with pytest.raises(
        UnknownTemplate, match=r"'tmpl_nobody' is not defined \(known: tmpl_customer, tmpl_order\)"
    ):
        agent("generate", {"template_id": "tmpl_nobody", "count": 1})


def test_refused_reads_of_pinned_versions_count_against_the_attempts_cap(tmp_path: Path) -> None:
    # A script catching each refusal must not loop the coordinator through reads without end.
    spec = attempt_pb2.AttemptSpec(
        run_id="run_pins", attempt=1, templates=[_snapshot(CUSTOMER, 2)], coordinator_address="127.0.0.1:1"
    )
    made = Agent(spec, artifacts_dir=tmp_path)
    try:
        for version in range(3, 3 + MAX_PINNED_VERSIONS):
            with pytest.raises(TemplateError, match="could not be read from the coordinator"):
                made("generate", {"template_id": f"tmpl_customer@{version}", "count": 1})
        with pytest.raises(LimitExceeded, match=f"at most {MAX_PINNED_VERSIONS} pinned template versions"):
            made("generate", {"template_id": "tmpl_customer@1", "count": 1})
    finally:
        made.close()


def test_a_name_without_the_tmpl_prefix_is_the_template_it_names(tmp_path: Path) -> None:
    # As everywhere a template id is taken: "customer" is tmpl_customer, "customer@1" its version 1
    # (read from the coordinator, which answers with the prefixed id).
    class Templates(template_pb2_grpc.TemplateServiceServicer):
        def GetTemplate(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC's name
            doc = {**CUSTOMER, "fields": {"id": {"sequence": {"start": 100}}}}
            return template_pb2.GetTemplateResponse(
                template=template_pb2.Template(
                    id=request.template_id, revision=request.version, canonical_json=json.dumps(doc)
                )
            )

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    template_pb2_grpc.add_TemplateServiceServicer_to_server(Templates(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    spec = attempt_pb2.AttemptSpec(
        run_id="run_pins",
        attempt=1,
        templates=[_snapshot(CUSTOMER, 2), _snapshot(ORDER, 1)],
        coordinator_address=f"127.0.0.1:{port}",
    )
    made = Agent(spec, artifacts_dir=tmp_path)
    try:
        assert made("generate", {"template_id": "customer", "count": 2})["columns"] == ["id"]
        made("generate", {"template_id": "customer@2", "count": 1})
        old = made("generate", {"template_id": "customer@1", "count": 2})
        assert [r["id"] for r in made("rows.read", {"rows": old["$rows"]})] == [100, 101]
        used = [(u.template_id, u.version, u.pinned) for u in made.templates_used()]
        assert used == [("tmpl_customer", 2, False), ("tmpl_customer", 2, True), ("tmpl_customer", 1, True)]
        with pytest.raises(UnknownTemplate, match=r"template 'nobody' is not defined"):
            made("generate", {"template_id": "nobody", "count": 1})
    finally:
        made.close()
        server.stop(None)
