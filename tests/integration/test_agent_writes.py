"""The agent's write path on its own (no sandbox): call numbering, the REST idempotency keys a
replay sends, and the batches it reports."""

from __future__ import annotations

from pathlib import Path

from seedbed.api.v1 import attempt_pb2, connection_pb2, run_pb2
from seedbed.worker.agent import Agent
from tests.faults.rest_target import RestTarget


def _agent(run_key: str, api: RestTarget, tmp_path: Path, attempt: int) -> Agent:
    spec = attempt_pb2.AttemptSpec(
        run_id="run_1",
        attempt=attempt,
        run_key=run_key,
        connections=[
            attempt_pb2.ConnectionSnapshot(
                id="conn_api",
                kind=connection_pb2.CONNECTION_KIND_REST,
                rest=connection_pb2.RestOptions(
                    base_url=api.url, idempotent=True, batch_size=2, timeout_seconds=5
                ),
            )
        ],
    )
    return Agent(spec, artifacts_dir=tmp_path)


def test_a_replay_posts_with_the_same_keys_whatever_the_run_key(tmp_path: Path) -> None:
    rows = [{"id": i} for i in range(5)]
    with RestTarget() as api:
        for run_key, path in (("cli-1234", "/plain"), ("a key with spaces, ü and ✓" * 10, "/odd")):
            for attempt in (1, 2):
                agent = _agent(run_key, api, tmp_path, attempt)
                try:
                    agent("step.start", {"name": "noise"})  # not a write: no call number
                    agent("post", {"connection_id": "conn_api", "path": path, "rows": rows, "mode": "batch"})
                    batches = agent.drain_batches()
                finally:
                    agent.close()
                assert [(b.operation, b.target, b.call, b.rows) for b in batches] == [("post", path, 1, 5)]
                assert batches[0].status == run_pb2.WRITE_BATCH_STATUS_APPLIED
            keys = api.keys_seen(path)
            assert len(keys) == 3 and set(keys.values()) == {2}  # 3 requests, each sent by both attempts
            assert all(k.isascii() and " " not in k and len(k) < 200 for k in keys)
            assert len(api.rows(path)) == 5
