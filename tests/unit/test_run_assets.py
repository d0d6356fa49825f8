"""Run assets without Docker: the agent's collector (names, caps, the memory budget, pieces), the
coordinator's receiver against a real store, and the faces (gRPC, REST, CLI, the Python client) over
a real coordinator whose attempts run on the fake executor. The same over real sandboxes is in
tests/integration/test_run_assets.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedbed.api.v1 import asset_pb2, attempt_pb2, run_pb2, scenario_pb2
from seedbed.cli import main
from seedbed.client import AssetIntegrityError, Client, ClientError, RunAsset
from seedbed.coordinator.assets import AssetReceiver
from seedbed.coordinator.faces.rest._assets import content_disposition, served_type
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.server import running_in_thread
from seedbed.coordinator.store import Store
from seedbed.worker import tracing
from seedbed.worker.agent import Agent
from seedbed.worker.agent._assets import PIECE_BYTES, AssetCollector, name_problem
from seedbed.worker.agent._budget import MemoryBudget
from seedbed.worker.agent._errors import InvalidArgument, LimitExceeded
from tests.conftest import ADMIN_API_KEY, settings_for

ADMIN = {"Authorization": f"Bearer {ADMIN_API_KEY}"}

# -- the agent's collector ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _collector(**caps: int) -> tuple[AssetCollector, MemoryBudget]:
    budget = MemoryBudget(caps.pop("memory", 64 * 2**20))
    return AssetCollector(memory=budget, **caps), budget


def _write(collector: AssetCollector, name: str, *pieces: bytes) -> Any:
    handle = collector.open({"name": name, "content_type": "text/plain; charset=utf-8"})["handle"]
    for piece in pieces:
        collector.append({"handle": handle, "data": _b64(piece)})
    return collector.close({"handle": handle})


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "/abs.txt",
        "a//b.txt",
        "a/./b.txt",
        ".hidden",
        "a/.b",
        "nul\x00.txt",
        "line\nbreak.txt",
        "space name.txt",
        "back\\slash.txt",
        "x" * 201,
        "/".join(["d"] * 9),
        "files/conn/x.csv",
        "",
        "ünïcode.txt",
    ],
)
def test_hostile_names_are_refused_by_the_agent(name: str) -> None:
    collector, budget = _collector()
    assert name_problem(name) is not None
    with pytest.raises(InvalidArgument):
        collector.open({"name": name, "content_type": "application/json"})
    assert budget.held == 0


def test_names_with_folders_are_accepted() -> None:
    assert name_problem("report/2024-01/summary.v2.json") is None
    assert name_problem("a" * 200) is None


def test_an_asset_is_shipped_in_pieces_and_leaves_the_budget() -> None:
    collector, budget = _collector()
    data = bytes(range(256)) * (PIECE_BYTES // 256 * 2 + 7)  # two pieces and a bit
    parts = [data[i : i + PIECE_BYTES] for i in range(0, len(data), PIECE_BYTES)]
    answer = _write(collector, "big.bin", *parts)
    assert answer == {"name": "big.bin", "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert budget.held == len(data)
    pieces = list(collector.drain())
    assert [p.offset for p in pieces] == [0, PIECE_BYTES, 2 * PIECE_BYTES]
    assert [p.last for p in pieces] == [False, False, True]
    assert b"".join(p.chunk for p in pieces) == data
    assert pieces[0].content_type == "text/plain; charset=utf-8"
    assert pieces[-1].size_bytes == len(data) and pieces[-1].sha256 == answer["sha256"]
    assert budget.held == 0
    assert list(collector.drain()) == []


def test_an_empty_asset_is_one_last_piece() -> None:
    collector, _ = _collector()
    _write(collector, "empty.txt")
    (piece,) = collector.drain()
    assert piece.last and piece.size_bytes == 0 and piece.sha256 == hashlib.sha256(b"").hexdigest()


def test_a_name_is_written_once_per_attempt() -> None:
    collector, _ = _collector()
    _write(collector, "a.txt", b"one")
    with pytest.raises(InvalidArgument, match="already written"):
        collector.open({"name": "a.txt", "content_type": "application/json"})


def test_an_asset_over_its_cap_names_it_the_cap_and_the_setting() -> None:
    collector, budget = _collector(max_asset_bytes=10)
    handle = collector.open({"name": "big.txt", "content_type": "text/plain; charset=utf-8"})["handle"]
    collector.append({"handle": handle, "data": _b64(b"12345678")})
    with pytest.raises(LimitExceeded, match=r"asset 'big.txt'.*16 bytes.*10 bytes.*SEEDBED_MAX_ASSET_BYTES"):
        collector.append({"handle": handle, "data": _b64(b"abcdefgh")})
    assert budget.held == 0  # the asset was dropped whole
    with pytest.raises(InvalidArgument, match="unknown or closed"):
        collector.close({"handle": handle})
    assert list(collector.drain()) == []
    _write(collector, "big.txt", b"small")  # the name is free again
    assert [p.chunk for p in collector.drain()] == [b"small"]


def test_the_run_cap_counts_every_asset() -> None:
    collector, _ = _collector(max_asset_bytes=100, max_run_bytes=150)
    _write(collector, "one.txt", b"x" * 100)
    with pytest.raises(LimitExceeded, match=r"asset 'two.txt'.*SEEDBED_MAX_RUN_ASSET_BYTES"):
        _write(collector, "two.txt", b"y" * 60)
    _write(collector, "three.txt", b"z" * 50)


def test_assets_count_against_the_agent_memory_budget() -> None:
    collector, budget = _collector(memory=1000)
    budget.hold(900, "something else")
    with pytest.raises(LimitExceeded, match="SEEDBED_AGENT_MEMORY_BYTES"):
        _write(collector, "a.txt", b"x" * 200)
    assert budget.held == 900


@pytest.mark.parametrize("data", ["not base64!", 12, None, "A" * 1_500_000])
def test_malformed_pieces_are_refused_and_drop_the_asset(data: Any) -> None:
    collector, budget = _collector()
    handle = collector.open({"name": "a.txt", "content_type": "application/json"})["handle"]
    with pytest.raises(InvalidArgument):
        collector.append({"handle": handle, "data": data})
    assert budget.held == 0
    with pytest.raises(InvalidArgument):
        collector.close({"handle": handle})


def test_a_close_waits_for_an_append_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """A close arriving while a piece is decoded and charged sees the piece: it was one lock
    section (a close between two sections answered the size without the piece, which was then
    added to an asset already shipped)."""
    import threading

    collector, budget = _collector()
    handle = collector.open({"name": "a.txt", "content_type": "text/plain; charset=utf-8"})["handle"]
    closed: list[Any] = []
    decode = base64.b64decode

    def decode_while_closing(raw: str, validate: bool = False) -> bytes:
        closer = threading.Thread(target=lambda: closed.append(collector.close({"handle": handle})))
        closer.start()
        closer.join(timeout=0.5)  # blocked on the lock until this append is done
        return decode(raw, validate=validate)

    monkeypatch.setattr(base64, "b64decode", decode_while_closing)
    collector.append({"handle": handle, "data": _b64(b"abc")})
    monkeypatch.undo()
    for _ in range(100):
        if closed:
            break
        threading.Event().wait(0.01)
    assert closed[0]["size_bytes"] == 3 and closed[0]["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert [p.chunk for p in collector.drain()] == [b"abc"]
    assert budget.held == 0


def test_unknown_content_types_and_handles_are_refused() -> None:
    collector, _ = _collector()
    with pytest.raises(InvalidArgument, match="content_type"):
        collector.open({"name": "a.html", "content_type": "text/html"})
    with pytest.raises(InvalidArgument, match="unknown or closed"):
        collector.append({"handle": "asset_99", "data": ""})
    assert collector.abandon({"handle": "asset_99"}) is None


def test_file_connection_files_are_kept_in_their_last_form(tmp_path: Path) -> None:
    collector, _ = _collector(max_asset_bytes=100, max_run_bytes=150)
    path = tmp_path / "out.csv"
    path.write_bytes(b"a\n1\n")
    assert collector.file_written("conn_files", "out.csv", path, 4) is None
    path.write_bytes(b"a\n1\n2\n")
    assert collector.file_written("conn_files", "out.csv", path, 6) is None  # replaces the first
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * 120)
    warning = collector.file_written("conn_files", "big.csv", big, 120)
    assert warning is not None and "big.csv" in warning and "SEEDBED_MAX_ASSET_BYTES" in warning
    pieces = list(collector.drain_files(pytest.fail))
    assert [(p.name, p.chunk, p.content_type) for p in pieces] == [
        ("files/conn_files/out.csv", b"a\n1\n2\n", "text/csv; charset=utf-8")
    ]


def test_a_file_replaced_by_a_symlink_is_not_read(tmp_path: Path) -> None:
    collector, _ = _collector()
    secret = tmp_path / "secret"
    secret.write_bytes(b"1234")
    link = tmp_path / "out.csv"
    link.symlink_to(secret)
    collector.file_written("conn_files", "out.csv", link, 4)
    said: list[str] = []
    assert list(collector.drain_files(said.append)) == []
    assert said and "symbolic link" in said[0]


def test_an_asset_makes_one_span_per_open_and_close_not_per_piece(tmp_path: Path) -> None:
    spec = attempt_pb2.AttemptSpec(run_id="run_spans", attempt=1, ledger_key=b"k" * 32)
    agent = Agent(spec, artifacts_dir=tmp_path)
    parent = f"00-{'a' * 32}-{'b' * 16}-01"
    with tracing.SpanRecorder(parent, max_spans=100, max_attribute_length=256) as recorder:
        script = tracing.start_span("script", parent=recorder.context, structural=True)
        with tracing.activated(tracing.context_of(script)):
            handle = agent("asset.open", {"name": "big.bin", "content_type": "application/octet-stream"})
            for _ in range(5):
                agent("asset.append", {"handle": handle["handle"], "data": _b64(b"x" * 1000)})
            agent("asset.close", handle)
        agent.settle()
        agent.close()
        script.end()
        spans, _ = recorder.take()
    assert sorted(s.name for s in spans) == ["asset.close", "asset.open", "script"]


# -- the coordinator's receiver -------------------------------------------------------------------------


def _pieces(name: str, data: bytes, size: int = 3) -> list[asset_pb2.AttemptAsset]:
    out = [
        asset_pb2.AttemptAsset(name=name, offset=o, chunk=data[o : o + size])
        for o in range(0, max(len(data), 1), size)
    ]
    out[-1].last = True
    out[-1].size_bytes = len(data)
    out[-1].sha256 = hashlib.sha256(data).hexdigest()
    return out


async def _receive(
    store: Store, run_id: str, pieces: list[asset_pb2.AttemptAsset], *, end: bool = False, **caps: int
) -> list[str]:
    said: list[str] = []

    async def say(text: str) -> None:
        said.append(text)

    receiver = AssetReceiver(
        store.assets,
        run_id,
        1,
        max_asset_bytes=caps.get("max_asset_bytes", 1000),
        max_run_bytes=caps.get("max_run_bytes", 2000),
        say=say,
    )
    for piece in pieces:
        await receiver.piece(piece)
    if end:
        await receiver.end()
    return said


@pytest.fixture
def run_store(store_url: str, tmp_path: Path) -> Iterator[tuple[Store, str, asyncio.AbstractEventLoop]]:
    """A store holding one run (made by a fake coordinator), its id, and a loop to call it on."""
    settings = settings_for(store_url, tmp_path)
    with running_in_thread(settings, FakeDispatcher()) as coordinator, Client(coordinator.address) as client:
        client.put_scenario("plain", script="print hello")
        run_id = client.run("plain").run_id
        client.wait(run_id)
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(Store.open(store_url))
    try:
        yield store, run_id, loop
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()


def test_the_receiver_keeps_whole_assets_and_drops_broken_ones(
    run_store: tuple[Store, str, asyncio.AbstractEventLoop],
) -> None:
    store, run_id, loop = run_store
    good = _pieces("good.txt", b"hello world")
    wrong_digest = _pieces("digest.txt", b"abcdef")
    wrong_digest[-1].sha256 = "0" * 64
    out_of_order = _pieces("order.txt", b"abcdefghi")
    out_of_order[1].offset = 4
    said = loop.run_until_complete(
        _receive(
            store,
            run_id,
            [
                *good,
                *wrong_digest,
                *out_of_order,
                *_pieces("../escape.txt", b"x"),
                *_pieces("a\x00b", b"x"),
                *_pieces("over.bin", b"y" * 20),
            ],
            max_asset_bytes=10 + 5,
        )
    )
    assert [a.name for a in loop.run_until_complete(store.assets.of_run(run_id))] == ["good.txt"]
    assert len(said) == 5 and all("not kept" in s for s in said)
    asset = loop.run_until_complete(store.assets.get(run_id, "good.txt"))

    async def content() -> bytes:
        return b"".join([c async for c in store.assets.chunks(asset)])

    assert loop.run_until_complete(content()) == b"hello world"
    assert loop.run_until_complete(store.assets.summary(run_id)) == (1, 11)
    assert loop.run_until_complete(store.assets.delete_run(run_id)) == (1, 11)
    assert loop.run_until_complete(store.assets.of_run(run_id)) == []
    assert loop.run_until_complete(store.assets.delete_run(run_id)) == (0, 0)


def test_the_receiver_holds_the_run_cap(run_store: tuple[Store, str, asyncio.AbstractEventLoop]) -> None:
    store, run_id, loop = run_store
    pieces = _pieces("a.bin", b"a" * 8) + _pieces("b.bin", b"b" * 8)
    said = loop.run_until_complete(_receive(store, run_id, pieces, max_run_bytes=12))
    assert [a.name for a in loop.run_until_complete(store.assets.of_run(run_id))] == ["a.bin"]
    assert "b.bin" in said[0]


# -- the faces over a fake coordinator ---------------------------------------------------------------

# Attempt 1 keeps two assets and loses its worker; attempt 2 keeps the same names with other content.
SCRIPT = """\
attempt<2: asset report.txt first-attempt
attempt<2: asset only-first.txt gone
attempt<2: lost worker gone
asset report.txt second-attempt-text
asset files/conn_files/we"ird;name,\u00e9.csv id,name
print done
"""


@pytest.fixture
def assets_run(tmp_path: Path) -> Iterator[tuple[Any, Client, httpx.Client, str]]:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'seedbed.db'}", tmp_path)
    with (
        running_in_thread(settings, FakeDispatcher()) as coordinator,
        Client(coordinator.address) as client,
        httpx.Client(base_url=f"http://{coordinator.rest_address}", headers=ADMIN, timeout=30) as http,
    ):
        retry = scenario_pb2.RetryPolicy(initial_backoff_seconds=0.05, maximum_backoff_seconds=0.1)
        client.put_scenario(
            "assets", script=SCRIPT, settings=scenario_pb2.ScenarioSettings(retry_policy=retry)
        )
        run_id = client.run("assets").run_id
        assert client.wait(run_id).state == run_pb2.RUN_STATE_SUCCESS
        yield coordinator, client, http, run_id


WEIRD = 'files/conn_files/we"ird;name,\u00e9.csv'


def test_a_retried_run_keeps_its_last_attempts_assets_once(assets_run: Any) -> None:
    _, client, _, run_id = assets_run
    listed = client.run_assets(run_id)
    assert [(a.name, a.attempt, a.size_bytes) for a in listed] == [
        (WEIRD, 2, 7),
        ("report.txt", 2, len("second-attempt-text")),
    ]
    assert listed[1].sha256 == hashlib.sha256(b"second-attempt-text").hexdigest()
    run = client.get_run(run_id)
    assert (run.assets.count, run.assets.size_bytes) == (2, 7 + len("second-attempt-text"))


def test_assets_download_byte_for_byte_over_grpc_and_the_client(assets_run: Any, tmp_path: Path) -> None:
    from seedbed.client import ScenarioRun

    _, client, _, run_id = assets_run
    meta, chunks = client.download_run_asset(run_id, "report.txt")
    assert b"".join(chunks) == b"second-attempt-text" and meta.content_type == "text/plain; charset=utf-8"
    run = ScenarioRun(client, client.get_run(run_id))
    (weird, report) = run.assets()
    assert report.read() == b"second-attempt-text"
    target = weird.download(tmp_path / "out.csv")
    assert target.read_bytes() == b"id,name"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    for run_ref, name in ((run_id, "only-first.txt"), (run_id, "../report.txt"), ("run_nope", "a")):
        with pytest.raises(ClientError) as caught:
            client.download_run_asset(run_ref, name)
        assert caught.value.code.name == "NOT_FOUND"


def test_assets_over_rest_have_safe_headers(assets_run: Any) -> None:
    _, _, http, run_id = assets_run
    listed = http.get(f"/v1/runs/{run_id}/assets").json()["assets"]
    assert [a["name"] for a in listed] == [WEIRD, "report.txt"]
    answer = http.get(f"/v1/runs/{run_id}/assets/{httpx.URL(path=WEIRD).raw_path.decode()}")
    assert answer.status_code == 200 and answer.content == b"id,name"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["x-content-type-options"] == "nosniff"
    disposition = answer.headers["content-disposition"]
    assert disposition == (
        "attachment; filename=\"we_ird_name__.csv\"; filename*=UTF-8''we%22ird%3Bname%2C%C3%A9.csv"
    )
    assert answer.headers["etag"] == f'"{hashlib.sha256(b"id,name").hexdigest()}"'
    text = http.get(f"/v1/runs/{run_id}/assets/report.txt")
    assert text.headers["content-type"] == "text/plain; charset=utf-8" and text.text == "second-attempt-text"
    missing = http.get(f"/v1/runs/{run_id}/assets/nothing.txt")
    assert missing.status_code == 404 and "nothing.txt" in missing.json()["error"]["message"]
    assert http.get("/v1/runs/run_nope/assets").status_code == 404
    assert http.get(f"/v1/runs/{run_id}/assets", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_content_disposition_never_carries_a_raw_name() -> None:
    header = content_disposition('a/"; evil=1\r\nSet-Cookie: x')
    assert "\r" not in header and "\n" not in header and header.count('"') == 2
    assert content_disposition("..").startswith('attachment; filename="asset"')
    assert served_type("text/html") == "application/octet-stream"
    assert served_type("application/json") == "application/json"


def test_cli_lists_and_downloads_assets(
    assets_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator, _, _, run_id = assets_run
    capsys.readouterr()
    assert main(["--address", coordinator.address, "run", "assets", run_id]) == 0
    out = capsys.readouterr().out
    assert "report.txt" in out and hashlib.sha256(b"second-attempt-text").hexdigest()[:16] in out
    assert WEIRD in out.replace("\n", "").replace(" ", "") or 'we"ird' in out
    code = main(["--address", coordinator.address, "run", "assets", run_id, "-o", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    listed = json.loads(out)
    assert [a["name"] for a in listed["assets"]] == [WEIRD, "report.txt"]
    assert listed["assets"][1]["sha256"] == hashlib.sha256(b"second-attempt-text").hexdigest()
    monkeypatch.chdir(tmp_path)
    assert main(["--address", coordinator.address, "run", "download", run_id, "report.txt"]) == 0
    assert (tmp_path / "report.txt").read_bytes() == b"second-attempt-text"
    assert "saved as report.txt" in capsys.readouterr().out
    assert main(["--address", coordinator.address, "run", "download", run_id, WEIRD, "-"]) == 0
    assert capsys.readouterr().out == "id,name"
    assert main(["--address", coordinator.address, "run", "download", run_id, "nope.txt"]) != 0
    assert "nope.txt" in capsys.readouterr().err
    assert not (tmp_path / "nope.txt").exists()


def test_reading_assets_takes_a_role_in_the_runs_project(assets_run: Any) -> None:
    from seedbed.coordinator.access import Role
    from tests.unit.test_access import make_user

    coordinator, client, http, run_id = assets_run
    with Client(coordinator.address, api_key=ADMIN_API_KEY) as admin:
        outsider = make_user(admin, "otto")  # no role anywhere
        viewer = make_user(admin, "vera", "default", Role.VIEWER)
    with Client(coordinator.address, api_key=outsider) as other:
        with pytest.raises(ClientError) as listing:
            other.run_assets(run_id)
        with pytest.raises(ClientError) as download:
            other.download_run_asset(run_id, "report.txt")
    # As for the run itself: a run outside the caller's projects is not found.
    assert listing.value.code.name == download.value.code.name == "NOT_FOUND"
    headers = {"Authorization": f"Bearer {outsider}"}
    assert http.get(f"/v1/runs/{run_id}", headers=headers).status_code == 404  # like the run itself
    listing_404 = http.get(f"/v1/runs/{run_id}/assets", headers=headers)
    assert listing_404.status_code == 404 and "assets" not in listing_404.json()
    download_404 = http.get(f"/v1/runs/{run_id}/assets/report.txt", headers=headers)
    assert download_404.status_code == 404 and download_404.content != b"second-attempt-text"
    assert run_id in listing_404.json()["error"]["message"]
    with Client(coordinator.address, api_key=viewer) as reader:
        assert [a.name for a in reader.run_assets(run_id)] == [WEIRD, "report.txt"]


class _CutShort:
    """A client whose download ends early (the asset was purged or replaced while it streamed)."""

    def download_run_asset(
        self, run_id: str, name: str
    ) -> tuple[asset_pb2.RunAsset, Generator[bytes, None, None]]:
        meta = asset_pb2.RunAsset(name=name, size_bytes=10, sha256=hashlib.sha256(b"0123456789").hexdigest())
        return meta, (chunk for chunk in [b"01234"])


def test_a_download_cut_short_is_an_integrity_error_everywhere(tmp_path: Path) -> None:
    asset = RunAsset(_CutShort(), "run_x", asset_pb2.RunAsset(name="a.txt"))  # type: ignore[arg-type]
    out = io.BytesIO()
    with pytest.raises(AssetIntegrityError, match="downloaded 5 bytes"):
        asset.write_to(out)
    assert out.getvalue() == b"01234"
    with pytest.raises(AssetIntegrityError):
        asset.read()
    with pytest.raises(AssetIntegrityError):
        asset.download(tmp_path / "a.txt")
    assert list(tmp_path.iterdir()) == []


def test_an_encoding_write_text_cannot_declare_is_named_as_such() -> None:
    collector, _ = _collector()
    with pytest.raises(
        InvalidArgument, match="write_text takes encoding 'utf-8', 'latin-1' or 'ascii', not 'utf-16'"
    ):
        collector.open({"name": "a.txt", "content_type": "text/plain; charset=utf-16"})
    assert collector.open({"name": "a.txt", "content_type": "text/plain; charset=latin-1"})["handle"]
