"""Run assets on the real stack (PostgreSQL store, Ray, Docker sandboxes): a scenario writes text,
JSON, CSV and bytes with ``dm.assets`` and a file of the same name through each of two file
connections (each kept as its connection wrote it); they list and download
byte for byte over gRPC, REST and the CLI; an asset over the cap fails with LimitExceeded naming it;
hostile names are refused; a retried run keeps its last attempt's assets, once; purging removes
them (``AssetRepository.delete_run``)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedbed.api.v1 import connection_pb2, run_pb2, scenario_pb2
from seedbed.cli import main
from seedbed.client import Client, LogEvent, ScenarioRun
from seedbed.coordinator import running_in_thread
from seedbed.coordinator.store import Store
from tests.conftest import ADMIN_API_KEY, settings_for

CAP = 64 * 1024

SCRIPT = """\
from seedbed.sdk import Seedbed, InvalidArgument, LimitExceeded

dm = Seedbed()
rows = [{"id": i, "name": f"n{i}", "vip": i % 2 == 0, "note": None} for i in range(1, 6)]
dm.assets.write_text("report/summary.txt", "5 customers\\nné\\n")
dm.assets.write_json("report/summary.json", {"customers": 5, "ids": [r["id"] for r in rows]})
dm.assets.write_csv("customers.csv", rows)
dm.assets.write_bytes("raw.bin", bytes(range(256)) * 3)
dm.connection("conn_files").write("export.csv", rows, format="csv")
dm.connection("conn_other").write("export.csv", rows[:2], format="csv")
for name in ["../escape.txt", "/etc/passwd", "a b.txt", ".hidden", "files/conn_files/x.csv"]:
    try:
        dm.assets.write_text(name, "x")
        print("ACCEPTED", name)
    except InvalidArgument:
        print("REFUSED", name)
try:
    dm.assets.write_text("huge.txt", "x" * (70 * 1024))
except LimitExceeded as exc:
    print("LIMIT", exc)
try:
    dm.assets.write_text("report/summary.txt", "again")
except InvalidArgument as exc:
    print("TWICE", exc)
"""

RETRIED = """\
from seedbed.sdk import Seedbed, _context

dm = Seedbed()
attempt = _context.current.attempt
dm.assets.write_text("report.txt", f"written by attempt {attempt}")
if attempt == 1:
    dm.assets.write_text("only-first.txt", "gone")
    raise RuntimeError("first attempt fails after writing its assets")
