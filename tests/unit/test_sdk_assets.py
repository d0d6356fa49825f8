"""``dm.assets`` in the in-sandbox SDK, run as a plain subprocess against a tiny fake worker (see
test_sandbox_sdk): what each write sends over the channel, names refused before anything is sent,
pieces under the frame cap, and an asset abandoned when its content cannot be produced."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.unit.test_sandbox_sdk import outs, run_runtime


def _worker(frame: dict[str, Any]) -> dict[str, Any]:
    op = frame["op"]
    if op == "asset.open":
        return {"ok": True, "result": {"handle": "asset_1"}}
    if op == "asset.append":
        return {"ok": True, "result": {"size_bytes": 0}}
    if op == "asset.close":
        return {"ok": True, "result": {"name": "x", "size_bytes": 1, "sha256": "s"}}
    return {"ok": True, "result": None}


def _assets(frames: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """(name, content type, content) of each asset the script closed, from the call frames."""
    out: list[tuple[str, str, bytes]] = []
    current: list[Any] = []
    for frame in frames:
        if frame.get("t") != "call":
            continue
        if frame["op"] == "asset.open":
            current = [frame["args"]["name"], frame["args"]["content_type"], b""]
        elif frame["op"] == "asset.append":
            current[2] += base64.b64decode(frame["args"]["data"])
        elif frame["op"] == "asset.close":
            out.append((current[0], current[1], current[2]))
    return out


def test_each_write_sends_its_content_and_type() -> None:
    code, frames = run_runtime(
        "from seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\n"
        "dm.assets.write_text('notes/a.txt', 'héllo\\n')\n"
        "dm.assets.write_json('summary.json', {'rows': 3, 'ok': True}, indent=None)\n"
        "dm.assets.write_csv('c.csv', [{'id': 1, 'name': 'a', 'flag': True, 'none': None}])\n"
        "dm.assets.write_csv('g.csv', ({'id': i} for i in range(2)), fieldnames=['id'])\n"
        "dm.assets.write_bytes('b.bin', b'\\x00\\xff')\n",
        reply=_worker,
    )
    assert code == 0, outs(frames, "stderr")
    assert _assets(frames) == [
        ("notes/a.txt", "text/plain; charset=utf-8", "héllo\n".encode()),
        ("summary.json", "application/json", json.dumps({"rows": 3, "ok": True}).encode()),
        ("c.csv", "text/csv; charset=utf-8", b"id,name,flag,none\n1,a,true,\n"),
        ("g.csv", "text/csv; charset=utf-8", b"id\n0\n1\n"),
        ("b.bin", "application/octet-stream", b"\x00\xff"),
    ]


def test_hostile_names_are_refused_before_anything_is_sent() -> None:
    code, frames = run_runtime(
        "from seedbed.sdk import Seedbed, InvalidArgument\n"
        "dm = Seedbed()\n"
        "for name in ['../x', '/abs', 'a b', '.hidden', 'files/c/x.csv', 'x' * 201, 'nul\\x00', 7]:\n"
        "    try:\n"
        "        dm.assets.write_text(name, 'x')\n"
        "    except InvalidArgument as exc:\n"
        "        print('refused', repr(name)[:12])\n",
        reply=_worker,
    )
    assert code == 0
    assert len([line for line in outs(frames) if line.startswith("refused")]) == 8
    assert not [f for f in frames if f.get("t") == "call" and f["op"].startswith("asset.")]


def test_large_content_travels_in_pieces_of_at_most_one_mib() -> None:
    code, frames = run_runtime(
        "from seedbed.sdk import Seedbed\nSeedbed().assets.write_text('big.txt', 'x' * (3 * 2**20 + 5))\n",
        reply=_worker,
    )
    assert code == 0
    pieces = [
        len(base64.b64decode(f["args"]["data"]))
        for f in frames
        if f.get("t") == "call" and f["op"] == "asset.append"
    ]
    assert max(pieces) <= 2**20 and sum(pieces) == 3 * 2**20 + 5
    assert _assets(frames)[0][2] == b"x" * (3 * 2**20 + 5)


def test_an_asset_whose_content_fails_is_abandoned() -> None:
    code, frames = run_runtime(
        "from seedbed.sdk import Seedbed\n"
        "def rows():\n"
        "    yield {'id': 1}\n"
        "    raise RuntimeError('source broke')\n"
        "try:\n"
        "    Seedbed().assets.write_csv('r.csv', rows())\n"
        "except RuntimeError as exc:\n"
        "    print('raised', exc)\n",
        reply=_worker,
    )
    assert code == 0
    ops = [f["op"] for f in frames if f.get("t") == "call"]
    assert ops == ["asset.open", "asset.abandon"]
    assert outs(frames) == ["raised source broke"]


def test_a_refusal_from_the_worker_is_raised_and_the_asset_abandoned() -> None:
    def refuse(frame: dict[str, Any]) -> dict[str, Any]:
        if frame["op"] == "asset.append":
            error = {"type": "LimitExceeded", "message": "asset 'big.txt' would hold …"}
            return {"ok": False, "error": error}
        return _worker(frame)

    code, frames = run_runtime(
        "from seedbed.sdk import Seedbed, LimitExceeded\n"
        "try:\n"
        "    Seedbed().assets.write_text('big.txt', 'x')\n"
        "except LimitExceeded as exc:\n"
        "    print(type(exc).__name__, exc.message)\n",
        reply=refuse,
    )
    assert code == 0
    assert outs(frames) == ["LimitExceeded asset 'big.txt' would hold …"]
    ops = [f["op"] for f in frames if f.get("t") == "call"]
    assert ops == ["asset.open", "asset.append", "asset.abandon"]


def test_a_close_the_worker_refuses_abandons_the_asset() -> None:
    def refuse(frame: dict[str, Any]) -> dict[str, Any]:
        if frame["op"] == "asset.close":
            return {"ok": False, "error": {"type": "LimitExceeded", "message": "no room"}}
        return _worker(frame)

    code, frames = run_runtime(
        "from seedbed.sdk import Seedbed, LimitExceeded\n"
        "try:\n"
        "    Seedbed().assets.write_text('a.txt', 'x')\n"
        "except LimitExceeded as exc:\n"
        "    print('raised', exc.message)\n",
        reply=refuse,
    )
    assert code == 0, outs(frames, "stderr")
    assert outs(frames) == ["raised no room"]
    ops = [f["op"] for f in frames if f.get("t") == "call"]
    assert ops == ["asset.open", "asset.append", "asset.close", "asset.abandon"]


def test_an_encoding_is_declared_by_its_one_name_whatever_its_spelling() -> None:
    code, frames = run_runtime(
        "from seedbed.sdk import Seedbed\n"
        "dm = Seedbed()\n"
        "for i, enc in enumerate(['utf8', 'UTF-8', 'latin1', 'ISO-8859-1', 'us-ascii', 'utf-16']):\n"
        "    dm.assets.write_text(f'{i}.txt', 'e', encoding=enc)\n"
        "try:\n"
        "    dm.assets.write_text('x.txt', 'e', encoding='no-such-codec')\n"
        "except LookupError as exc:\n"
        "    print('refused', exc)\n",
        reply=_worker,
    )
    assert code == 0, outs(frames, "stderr")
    assert [content_type for _, content_type, _ in _assets(frames)] == [
        "text/plain; charset=utf-8",
        "text/plain; charset=utf-8",
        "text/plain; charset=latin-1",
        "text/plain; charset=latin-1",
        "text/plain; charset=ascii",
        "text/plain; charset=utf-16",  # the worker refuses it, naming the three it takes
    ]
    assert outs(frames) == ["refused unknown encoding: no-such-codec"]
