"""`seedbed apply DIR` and `seedbed pull DIR` against a real coordinator (real store, real Ray for
template validation): creation, idempotence (revisions do not move), diffs, dry runs, pruning,
invalid folders refused whole, a change made between plan and apply refused as a conflict, and a
pull that applies back as no change. No scenario is run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from seedbed.api.v1 import access_pb2, scenario_pb2
from seedbed.cli._apply_plan import ApplyConflict, _shown, apply_plan, folder_projects, plan_folder
from seedbed.cli._exits import ExitCode
from seedbed.cli._scenario_files import DEFAULT_MAX_SCRIPT_BYTES, HIDDEN, Folder, load_folder
from seedbed.client import Client, ClientError
from seedbed.coordinator.reporters import HIDDEN as COORDINATOR_HIDDEN
from tests.conftest import Cli

pytestmark = pytest.mark.integration

ORDERS = """\
id: scn_orders
name: Orders
script: orders.py
settings:
  timeout_seconds: 600
  overlap_policy: OVERLAP_POLICY_QUEUE_ONE
  triggers:
    - {id: nightly, cron: {expression: "0 2 * * *", timezone: Europe/Paris}}
  reporters:
    - id: chat
      outcomes: [RUN_STATE_FAILED]
      webhook:
        url: https://hooks.example.com/seedbed/T0K3N
        headers: {Authorization: "${env:SEEDBED_TEST_CHAT_TOKEN}"}
