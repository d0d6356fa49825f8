"""The fault-injection tools of tests/faults against real services: the proxy in front of the real
PostgreSQL (a fresh database per test), the REST target through httpx, the real coordinator as a
subprocess with its own local Ray instance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

import tests.faults
from seedbed.client import Client
from tests.conftest import eventually
from tests.faults import CoordinatorProcess, CoordinatorStartError, RestTarget, TcpProxy

pytestmark = pytest.mark.integration


def test_the_public_surface_is_pinned() -> None:
    assert sorted(tests.faults.__all__) == [
        "CoordinatorProcess",
        "CoordinatorStartError",
        "RestTarget",
        "SeenRequest",
        "TcpProxy",
    ]


# -- TcpProxy -------------------------------------------------------------------------------------


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The fresh database's libpq URL, with a table ``t``."""
    url = pg_database.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, note text)")
    return url


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(pg_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as running:
        yield running


def ids_in(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM t ORDER BY id")]


def test_pass_through_carries_many_queries_copy_and_large_frames(pg_url: str, proxy: TcpProxy) -> None:
    via = proxy.proxied_url(pg_url)
    assert urlsplit(via).port == proxy.port and urlsplit(via).username == urlsplit(pg_url).username
    for round_ in range(3):  # several connections, one after the other
        with psycopg.connect(via) as conn:
            # The proxy answers SSLRequest with 'N' itself, whatever the server's ssl setting.
            assert not conn.pgconn.ssl_in_use
            for i in range(100):
                conn.execute("INSERT INTO t VALUES (%s, %s)", (round_ * 1000 + i, "x"))
                conn.commit()
    with psycopg.connect(via) as conn, conn.cursor() as cur:
        with cur.copy("COPY t (id, note) FROM STDIN") as copy:
            for i in range(10_000):
                copy.write_row((100_000 + i, f"copied {i}"))
        big = "y" * 300_000  # one frame much larger than a socket read
        assert cur.execute("SELECT length(%s::text)", (big,)).fetchone() == (300_000,)
        assert cur.execute(f"SELECT length('{big}')").fetchone() == (300_000,)  # a large 'Q' frame
    assert len(ids_in(pg_url)) == 300 + 10_000
    assert proxy.cuts == 0
    eventually(lambda: proxy.open_connections == 0)


def test_cut_after_commit_applies_the_commit_and_breaks_the_connection(pg_url: str, proxy: TcpProxy) -> None:
    via = proxy.proxied_url(pg_url)
    proxy.cut_after_commit()
    conn = psycopg.connect(via)
    conn.execute("INSERT INTO t VALUES (1, 'COMMIT')")
    assert conn.execute("SELECT 'COMMIT'").fetchone() == ("COMMIT",)  # the word in data is no COMMIT
    with pytest.raises(psycopg.OperationalError):
        conn.commit()
    assert conn.broken
    conn.close()
    assert ids_in(pg_url) == [1]  # committed all the same: the ambiguous commit
    assert proxy.cuts == 1 and proxy.pending_commit_cuts == 0

    with psycopg.connect(via) as again:  # the fault is spent: back to pass-through
        again.execute("INSERT INTO t VALUES (2, 'ok')")
        again.commit()
    assert ids_in(pg_url) == [1, 2]


def test_cut_after_commit_counts_down_and_pass_through_cancels(pg_url: str, proxy: TcpProxy) -> None:
    via = proxy.proxied_url(pg_url)
    proxy.cut_after_commit(times=2)
    for i in range(2):
        conn = psycopg.connect(via)
        conn.execute("INSERT INTO t VALUES (%s, 'x')", (i,))
        with pytest.raises(psycopg.OperationalError):
            conn.commit()
        conn.close()
    with psycopg.connect(via) as conn:
        conn.execute("INSERT INTO t VALUES (2, 'x')")
        conn.commit()
    proxy.cut_after_commit(times=5)
    proxy.pass_through()
    with psycopg.connect(via) as conn:
        conn.execute("INSERT INTO t VALUES (3, 'x')")
        conn.commit()
    assert ids_in(pg_url) == [0, 1, 2, 3]
    assert proxy.cuts == 2
    with pytest.raises(ValueError):
        proxy.cut_after_commit(times=0)


def test_cut_all_drops_every_open_connection(pg_url: str, proxy: TcpProxy) -> None:
    via = proxy.proxied_url(pg_url)
    first, second = psycopg.connect(via), psycopg.connect(via)
    first.execute("INSERT INTO t VALUES (1, 'in flight')")  # an open transaction, never committed
    assert proxy.open_connections == 2
    assert proxy.cut_all() == 2
    for conn in (first, second):
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
    assert proxy.cuts == 2
    eventually(lambda: proxy.open_connections == 0)
    with psycopg.connect(via) as conn:  # new connections still work
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert ids_in(pg_url) == []  # the server rolled the cut transaction back


def test_close_drops_connections_and_stops_listening(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    via = proxy.proxied_url(pg_url)
    conn = psycopg.connect(via)
    proxy.close()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(via, connect_timeout=2)


def test_an_unreachable_upstream_refuses_the_client_without_crashing() -> None:
    with TcpProxy("127.0.0.1", 1) as proxy:
        for _ in range(2):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(f"postgresql://u:p@{proxy.address}/db", connect_timeout=2)
        assert proxy.open_connections == 0


# -- RestTarget -----------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[RestTarget]:
    with RestTarget() as target:
        yield target


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:  # one client: building its TLS context takes ~20 ms
        yield client


def post(
    http: httpx.Client, api: RestTarget, path: str, body: object, key: str | None = None, timeout: float = 5
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return http.post(api.url + path, json=body, headers=headers, timeout=timeout)


def test_a_repeated_key_returns_the_stored_response_and_stores_once(
    api: RestTarget, http: httpx.Client
) -> None:
    first = post(http, api, "/customers", {"id": 1}, key="k1")
    again = post(http, api, "/customers", {"id": 1}, key="k1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"id": 1}
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert post(http, api, "/customers", [{"id": 2}, {"id": 3}], key="k2").status_code == 201
    assert post(http, api, "/customers", {"id": 4}).status_code == 201  # no key: stored every time
    assert post(http, api, "/customers", {"id": 4}).status_code == 201
    assert post(http, api, "/orders", {"id": 1}, key="k1").status_code == 201  # keys are per path

    assert api.rows("/customers") == [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 4}]
    assert api.keys_seen("/customers") == {"k1": 2, "k2": 1}
    assert http.get(api.url + "/customers").json() == api.rows("/customers")
    assert api.rows("/orders") == [{"id": 1}] and api.rows("/nothing") == []
    assert [r.status for r in api.requests("/customers")] == [201] * 5 + [200]


def test_a_key_reused_with_another_body_is_refused(api: RestTarget, http: httpx.Client) -> None:
    assert post(http, api, "/c", {"id": 1, "name": "a"}, key="k").status_code == 201
    assert post(http, api, "/c", {"name": "a", "id": 1}, key="k").status_code == 201  # same JSON, other order
    refused = post(http, api, "/c", {"id": 1, "name": "b"}, key="k")
    assert refused.status_code == 422 and "different body" in refused.json()["error"]
    assert api.rows("/c") == [{"id": 1, "name": "a"}]
    assert api.keys_seen("/c") == {"k": 3}


def test_bad_bodies_are_refused_and_not_stored(api: RestTarget, http: httpx.Client) -> None:
    not_json = http.post(api.url + "/c", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert post(http, api, "/c", "a string").status_code == 400
    assert api.rows("/c") == []
    assert [r.body for r in api.requests("/c")] == ["{nope", "a string"]


def test_fail_answers_the_status_then_recovers(api: RestTarget, http: httpx.Client) -> None:
    api.fail("/c", 500, times=2)
    assert api.pending_faults("/c") == 2
    statuses = [post(http, api, "/c", {"id": 1}, key="k").status_code for _ in range(3)]
    assert statuses == [500, 500, 201]
    assert api.rows("/c") == [{"id": 1}]
    assert api.keys_seen("/c") == {"k": 3}
    assert post(http, api, "/other", {"id": 1}).status_code == 201  # faults are per path
    with pytest.raises(ValueError):
        api.fail("/c", 200)


def test_throttle_answers_429_with_retry_after(api: RestTarget, http: httpx.Client) -> None:
    api.throttle("/c", retry_after_seconds=3, times=1)
    throttled = post(http, api, "/c", {"id": 1}, key="k")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert api.rows("/c") == []
    assert post(http, api, "/c", {"id": 1}, key="k").status_code == 201
    assert api.rows("/c") == [{"id": 1}]


def test_faults_are_consumed_in_the_order_programmed(api: RestTarget, http: httpx.Client) -> None:
    api.fail("/c", 503)
    api.throttle("/c", 1, times=2)
    api.fail("/c", 400)
    statuses = [post(http, api, "/c", {"id": i}).status_code for i in range(5)]
    assert statuses == [503, 429, 429, 400, 201]
    assert api.rows("/c") == [{"id": 4}] and api.pending_faults("/c") == 0


def test_apply_then_hang_stores_and_times_the_client_out(api: RestTarget, http: httpx.Client) -> None:
    api.apply_then_hang("/c", seconds=3, times=1)
    with pytest.raises(httpx.ReadTimeout):
        post(http, api, "/c", [{"id": 1}, {"id": 2}], key="k", timeout=0.3)
    assert api.rows("/c") == [{"id": 1}, {"id": 2}]  # applied before the answer was due
    retry = post(http, api, "/c", [{"id": 1}, {"id": 2}], key="k")  # the client's retry, same key
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert api.rows("/c") == [{"id": 1}, {"id": 2}]
    assert api.keys_seen("/c") == {"k": 2}


def test_close_does_not_wait_for_a_hanging_answer(http: httpx.Client) -> None:
    target = RestTarget().start()
    target.apply_then_hang("/c", seconds=60)
    with pytest.raises(httpx.ReadTimeout):
        post(http, target, "/c", {"id": 1}, timeout=0.2)
    started = time.monotonic()
    target.close()
    assert time.monotonic() - started < 5


def test_concurrent_posts_store_each_key_once(api: RestTarget, http: httpx.Client) -> None:
    keys = [f"k{i % 40}" for i in range(200)]  # each key five times, from eight threads
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda k: post(http, api, "/c", {"key": k}, key=k).status_code, keys))
    assert statuses == [201] * 200
    assert sorted(row["key"] for row in api.rows("/c")) == sorted(set(keys))
    assert api.keys_seen("/c") == {k: 5 for k in set(keys)}


# -- CoordinatorProcess ---------------------------------------------------------------------------

SCRIPT = "print('hello')\n"


def alive(pids: list[int]) -> list[int]:
    """The pids still running (a zombie is dead, only not yet reaped)."""
    running = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in "ZX":
            running.append(pid)
    return running


def test_coordinator_survives_sigkill_and_restarts_on_the_same_port_and_data(tmp_path: Path) -> None:
    with CoordinatorProcess(tmp_path) as coordinator:
        address = coordinator.address
        with Client(address) as client:
            before = client.put_scenario("before-kill", script=SCRIPT).id
        first_pid = coordinator.pid
        first_ray = coordinator.child_pids()
        assert first_ray, "the coordinator starts a local Ray instance of its own"

        coordinator.kill()
        assert not coordinator.running and coordinator.pid is None

        coordinator.start()
        assert coordinator.address == address and coordinator.pid != first_pid
        with Client(address) as client:
            assert [s.id for s in client.list_scenarios()] == [before]
            after = client.put_scenario("after-restart", script=SCRIPT).id

        second_ray = coordinator.child_pids()
        assert second_ray
        coordinator.kill(ray_too=True)
        assert alive(second_ray) == []  # every process of its Ray instance, at once

        coordinator.start()
        with Client(address) as client:
            assert sorted(s.id for s in client.list_scenarios()) == sorted([before, after])
        log = coordinator.log_path.read_text()
        assert log.count("=== start ") == 3 and "coordinator listening on" in log
    # close(): a graceful stop, and whatever the first plain kill left of its Ray instance is gone.
    assert alive(first_ray) == []


def test_stop_is_graceful_and_takes_ray_down(tmp_path: Path) -> None:
    coordinator = CoordinatorProcess(tmp_path).start()
    try:
        ray = coordinator.child_pids()
        assert coordinator.stop() == 0
        eventually(lambda: alive(ray) == [], timeout=30)
        with pytest.raises(ValueError):
            coordinator.kill()
    finally:
        coordinator.close()


def test_a_failed_start_reports_the_log_tail(tmp_path: Path) -> None:
    coordinator = CoordinatorProcess(tmp_path, env={"SEEDBED_STORE_URL": "nosuchdialect://x"})
    with pytest.raises(CoordinatorStartError, match="exited with code") as failed:
        coordinator.start()
    assert "nosuchdialect" in failed.value.log_tail
    assert "nosuchdialect" in str(failed.value)
    assert not coordinator.running
