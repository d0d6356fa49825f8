"""The REST routes a web console needs beside runs and scenarios: templates (list, read, preview a
stored one or a draft), connections (list, read, test), a run's write batches, purge and trace, and
who the caller is. A real coordinator (real store, real HTTP on loopback) on the fake executor, whose
catalog calls run the worker's real template and connection code; the objects are made over gRPC,
whose answers the REST ones must equal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from seedbed.api.v1 import access_pb2, connection_pb2
from seedbed.client import Client
from seedbed.coordinator.access import Role
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.server import running_in_thread
from tests.conftest import ADMIN_API_KEY, settings_for
from tests.unit.test_access import access, make_user
from tests.unit.test_catalog_api import CUSTOMER, ORDER
from tests.unit.test_rest_api import error_of, put

ADMIN = {"Authorization": f"Bearer {ADMIN_API_KEY}"}
CANARY = "canary-secret-9b3e2a"
MALFORMED = """
id: tmpl_bad
version: 1
fields:
  email: {faker: emial}
  age: {int: {min: 90, max: 18}}
"""


@pytest.fixture
def rest(tmp_path: Path) -> Iterator[tuple[Any, httpx.Client, Client]]:
    """The coordinator, an HTTP client of its REST API and a gRPC client, both as the admin."""
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path)
    with (
        running_in_thread(settings, FakeDispatcher()) as coordinator,
        httpx.Client(base_url=f"http://{coordinator.rest_address}", headers=ADMIN, timeout=30) as http,
        Client(coordinator.address, api_key=ADMIN_API_KEY) as client,
    ):
        yield coordinator, http, client


def as_json(message: Message) -> dict[str, Any]:
    """A gRPC answer in the REST face's JSON mapping."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def viewer_of(client: Client) -> dict[str, str]:
    """Headers of a new user, VIEWER in the default project."""
    return {"Authorization": f"Bearer {make_user(client, 'vera', 'default', Role.VIEWER)}"}


def test_templates_are_listed_read_and_previewed(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, client = rest
    client.put_template(CUSTOMER)
    client.put_template(ORDER)
    listed = ok(http.get("/v1/templates"))
    assert [t["id"] for t in listed["templates"]] == ["tmpl_customer", "tmpl_order"]
    assert listed["next_page_token"] == ""
    first = ok(http.get("/v1/templates", params={"page_size": 1}))
    assert [t["id"] for t in first["templates"]] == ["tmpl_customer"] and first["next_page_token"]
    second = ok(http.get("/v1/templates", params={"page_size": 1, "page_token": first["next_page_token"]}))
    assert [t["id"] for t in second["templates"]] == ["tmpl_order"] and second["next_page_token"] == ""

    answer = http.get("/v1/templates/tmpl_customer")
    assert ok(answer) == as_json(client.get_template("tmpl_customer"))
    assert answer.headers["ETag"] == '"1"'
    assert ok(http.get("/v1/templates/customer"))["id"] == "tmpl_customer"  # the prefix may be left out

    rows = ok(http.post("/v1/templates/tmpl_customer/preview", json={"count": 3, "seed": 7}))
    assert len(rows["rows_json"]) == 3 and rows["faker_version"]
    assert rows == ok(http.post("/v1/templates/tmpl_customer/preview", json={"count": 3, "seed": 7}))
    assert rows["rows_json"] == [
        json.dumps(r) for r in client.preview_template("tmpl_customer", count=3, seed=7)
    ]
    assert len(ok(http.post("/v1/templates/tmpl_customer/preview"))["rows_json"]) == 5  # the default

    draft = CUSTOMER.replace("tmpl_customer", "tmpl_draft")
    previewed = ok(http.post("/v1/templates/preview", json={"source": draft, "format": "yaml", "count": 2}))
    assert len(previewed["rows_json"]) == 2
    # A draft may refer to the project's stored templates, and is stored nowhere.
    orders = ORDER.replace("tmpl_order", "tmpl_order_draft")
    assert len(ok(http.post("/v1/templates/preview", json={"source": orders}))["rows_json"]) == 5
    assert error_of(http.get("/v1/templates/tmpl_draft"), 404)["code"] == "not_found"


def test_connections_are_listed_read_and_tested(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, client = rest
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="files", kind=connection_pb2.CONNECTION_KIND_FILE, description="CSV out"
        )
    )
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="shop",
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url="postgresql://app@db.example:5432/shop",
        )
    )
    listed = ok(http.get("/v1/connections"))
    assert [c["id"] for c in listed["connections"]] == ["conn_files", "conn_shop"]
    assert listed["connections"] == [as_json(c) for c in client.list_connections()]
    first = ok(http.get("/v1/connections", params={"page_size": 1}))
    assert len(first["connections"]) == 1 and first["next_page_token"]
    got = ok(http.get("/v1/connections/files"))
    assert got == as_json(client.get_connection("files"))
    assert got["kind"] == "CONNECTION_KIND_FILE" and got["description"] == "CSV out"
    tested = ok(http.post("/v1/connections/conn_files/test"))
    assert tested["ok"] is True and "writable" in tested["message"]
    assert tested["latency_seconds"] >= 0