templates: [templates/customer.yaml]
"""
ORDERS_SCRIPT = "from seedbed.sdk import generate\nrows = generate('tmpl_customer', 10)\n"
BILLING = "id: billing\nscript: billing.py\n"
CUSTOMER = "id: tmpl_customer\nversion: 1\nfields:\n  id: {sequence: {start: 1}}\n"
TOKEN = "Bearer chat-token-7f3a"


@pytest.fixture
def cli(coordinator: tuple[Any, Client], capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(coordinator[0].address, capsys)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEEDBED_TEST_CHAT_TOKEN", TOKEN)
    root = tmp_path / "scenarios"
    (root / "templates").mkdir(parents=True)
    (root / "orders.yaml").write_text(ORDERS)
    (root / "orders.py").write_text(ORDERS_SCRIPT)
    (root / "billing.yaml").write_text(BILLING)
    (root / "billing.py").write_text("print('billing')\n")
    (root / "templates" / "customer.yaml").write_text(CUSTOMER)
    return root


def _revisions(client: Client) -> dict[str, int]:
    found = {s.id: s.revision for s in client.list_scenarios()}
    found.update({t.id: t.revision for t in client.list_templates()})
    return found


def _load(root: Path, project: str | None = None) -> Folder:
    return load_folder(
        root,
        default_project=project or "default",
        max_script_bytes=DEFAULT_MAX_SCRIPT_BYTES,
        environ=os.environ,
    )


def test_apply_creates_and_a_second_apply_changes_nothing(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path
) -> None:
    _, client = coordinator
    code, out, err = cli("apply", str(folder))
    assert code == 0, err
    assert "+ template tmpl_customer [default]: create" in out
    assert "+ scenario scn_orders [default]: create, from orders.yaml" in out
    assert "+ scenario scn_billing [default]: create, from billing.yaml" in out
    assert TOKEN not in out and "T0K3N" not in out  # secrets are never printed
    assert "applied: 3 created, 0 updated, 0 deleted" in out

    orders = client.get_scenario("scn_orders")
    assert (orders.name, orders.script, orders.project_key) == ("Orders", ORDERS_SCRIPT, "default")
    assert orders.settings.timeout_seconds == 600
    assert orders.settings.overlap_policy == scenario_pb2.OVERLAP_POLICY_QUEUE_ONE
    assert [t.id for t in orders.settings.triggers] == ["nightly"]
    assert orders.settings.reporters[0].webhook.headers["Authorization"] == TOKEN
    assert client.get_scenario("scn_billing").name == "scn_billing"
    assert client.get_template("tmpl_customer").source == CUSTOMER
    before = _revisions(client)
    assert before == {"scn_orders": 1, "scn_billing": 1, "tmpl_customer": 1}

    code, out, err = cli("apply", str(folder))
    assert code == 0, err
    assert "no changes: 0 to create, 0 to update, 0 to delete, 3 unchanged" in out
    code, out, _ = cli("apply", str(folder), "-o", "json")
    report = json.loads(out)
    assert code == 0 and report["result"] == "no changes" and report["applied"] == []
    assert {c["action"] for c in report["changes"]} == {"unchanged"}
    # YAML is the same report; -o goes before or after the command.
    code, out, _ = cli("-o", "yaml", "apply", str(folder), "--dry-run")
    assert code == 0 and yaml.safe_load(out) == {**report, "dry_run": True}
    assert _revisions(client) == before


def test_an_edit_is_shown_as_a_diff_a_dry_run_changes_nothing_and_apply_updates(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path
) -> None:
    _, client = coordinator
    assert cli("apply", str(folder))[0] == 0
    (folder / "orders.py").write_text(ORDERS_SCRIPT.replace("10)", "25)"))
    (folder / "orders.yaml").write_text(ORDERS.replace("timeout_seconds: 600", "timeout_seconds: 900"))
    (folder / "templates" / "customer.yaml").write_text(CUSTOMER + "  email: {faker: email}\n")

    code, out, err = cli("apply", str(folder), "--dry-run")
    assert code == 0, err
    assert "~ scenario scn_orders [default]: update (revision 1), from orders.yaml" in out
    assert "    settings.timeout_seconds: 600 → 900" in out
    assert "    -rows = generate('tmpl_customer', 10)" in out
    assert "    +rows = generate('tmpl_customer', 25)" in out
    assert "~ template tmpl_customer [default]: update (revision 1)" in out
    assert "    +  email: {faker: email}" in out
    assert "= scenario scn_billing [default]: unchanged (revision 1)" in out
    assert "dry run, nothing applied: 0 to create, 2 to update, 0 to delete, 1 unchanged" in out
    assert _revisions(client) == {"scn_orders": 1, "scn_billing": 1, "tmpl_customer": 1}

    code, out, err = cli("apply", str(folder), "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["result"] == "applied"
    assert report["applied"] == [
        {"kind": "template", "id": "tmpl_customer", "action": "update"},
        {"kind": "scenario", "id": "scn_orders", "action": "update"},
    ]
    orders_change = next(c for c in report["changes"] if c["id"] == "scn_orders")
    assert {"path": "settings.timeout_seconds", "old": 600, "new": 900} in orders_change["fields"]
    assert "+rows = generate('tmpl_customer', 25)" in orders_change["diff"]
    assert _revisions(client) == {"scn_orders": 2, "scn_billing": 1, "tmpl_customer": 2}
    orders = client.get_scenario("scn_orders")
    assert orders.settings.timeout_seconds == 900 and "25)" in orders.script
    assert "no changes: 0 to create, 0 to update, 0 to delete, 3 unchanged" in cli("apply", str(folder))[1]


def test_prune_deletes_scenarios_without_a_file_and_never_templates(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path
) -> None:
    _, client = coordinator
    client._call(client._access.CreateProject, access_pb2.CreateProjectRequest(key="shop", name="Shop"))
    client.get_project("shop").create_scenario("elsewhere", "Elsewhere", "print('shop')\n")
    client.put_template(CUSTOMER.replace("tmpl_customer", "tmpl_loose"))
    assert cli("apply", str(folder))[0] == 0
    (folder / "billing.yaml").unlink()

    code, out, _ = cli("apply", str(folder))
    assert code == 0
    assert "project default: 1 scenario(s) without a file kept (scn_billing); --prune deletes them" in out
    assert "no changes" in out

    code, out, err = cli("apply", str(folder), "--prune", "--dry-run")
    assert code == 0, err
    assert "- scenario scn_billing [default]: delete (revision 1), no file (--prune)" in out
    assert "templates without a file stay" in out
    assert "scn_billing" in {s.id for s in client.list_scenarios()}

    code, out, err = cli("apply", str(folder), "--prune")
    assert code == 0, err
    assert "applied: 0 created, 0 updated, 1 deleted" in out
    assert {s.id for s in client.list_scenarios()} == {"scn_orders", "scn_elsewhere"}
    assert {t.id for t in client.list_templates()} == {"tmpl_customer", "tmpl_loose"}


def test_an_invalid_folder_lists_every_problem_and_applies_nothing(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path
) -> None:
    _, client = coordinator
    (folder / "bad.yaml").write_text(
        "id: scn_orders\n"  # taken by orders.yaml
        "nmae: typo\n"
        "script: missing.py\n"
        "settings:\n"
        "  timeout_seconds: soon\n"
        "  overlap_policy: OVERLAP_POLICY_SOMETIMES\n"
        "  triggers: [{cron: {expression: '0 2 * *', timezone: Mars/Olympus}}]\n"
        "  reporters: [{id: hook, webhook: {url: '${env:SEEDBED_TEST_UNSET_VARIABLE}'}}]\n"
        "templates: [templates/missing.yaml]\n"
    )
    (folder / "broken.yml").write_text("id: [scn_x\n")
    (folder / "case.yaml").write_text("id: scn_Orders\nscript: billing.py\n")  # orders, up to case
    (folder / "big.yaml").write_text("id: big\nname: 42\nscript: big.py\n")
    (folder / "big.py").write_text("x = 1\n" * 200_000)
    (folder / "notmpl.yaml").write_text("id: notmpl\nscript: billing.py\ntemplates: [billing.py]\n")

    code, out, err = cli("apply", str(folder))
    assert code == 2
    expected = [
        "orders.yaml: id: scn_orders is also the id in bad.yaml",
        "case.yaml: id: scn_Orders is also the id in bad.yaml (ids must be unique, whatever their case)",
        "bad.yaml: nmae: unknown key",
        "bad.yaml: script: the script missing.py does not exist",
        "bad.yaml: settings.timeout_seconds: ",
        "bad.yaml: settings.overlap_policy: ",
        "bad.yaml: settings.triggers[0].id: is required",
        "bad.yaml: settings.triggers[0].cron.expression: '0 2 * *' has 4 fields",
        "bad.yaml: settings.triggers[0].cron.timezone: 'Mars/Olympus' is not a known IANA time zone",
        "bad.yaml: settings.reporters[0].webhook.url: the environment variable SEEDBED_TEST_UNSET_VARIABLE "
        "is not set",
        "bad.yaml: templates[0]: the template templates/missing.yaml does not exist",
        "broken.yml: is not valid YAML (line 2",
        "big.yaml: name: must be a string, not int",
        "big.yaml: script: big.py is 1200000 bytes; the limit is 1048576",
        "billing.py: id: a template needs an id",
    ]
    for line in expected:
        assert line in err, line
    assert f"nothing applied: {len(expected)} problem(s)" in err
    assert out == ""
    assert client.list_scenarios() == [] and client.list_templates() == []

    code, out, _ = cli("apply", str(folder), "-o", "json")
    report = json.loads(out)
    assert code == 2 and report["result"] == "invalid" and len(report["problems"]) == len(expected)
    assert {"file": "big.yaml", "key": "name", "message": "must be a string, not int (42)"} in report[
        "problems"
    ]

    # What only the coordinator can tell is refused the same way, before anything is written.
    for name in ("bad.yaml", "broken.yml", "big.yaml", "notmpl.yaml", "case.yaml"):
        (folder / name).unlink()
    (folder / "billing.yaml").write_text(BILLING + "project: nowhere\n")
    (folder / "orders.yaml").write_text(ORDERS.replace("${env:SEEDBED_TEST_CHAT_TOKEN}", "${stored}"))
    code, _, err = cli("apply", str(folder))
    assert code == 2
    assert "billing.yaml: project: 'nowhere': no such project" in err
    assert "orders.yaml: settings.reporters[0].webhook.headers.Authorization: is ${stored}, but" in err
    assert client.list_scenarios() == [] and client.list_templates() == []


def test_a_change_made_after_the_plan_is_a_conflict_and_survives(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path
) -> None:
    _, client = coordinator
    assert cli("apply", str(folder))[0] == 0
    (folder / "orders.py").write_text("print('from git')\n")
    loaded = _load(folder)
    plan = plan_folder(client, loaded, projects=folder_projects(loaded, None), prune=False)
    assert [c.id for c in plan.pending] == ["scn_orders"]

    # Someone edits the scenario by hand between the plan and the apply.
    client.put_scenario("scn_orders", script="print('by hand')\n")
    with pytest.raises(ApplyConflict) as caught:
        apply_plan(client, plan)
    assert (caught.value.change.id, caught.value.change.revision, caught.value.found) == ("scn_orders", 1, 2)
    assert str(caught.value).startswith(
        "conflict: scenario scn_orders was changed by someone else after this apply read it: "
        "read revision 1, but it is now at revision 2"
    )
    assert client.get_scenario("scn_orders").script == "print('by hand')\n"

    # Creations race too: what the plan read as absent must still be absent.
    (folder / "new.yaml").write_text("id: scn_new\nscript: billing.py\n")
    (folder / "templates" / "other.yaml").write_text(CUSTOMER.replace("tmpl_customer", "tmpl_other"))
    (folder / "billing.yaml").write_text(BILLING + "templates: [templates/other.yaml]\n")
    loaded = _load(folder)
    plan = plan_folder(client, loaded, projects=folder_projects(loaded, None), prune=False)
    client.put_template(CUSTOMER.replace("tmpl_customer", "tmpl_other") + "# by hand\n")
    with pytest.raises(ApplyConflict) as caught:
        apply_plan(client, plan)
    assert (caught.value.change.id, caught.value.change.revision, caught.value.found) == ("tmpl_other", 0, 1)
    assert "read absent, but it has been created meanwhile (revision 1)" in str(caught.value)
    assert client.get_template("tmpl_other").source.endswith("# by hand\n")

    (folder / "templates" / "other.yaml").write_text(client.get_template("tmpl_other").source)
    (folder / "billing.py").write_text("print('billing v2')\n")
    loaded = _load(folder)
    plan = plan_folder(client, loaded, projects=folder_projects(loaded, None), prune=False)
    client.put_scenario("scn_new", script="print('first')\n")
    with pytest.raises(ApplyConflict) as caught:
        apply_plan(client, plan)
    assert (caught.value.change.id, caught.value.found) == ("scn_new", 1)
    assert [c.id for c in caught.value.applied] == ["scn_billing"]
    assert client.get_scenario("scn_new").script == "print('first')\n"


def test_what_only_the_coordinator_refuses_is_listed_every_one_and_nothing_is_applied(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path
) -> None:
    _, client = coordinator
    # Files the client finds nothing wrong with, but the coordinator refuses: a webhook to a
    # loopback address, a minute 61, a template field of no known kind.
    (folder / "orders.yaml").write_text(
        ORDERS.replace("https://hooks.example.com/seedbed/T0K3N", "http://127.0.0.1/x")
    )
    (folder / "billing.yaml").write_text(
        BILLING + "settings:\n  triggers: [{id: hourly, cron: {expression: '61 * * * *', timezone: UTC}}]\n"
    )
    (folder / "templates" / "customer.yaml").write_text(CUSTOMER + "  email: {nosuch: 1}\n")
    (folder / "plain.yaml").write_text("id: plain\nscript: plain.py\n")
    (folder / "plain.py").write_text("print('plain')\n")

    for dry_run in ((), ("--dry-run",)):
        code, out, err = cli("apply", str(folder), *dry_run)
        assert code == ExitCode.REFUSED, err
        assert "+ scenario scn_orders [default]: create" in out  # the plan is shown first
        assert "nothing applied: 3 problem(s)" in err
        assert (
            "templates/customer.yaml: template tmpl_customer: the coordinator refuses it: "
            "INVALID_ARGUMENT: source: the template is invalid" in err
        )
        assert (
            "orders.yaml: scenario scn_orders: the coordinator refuses it: INVALID_ARGUMENT: "
            "settings.reporters[0].webhook.url: " in err
        )
        assert (
            "billing.yaml: scenario scn_billing: the coordinator refuses it: INVALID_ARGUMENT: "
            "settings.triggers[0].cron" in err
        )
        assert client.list_scenarios() == [] and client.list_templates() == []

    code, out, _ = cli("apply", str(folder), "-o", "json")
    report = json.loads(out)
    assert code == ExitCode.REFUSED and report["result"] == "invalid" and report["applied"] == []
    assert [(p["file"], p["key"]) for p in report["problems"]] == [
        ("templates/customer.yaml", "template tmpl_customer"),
        ("billing.yaml", "scenario scn_billing"),
        ("orders.yaml", "scenario scn_orders"),
    ]

    # A lone problem, last in the order of writes, still stops everything before it: run_as.
    (folder / "templates" / "customer.yaml").write_text(CUSTOMER)
    (folder / "orders.yaml").write_text(ORDERS)
    (folder / "billing.yaml").write_text(BILLING)
    (folder / "plain.yaml").write_text("id: plain\nscript: plain.py\nsettings: {run_as: nobody}\n")
    code, _, err = cli("apply", str(folder))
    assert code == ExitCode.REFUSED and "nothing applied: 1 problem(s)" in err
    assert (
        "plain.yaml: scenario scn_plain: the coordinator refuses it: INVALID_ARGUMENT: settings.run_as: "
        "user 'nobody' does not exist" in err
    )
    assert client.list_scenarios() == [] and client.list_templates() == []
    (folder / "plain.yaml").write_text("id: plain\nscript: plain.py\n")
    assert cli("apply", str(folder))[0] == 0
    assert {s.id for s in client.list_scenarios()} == {"scn_orders", "scn_billing", "scn_plain"}


def test_files_outside_the_folder_are_refused_and_never_read(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path, tmp_path: Path
) -> None:
    _, client = coordinator
    outside = tmp_path / "credentials"
    outside.write_text("machine example.com password s3cr3t-outside\n")
    (tmp_path / "loose.yaml").write_text(CUSTOMER.replace("tmpl_customer", "tmpl_loose"))
    (folder / "link.py").symlink_to(outside)
    (folder / "linked.yaml").symlink_to(tmp_path / "loose.yaml")
    (folder / "absolute.yaml").write_text(f"id: absolute\nscript: {outside}\n")
    (folder / "dotdot.yaml").write_text(
        "id: dotdot\nscript: billing.py\ntemplates: [templates/../../loose.yaml]\n"
    )
    (folder / "symlink.yaml").write_text("id: symlink\nscript: link.py\n")

    code, out, err = cli("apply", str(folder), "--dry-run")
    assert code == 2 and out == ""
    for line in (
        f"absolute.yaml: script: '{outside}' leads outside the folder",
        "dotdot.yaml: templates[0]: 'templates/../../loose.yaml' leads outside the folder",
        "symlink.yaml: script: 'link.py' leads outside the folder",
        "linked.yaml: it leads outside the folder",
    ):
        assert line in err, line
    assert "nothing applied: 4 problem(s)" in err
    assert "s3cr3t-outside" not in out + err and "tmpl_loose" not in out + err
    assert client.list_scenarios() == [] and client.list_templates() == []


def test_a_plan_never_shows_two_different_hidden_values_alike(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = coordinator
    assert cli("apply", str(folder))[0] == 0
    (folder / "orders.yaml").write_text(ORDERS.replace("/seedbed/T0K3N", "/seedbed/N3WT0K3N"))
    monkeypatch.setenv("SEEDBED_TEST_CHAT_TOKEN", "Bearer rotated")

    code, out, err = cli("apply", str(folder), "--dry-run")
    assert code == 0, err
    assert (
        '    settings.reporters[chat].webhook.url: "https://hooks.example.com/…" → '
        '"https://hooks.example.com/… (path changed)"'
    ) in out
    assert (
        '    settings.reporters[chat].webhook.headers.Authorization: "(hidden)" → "(hidden, changed)"'
    ) in out
    assert "T0K3N" not in out and "rotated" not in out
    assert "dry run, nothing applied: 0 to create, 1 to update" in out

    # The parts that may carry a credential never print; what differs among them is named.
    def shown(old: str, new: str) -> tuple[Any, Any]:
        return _shown("settings.reporters[chat].webhook.url", old, new)

    assert shown("https://h.example/", "https://h.example:8443/") == (
        "https://h.example/",
        "https://h.example:8443/",
    )
    assert shown("https://h.example/?token=a", "https://h.example/?token=b") == (
        "https://h.example/…",
        "https://h.example/… (query changed)",
    )
    assert shown("https://u:pw@h.example/a", "https://u:other@h.example/b") == (
        "https://h.example/…",
        "https://h.example/… (user info and path changed)",
    )
    assert shown("https://h.example/a", "https://H.example/a")[1] == "https://h.example/… (spelling changed)"
    assert client.get_scenario("scn_orders").revision == 1


def test_pull_writes_no_secrets_and_applies_back_as_no_change(
    coordinator: tuple[Any, Client], cli: Cli, tmp_path: Path
) -> None:
    _, client = coordinator
    client._call(client._access.CreateProject, access_pb2.CreateProjectRequest(key="shop", name="Shop"))
    client.put_template(CUSTOMER, project_key="shop")
    client.put_template(
        "id: tmpl_order\nversion: 1\nfields:\n  customer: {ref: {template: tmpl_customer, field: id}}\n",
        project_key="shop",
    )
    client.put_template(CUSTOMER.replace("tmpl_customer", "tmpl_unused"), project_key="shop")
    client.put_template(CUSTOMER.replace("tmpl_customer", "tmpl_default_project"))
    shop = client.get_project("shop")
    scenario = shop.create_scenario("orders", "Orders", "rows = generate('tmpl_order', 5)\n")
    settings = scenario.get_settings()
    settings.add_daily_trigger(2, 30, timezone="Europe/Paris")
    settings.add_webhook_reporter("https://hooks.example.com/x", headers={"Authorization": TOKEN})
    settings.add_email_reporter(["team@example.com"], outcomes=["FAILED"])
    settings.retry_policy = scenario_pb2.RetryPolicy(maximum_attempts=5)
    settings.save()
    shop.create_scenario("plain", "Plain", "print('plain')\n")
    secret = client.get_scenario("scn_orders").settings.reporters[0].webhook.signing_secret
    assert secret.startswith("whsec_")
    before = _revisions(client)

    pulled = tmp_path / "pulled"
    code, out, err = cli("pull", str(pulled), "--project", "shop")
    assert code == 0, err
    files = sorted(str(p.relative_to(pulled)) for p in pulled.rglob("*") if p.is_file())
    assert files == [
        "orders.py",
        "orders.yaml",
        "plain.py",
        "plain.yaml",
        "templates/customer.yaml",
        "templates/order.yaml",
        "templates/unused.yaml",
    ]
    text = "".join(p.read_text() for p in pulled.rglob("*") if p.is_file())
    assert TOKEN not in text and "whsec_" not in text and secret not in text
    orders = (pulled / "orders.yaml").read_text()
    assert "Authorization: ${stored}" in orders
    assert "templates:\n- templates/customer.yaml\n- templates/order.yaml\n" in orders
    assert "project: shop" in orders and "script: orders.py" in orders

    code, out, err = cli("apply", str(pulled))
    assert code == 0, err
    assert "no changes: 0 to create, 0 to update, 0 to delete, 4 unchanged" in out
    assert _revisions(client) == before

    # An edit applies with the stored header and signing secret kept.
    (pulled / "orders.yaml").write_text(orders.replace("name: Orders", "name: Orders v2"))
    code, out, err = cli("apply", str(pulled))
    assert code == 0, err
    assert '    name: "Orders" → "Orders v2"' in out
    webhook = client.get_scenario("scn_orders").settings.reporters[0].webhook
    assert (webhook.headers["Authorization"], webhook.signing_secret) == (TOKEN, secret)

    code, _, err = cli("pull", str(pulled), "--project", "shop")
    assert code == 2 and "is not empty" in err
    code, out, err = cli("pull", str(pulled), "--project", "shop", "--force", "-o", "json")
    assert code == 0, err
    assert json.loads(out) == {"folder": str(pulled), "files": files}
    assert "name: Orders v2" in (pulled / "orders.yaml").read_text()


def test_pull_by_a_viewer_writes_nothing_and_the_placeholder_is_never_applied(
    coordinator: tuple[Any, Client], cli: Cli, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = coordinator
    assert cli("apply", str(folder))[0] == 0
    stored = client.get_scenario("scn_orders")
    client._call(client._access.CreateUser, access_pb2.CreateUserRequest(user_id="vera"))
    client._call(
        client._access.SetMembership,
        access_pb2.SetMembershipRequest(user_id="vera", project_key="default", role=access_pb2.ROLE_VIEWER),
    )
    key = client._call(client._access.CreateApiKey, access_pb2.CreateApiKeyRequest(user_id="vera")).secret
    # The viewer's key for the commands below (--api-key would outlive the test in os.environ).
    monkeypatch.setenv("SEEDBED_API_KEY", key)

    pulled = tmp_path / "pulled"
    code, out, err = cli("pull", str(pulled))
    assert code == ExitCode.PERMISSION_DENIED and out == ""
    assert "nothing pulled: the coordinator hides webhook URLs and header values" in err
    assert "pull needs role EDITOR in the project of:\n  scenario scn_orders (project default)" in err
    assert "scn_billing" not in err  # no webhook: nothing hidden
    assert not pulled.exists()
    assert COORDINATOR_HIDDEN == HIDDEN  # the client knows the coordinator's placeholder

    # A folder that holds the placeholder anyway (pulled before pull refused it, or copied from a
    # viewer's GET) is refused by the client, and by the coordinator when sent past the client.
    (folder / "orders.yaml").write_text(
        ORDERS.replace(
            "url: https://hooks.example.com/seedbed/T0K3N", f'url: "https://hooks.example.com/{HIDDEN}"'
        ).replace("${env:SEEDBED_TEST_CHAT_TOKEN}", HIDDEN)
    )
    code, _, err = cli("apply", str(folder))
    assert code == 2
    assert "orders.yaml: settings.reporters[0].webhook.url: holds the placeholder" in err
    assert "orders.yaml: settings.reporters[0].webhook.headers.Authorization: holds the placeholder" in err
    settings = scenario_pb2.ScenarioSettings()
    settings.CopyFrom(stored.settings)
    settings.reporters[0].webhook.url = f"https://hooks.example.com/{HIDDEN}"
    with pytest.raises(ClientError) as caught:
        client.update_scenario_settings("scn_orders", settings)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "settings.reporters[0].webhook.url: holds the placeholder" in caught.value.details
    assert client.get_scenario("scn_orders") == stored

    # With role EDITOR the same pull works, and applies back as no change.
    client._call(
        client._access.SetMembership,
        access_pb2.SetMembershipRequest(user_id="vera", project_key="default", role=access_pb2.ROLE_EDITOR),
    )
    code, out, err = cli("pull", str(pulled))
    assert code == 0, err
    assert HIDDEN not in "".join(p.read_text() for p in pulled.rglob("*") if p.is_file())
    code, out, err = cli("apply", str(pulled))
    assert code == 0, err
    assert "no changes" in out
