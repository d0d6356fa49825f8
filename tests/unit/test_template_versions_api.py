"""Template versions through the real coordinator (real store, gRPC and REST on loopback; the fake
executor, whose catalog calls run the worker's real template code): history, reading and previewing a
version, malformed and missing pins, and a deleted template's versions."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest

from seedbed.client import Client, ClientError
from tests.conftest import Cli
from tests.unit.test_catalog_api import CUSTOMER
from tests.unit.test_rest_api import error_of
from tests.unit.test_rest_catalog import ok, rest

__all__ = ["rest"]  # the fixture, shared

CUSTOMER_V2 = CUSTOMER.replace("description: Customers", "description: Customers with tiers") + (
    "  tier: {choice: {values: [gold, silver]}}\n"
)


def test_each_push_of_a_changed_document_is_a_version(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, client = rest
    assert client.put_template(CUSTOMER).revision == 1
    assert client.put_template(CUSTOMER_V2).revision == 2
    assert client.put_template(CUSTOMER_V2).revision == 2  # the same document: no new version
    history = client.list_template_versions("tmpl_customer")
    assert [(v.version, v.created_by) for v in history] == [(2, "admin"), (1, "admin")]
    assert history[0].field_names == ["id", "name", "email", "tier"]
    assert ok(http.get("/v1/templates/tmpl_customer/versions"))["versions"][1]["version"] == "1"

    latest = client.get_template("tmpl_customer")
    first = client.get_template("tmpl_customer@1")
    assert (latest.revision, first.revision) == (2, 1)
    assert first.source == CUSTOMER and "tier" not in first.field_names
    assert client.get_template("tmpl_customer", version=1) == first
    assert ok(http.get("/v1/templates/tmpl_customer@1"))["source"] == CUSTOMER
    assert ok(http.get("/v1/templates/tmpl_customer", params={"version": 1}))["revision"] == "1"

    old_rows = client.preview_template("tmpl_customer@1", count=3, seed=7)
    new_rows = client.preview_template("tmpl_customer", count=3, seed=7)
    assert all("tier" not in r for r in old_rows) and all("tier" in r for r in new_rows)
    assert client.preview_template("tmpl_customer", count=3, seed=7, version=1) == old_rows
    preview = ok(http.post("/v1/templates/tmpl_customer@1/preview", json={"count": 3, "seed": 7}))
    assert len(preview["rows_json"]) == 3 and '"tier"' not in preview["rows_json"][0]


@pytest.mark.parametrize(
    "name",
    [
        "tmpl_customer@",
        "tmpl_customer@0",
        "tmpl_customer@-1",
        "tmpl_customer@x",
        "tmpl_customer@99999999999999999999",
    ],
)
def test_a_malformed_pin_is_invalid_argument(rest: tuple[Any, httpx.Client, Client], name: str) -> None:
    _coordinator, http, client = rest
    client.put_template(CUSTOMER)
    with pytest.raises(ClientError) as caught:
        client.get_template(name)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "tmpl_x@3" in str(caught.value) or "largest possible version" in str(caught.value)
    assert error_of(http.get(f"/v1/templates/{name}"), 400)["code"] == "invalid_argument"


def test_a_missing_version_names_those_that_exist(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, http, client = rest
    client.put_template(CUSTOMER)
    client.put_template(CUSTOMER_V2)
    with pytest.raises(ClientError) as caught:
        client.get_template("tmpl_customer@5")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert "tmpl_customer@5 not found (versions of tmpl_customer: 1, 2)" in str(caught.value)
    error = error_of(http.get("/v1/templates/tmpl_customer@5"), 404)
    assert error["details"] == {"kind": "template version", "id": "tmpl_customer@5"}
    with pytest.raises(ClientError) as unknown:
        client.list_template_versions("tmpl_nobody")
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND


def test_a_deleted_templates_versions_stay_readable(rest: tuple[Any, httpx.Client, Client]) -> None:
    _coordinator, _http, client = rest
    client.put_template(CUSTOMER)
    client.put_template(CUSTOMER_V2)
    client.delete_template("tmpl_customer")
    with pytest.raises(ClientError) as gone:
        client.get_template("tmpl_customer")
    assert gone.value.code == grpc.StatusCode.NOT_FOUND
    assert client.get_template("tmpl_customer@2").source == CUSTOMER_V2
    assert [v.version for v in client.list_template_versions("tmpl_customer")] == [2, 1]
    # A validate-only push answers the version the real push would make, not a fresh 1.
    checked = client.put_template(CUSTOMER, validate_only=True)
    assert checked.revision == 3
    assert [v.version for v in client.list_template_versions("tmpl_customer")] == [2, 1]  # wrote nothing
    assert client.put_template(CUSTOMER).revision == 3  # numbering goes on: @2 keeps its meaning


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def cli(
    fake_coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    coordinator, _ = fake_coordinator
    monkeypatch.setenv("COLUMNS", "160")
    return Cli(coordinator.address, capsys)


def test_history_show_and_diff_on_the_command_line(fake_coordinator: tuple[Any, Client], cli: Cli) -> None:
    _, client = fake_coordinator
    client.put_template(CUSTOMER)
    client.put_template(CUSTOMER_V2)
    code, out, _ = cli("template", "history", "customer")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["VERSION", "CREATED", "BY"]
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["tmpl_customer@2", "tmpl_customer@1"]
    assert [v["version"] for v in cli.json("template", "history", "tmpl_customer")] == ["2", "1"]
    code, out, _ = cli("template", "show", "tmpl_customer@1")
    assert code == 0 and out == CUSTOMER
    code, out, _ = cli("template", "diff", "tmpl_customer@1", "tmpl_customer@2")
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["--- tmpl_customer@1", "+++ tmpl_customer@2"]
    assert "-description: Customers" in lines and "+  tier: {choice: {values: [gold, silver]}}" in lines
    assert "\x1b[" not in out  # not a terminal: no colour
    as_json = cli.json("template", "diff", "tmpl_customer@1")  # against the latest
    assert (as_json["from"], as_json["to"]) == ("tmpl_customer@1", "tmpl_customer@2")
    assert "+description: Customers with tiers" in as_json["diff"]
    code, out, _ = cli("template", "diff", "tmpl_customer@2", "tmpl_customer")
    assert code == 0 and "have the same source" in out
    code, _, err = cli("template", "diff", "tmpl_customer")
    assert code != 0 and "tmpl_customer@N" in err
    code, _, err = cli("template", "show", "tmpl_customer@0")
    assert code != 0 and "versions count from 1" in err
    code, _, err = cli("template", "show", "tmpl_customer@9")
    assert code != 0 and "versions of tmpl_customer: 1, 2" in err