"""


@pytest.fixture
def stack(ray_session: None, pg_database: str, tmp_path: Path) -> Iterator[tuple[Any, Client, str]]:
    settings = settings_for(pg_database, tmp_path, max_asset_bytes=CAP, max_run_asset_bytes=4 * CAP)
    with running_in_thread(settings) as coordinator, Client(coordinator.address) as client:
        for connection_id in ("conn_files", "conn_other"):
            client.create_connection(
                connection_pb2.CreateConnectionRequest(
                    connection_id=connection_id, kind=connection_pb2.CONNECTION_KIND_FILE
                )
            )
        yield coordinator, client, pg_database


def _run(client: Client, scenario: str, script: str, **settings: Any) -> run_pb2.Run:
    client.put_scenario(scenario, script=script, settings=scenario_pb2.ScenarioSettings(**settings))
    return client.wait(client.run(scenario).run_id)


def _logs(client: Client, run_id: str) -> str:
    return "\n".join(e.line.text for e in client.stream_logs(run_id, follow=False) if isinstance(e, LogEvent))


def _table(rows: int) -> bytes:
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["id", "name", "vip", "note"])
    for i in range(1, rows + 1):
        writer.writerow([i, f"n{i}", "true" if i % 2 == 0 else "false", ""])
    return table.getvalue().encode()


def _expected() -> dict[str, bytes]:
    summary = {"customers": 5, "ids": [1, 2, 3, 4, 5]}
    return {
        "customers.csv": _table(5),
        "files/conn_files/export.csv": _table(5),
        "files/conn_other/export.csv": _table(2),  # the same file name, its own file
        "raw.bin": bytes(range(256)) * 3,
        "report/summary.json": json.dumps(summary, ensure_ascii=False, indent=2).encode(),
        "report/summary.txt": "5 customers\nné\n".encode(),
    }


def test_assets_are_kept_listed_and_downloaded_everywhere(
    stack: tuple[Any, Client, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coordinator, client, store_url = stack
    run = _run(client, "assets", SCRIPT)
    logs = _logs(client, run.id)
    assert run.state == run_pb2.RUN_STATE_SUCCESS, (run.first_error, logs)
    expected = _expected()

    # Hostile names and a second write of a name are refused; the asset over the cap names itself.
    assert "ACCEPTED" not in logs and logs.count("REFUSED") == 5
    limit = next(line for line in logs.splitlines() if line.startswith("LIMIT"))
    assert "'huge.txt'" in limit and "71,680 bytes" in limit
    assert "65,536 bytes" in limit and "SEEDBED_MAX_ASSET_BYTES" in limit
    assert "TWICE" in logs and "already written" in logs

    # gRPC: the listing, the summary on the run, each asset byte for byte.
    listed = client.run_assets(run.id)
    assert {a.name: (a.size_bytes, a.sha256, a.attempt) for a in listed} == {
        name: (len(data), hashlib.sha256(data).hexdigest(), 1) for name, data in expected.items()
    }
    found = client.get_run(run.id)
    assert (found.assets.count, found.assets.size_bytes) == (6, sum(map(len, expected.values())))
    for asset in ScenarioRun(client, found).assets():
        assert asset.read() == expected[asset.name]

    # REST.
    with httpx.Client(
        base_url=f"http://{coordinator.rest_address}",
        headers={"Authorization": f"Bearer {ADMIN_API_KEY}"},
        timeout=30,
    ) as http:
        names = [a["name"] for a in http.get(f"/v1/runs/{run.id}/assets").json()["assets"]]
        assert names == sorted(expected)
        for name, data in expected.items():
            answer = http.get(f"/v1/runs/{run.id}/assets/{name}")
            assert answer.status_code == 200 and answer.content == data, name
            assert answer.headers["content-disposition"].startswith("attachment; filename=")
        assert http.get(f"/v1/runs/{run.id}/assets/huge.txt").status_code == 404

    # The CLI.
    capsys.readouterr()
    assert main(["--address", coordinator.address, "run", "assets", run.id, "-o", "json"]) == 0
    assert [a["name"] for a in json.loads(capsys.readouterr().out)["assets"]] == sorted(expected)
    target = tmp_path / "summary.json"
    argv = ["--address", coordinator.address, "run", "download", run.id, "report/summary.json", str(target)]
    assert main(argv) == 0
    assert target.read_bytes() == expected["report/summary.json"]
    assert main(["--address", coordinator.address, "run", "download", run.id, "raw.bin", str(tmp_path)]) == 0
    assert (tmp_path / "raw.bin").read_bytes() == expected["raw.bin"]
    capsys.readouterr()
    assert main(["--address", coordinator.address, "run", "download", run.id, "report/summary.txt", "-"]) == 0
    assert capsys.readouterr().out == expected["report/summary.txt"].decode()

    # A purge removes them (the store's part of it).
    async def delete() -> tuple[int, int]:
        store = await Store.open(store_url)
        try:
            return await store.assets.delete_run(run.id)
        finally:
            await store.aclose()

    assert asyncio.run(delete()) == (6, sum(map(len, expected.values())))
    assert client.run_assets(run.id) == []


def test_a_retried_run_keeps_its_last_attempts_assets_once(stack: tuple[Any, Client, str]) -> None:
    _, client, _ = stack
    retry = scenario_pb2.RetryPolicy(
        maximum_attempts=2,
        initial_backoff_seconds=0.1,
        maximum_backoff_seconds=0.2,
        retry_on=[run_pb2.FAILURE_REASON_SCRIPT_ERROR],
    )
    run = _run(client, "retried", RETRIED, retry_policy=retry)
    assert run.state == run_pb2.RUN_STATE_SUCCESS and run.attempt_count == 2, run.first_error
    listed = client.run_assets(run.id)
    assert [(a.name, a.attempt) for a in listed] == [("report.txt", 2)]
    meta, chunks = client.download_run_asset(run.id, "report.txt")
    assert b"".join(chunks) == b"written by attempt 2"