def test_testing_an_unreachable_postgresql_answers_a_failure_not_an_error(
    rest: tuple[Any, httpx.Client, Client],
) -> None:
    _coordinator, http, client = rest
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="gone",
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url=f"postgresql://app:{CANARY}@127.0.0.1:1/shop",  # nothing listens on port 1
        )
    )
    answer = http.post("/v1/connections/gone/test")
    tested = ok(answer)
    assert tested["ok"] is False
    assert "127.0.0.1" in tested["message"] and "refused" in tested["message"].lower(), tested
    assert CANARY not in answer.text


def test_secrets_never_appear_in_any_answer(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, client = rest
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="pg",
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url=f"postgresql://app:{CANARY}@127.0.0.1:1/shop?sslmode=disable",
        )
    )
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="api",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(
                base_url="http://127.0.0.1:1/v1", auth_header="Authorization", headers={"X-Team": "qa"}
            ),
            secret=connection_pb2.SecretSource(value=f"Bearer {CANARY}"),
        )
    )
    answers = [
        http.get("/v1/connections"),
        http.get("/v1/connections/pg"),
        http.get("/v1/connections/api"),
        http.post("/v1/connections/pg/test"),
        http.post("/v1/connections/api/test"),
        http.get("/v1/whoami"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert CANARY not in answer.text, answer.request.url
    pg, api = answers[1].json(), answers[2].json()
    assert pg["url"] == "postgresql://app@127.0.0.1:1/shop?sslmode=disable" and pg["secret"] == "stored"
    assert api["secret"] == "stored" and api["rest"]["headers"] == {"X-Team": "qa"}
    assert answers[3].json()["ok"] is False and answers[4].json()["ok"] is False


def test_unknown_ids_are_404_in_the_envelope(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, _client = rest
    error = error_of(http.get("/v1/templates/tmpl_missing"), 404)
    assert error["code"] == "not_found" and error["details"] == {"kind": "template", "id": "tmpl_missing"}
    # An id that could not exist is not found either, not invalid.
    assert error_of(http.get("/v1/templates/NOT-AN-ID"), 404)["details"]["kind"] == "template"
    assert error_of(http.post("/v1/templates/tmpl_missing/preview", json={}), 404)["code"] == "not_found"
    error = error_of(http.get("/v1/connections/conn_missing"), 404)
    assert error["details"]["kind"] == "connection"
    assert error_of(http.get("/v1/connections/NOT-AN-ID"), 404)["details"]["kind"] == "connection"
    assert error_of(http.post("/v1/connections/missing/test"), 404)["code"] == "not_found"
    for answer in (
        http.get("/v1/runs/run_missing/batches"),
        http.post("/v1/runs/run_missing/purge"),
        http.post("/v1/runs/run_missing/purge", params={"dry_run": "true"}),
        http.get("/v1/runs/run_missing/trace"),
    ):
        assert error_of(answer, 404)["details"] == {"kind": "run", "id": "run_missing"}


def test_a_viewer_reads_but_is_refused_changes(rest: tuple[Any, httpx.Client, Client]) -> None:
    coordinator, http, client = rest
    client.put_template(CUSTOMER)
    client.create_connection(
        connection_pb2.CreateConnectionRequest(
            connection_id="files", kind=connection_pb2.CONNECTION_KIND_FILE
        )
    )
    put(http, "scn_done", "print hi")
    run = ok(http.post("/v1/scenarios/scn_done/run", params={"wait": "true"}, json={}))["run"]
    viewer = viewer_of(client)
    assert [t["id"] for t in ok(http.get("/v1/templates", headers=viewer))["templates"]] == ["tmpl_customer"]
    assert ok(http.post("/v1/templates/tmpl_customer/preview", headers=viewer, json={"count": 1}))
    assert ok(http.get("/v1/connections/files", headers=viewer))["id"] == "conn_files"
    assert ok(http.get(f"/v1/runs/{run['id']}/batches", headers=viewer))["batches"] == []
    refused = [
        # A draft is template authoring: EDITOR, as a push.
        http.post("/v1/templates/preview", headers=viewer, json={"source": CUSTOMER}),
        # A test opens the target with its secret: EDITOR.
        http.post("/v1/connections/files/test", headers=viewer),
        http.post(f"/v1/runs/{run['id']}/purge", headers=viewer, params={"dry_run": "true"}),
    ]
    for answer in refused:
        error = error_of(answer, 403)
        assert error["code"] == "permission_denied" and "EDITOR" in error["message"], error


def test_a_malformed_draft_is_400_naming_the_field(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, _client = rest
    error = error_of(http.post("/v1/templates/preview", json={"source": MALFORMED}), 400)
    assert error["code"] == "invalid_argument" and error["details"]["field"] == "source"
    # Every problem, each with the path of the template's field it concerns.
    assert "fields.email" in error["message"] and "fields.age" in error["message"], error["message"]
    error = error_of(http.post("/v1/templates/preview", json={"source": CUSTOMER, "format": "xml"}), 400)
    assert error["details"]["field"] == "format" and "YAML" in error["message"]
    error = error_of(http.post("/v1/templates/preview", json={"source": CUSTOMER, "format": "json"}), 400)
    assert error["details"]["field"] == "source"  # YAML read as JSON
    assert error_of(http.post("/v1/templates/preview", json={}), 400)["details"]["field"] == "body.source"
    error = error_of(http.post("/v1/templates/preview", json={"source": "  "}), 400)
    assert error["details"]["field"] == "source" and "empty" in error["message"]
    error = error_of(http.post("/v1/templates/preview", json={"source": CUSTOMER, "colour": 1}), 400)
    assert error["details"]["field"] == "body.colour"


def test_an_oversized_preview_count_is_400_naming_the_limit(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, client = rest
    client.put_template(CUSTOMER)
    for path, body in (
        ("/v1/templates/tmpl_customer/preview", {}),
        ("/v1/templates/preview", {"source": CUSTOMER}),
    ):
        for count in (101, 10**6, 10**30, 0, -1):
            error = error_of(http.post(path, json={**body, "count": count}), 400)
            assert error["details"]["field"] == "count" and "1..100" in error["message"], error
        error = error_of(http.post(path, json={**body, "seed": 2**64}), 400)
        assert error["details"]["field"] == "seed"
    assert (
        len(ok(http.post("/v1/templates/preview", json={"source": CUSTOMER, "count": 100}))["rows_json"])
        == 100
    )


def test_a_runs_write_batches_page_in_the_order_written(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, _client = rest
    put(
        http,
        "scn_writes",
        "batch conn_shop customers 1 1 10\nbatch conn_shop customers 1 2 10\nbatch conn_shop orders 2 1 5",
    )
    run = ok(http.post("/v1/scenarios/scn_writes/run", params={"wait": "true"}, json={}))["run"]
    first = ok(http.get(f"/v1/runs/{run['id']}/batches", params={"page_size": 2}))
    assert [(b["target"], b["call"], b["batch"]) for b in first["batches"]] == [
        ("customers", 1, 1),
        ("customers", 1, 2),
    ]
    assert (
        first["batches"][0]["rows"] == "10" and first["batches"][0]["status"] == "WRITE_BATCH_STATUS_APPLIED"
    )
    rest_of = ok(
        http.get(
            f"/v1/runs/{run['id']}/batches", params={"page_size": 2, "page_token": first["next_page_token"]}
        )
    )
    assert [(b["target"], b["rows"]) for b in rest_of["batches"]] == [("orders", "5")]
    assert rest_of["next_page_token"] == ""
    assert error_of(http.get(f"/v1/runs/{run['id']}/batches", params={"page_size": 1001}), 400)


def test_purging_a_run_without_writes_answers_an_empty_plan(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, _client = rest
    put(http, "scn_quiet", "print nothing written")
    run = ok(http.post("/v1/scenarios/scn_quiet/run", params={"wait": "true"}, json={}))["run"]
    plan = ok(http.post(f"/v1/runs/{run['id']}/purge", params={"dry_run": "true"}))
    assert plan == {
        "targets": [],
        "skipped": [],
        "skipped_connections": [],
        "failures": [],
        "dry_run": True,
        "rows_left": [],
        "assets_deleted": 0,
        "asset_bytes_deleted": "0",
    }
    done = ok(http.post(f"/v1/runs/{run['id']}/purge"))
    assert done["dry_run"] is False and done["targets"] == [] and done["failures"] == []


def test_a_runs_trace_is_its_spans(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, _client = rest
    put(http, "scn_traced", "print hi\nspans 2")
    run = ok(http.post("/v1/scenarios/scn_traced/run", params={"wait": "true"}, json={}))["run"]
    trace = ok(http.get(f"/v1/runs/{run['id']}/trace"))
    assert trace["trace_id"] == run["trace_id"] and len(trace["trace_id"]) == 32
    names = [span["name"] for span in trace["spans"]]
    assert {"fire", "run", "attempt 1", "call 0", "call 1"} <= set(names), names
    assert all(span["trace_id"] == run["trace_id"] for span in trace["spans"])
    assert trace["dropped_spans"] == "0" and trace["max_spans"] > 0


def test_whoami_answers_what_grpc_answers(rest: tuple[Any, httpx.Client, Client]) -> None:
    coordinator, http, client = rest
    admin = ok(http.get("/v1/whoami"))
    assert admin == as_json(access(client, "WhoAmI", access_pb2.WhoAmIRequest()))
    assert admin["user"]["superuser"] is True
    viewer = viewer_of(client)
    vera = ok(http.get("/v1/whoami", headers=viewer))
    assert vera["user"]["id"] == "vera" and vera["user"]["superuser"] is False
    assert vera["user"]["memberships"] == [{"project_key": "default", "role": "ROLE_VIEWER"}]
    assert vera["api_key_id"]
    with Client(coordinator.address, api_key=viewer["Authorization"].removeprefix("Bearer ")) as as_vera:
        assert vera == as_json(access(as_vera, "WhoAmI", access_pb2.WhoAmIRequest()))
    assert error_of(http.get("/v1/whoami", headers={"Authorization": ""}), 401)["code"] == "unauthenticated"
