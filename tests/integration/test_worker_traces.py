"""The worker's half of a run's trace, end to end on the worker: `execute()` with an AttemptTrace,
a real Docker sandbox, a real PostgreSQL target and a bulk insert sharded over Ray tasks (spans
recorded in other processes), then the spans and log lines it hands back; plus the shards on threads,
a replay, REST and file targets through the agent. Bad input: a script forging TRACEPARENT and
`traceparent` call arguments, 20,000 calls under a cap of 500, a 1 MB table name, PostgreSQL and REST
targets that echo the connection's secret into their errors (which spans must not carry)."""

from __future__ import annotations

import ast
import base64
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import docker
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg import sql
from sqlalchemy.engine import make_url

from seedbed.api.v1 import attempt_pb2, connection_pb2, run_pb2
from seedbed.worker import bulk, ledger, templates, tracing
from seedbed.worker.agent import Agent
from seedbed.worker.attempt import execute
from seedbed.worker.images import ensure_image
from seedbed.worker.sandbox import DockerSandboxDriver
from tests.conftest import pg_admin_url, sandbox_runtime, scratch_pg
from tests.faults.rest_target import RestTarget

pytestmark = pytest.mark.integration

TEMPLATE = """
id: tmpl_trace_customer
version: 1
fields:
  id: {uuid: {}}
  name: {faker: name, pool: 200}
  country: {choice: {values: [US, CA, GB]}}
"""
SCHEMA = """
CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL, country text NOT NULL);
CREATE TABLE items (n int PRIMARY KEY, label text NOT NULL);
"""
SCRIPT = """
import os
from seedbed.sdk import Seedbed, log
dm = Seedbed()
db = dm.connection("conn_pg")
print("TRACEPARENT=" + os.environ.get("TRACEPARENT", ""))
with dm.step("load"):
    log.info("loading", rows=3, tags=["a", "b"], who={"name": "ü"})
    db.insert("items", [{"n": i, "label": f"item {i}"} for i in range(3)])
    print("printed in load")
with dm.step("bulk"):
    customers = dm.generate("tmpl_trace_customer", count=25000)
    db.insert("customers", customers, shard_rows=10000, writers=2)
    found = db.fetch("SELECT count(*) AS n FROM customers")
    log.info("counted", n=found[0]["n"])
log.info("done")
"""


@pytest.fixture(scope="module")
def driver() -> Iterator[DockerSandboxDriver]:
    client = docker.from_env()
    ensure_image(client)  # built once, outside the tests
    client.close()
    drv = DockerSandboxDriver(runtime=sandbox_runtime())
    yield drv
    drv.close()


@pytest.fixture
def target() -> Iterator[str]:
    with scratch_pg(SCHEMA, "seedbed_traces") as url:
        yield url


class Attempt:
    """What `execute()` handed back: every event, the spans, the lines."""

    def __init__(self, events: list[attempt_pb2.AttemptEvent], trace_id: str, parent: str) -> None:
        self.events = events
        self.trace_id = trace_id
        self.parent = parent  # the coordinator's span of the attempt
        self.spans = [s for e in events if e.HasField("spans") for s in e.spans.spans]
        self.dropped = sum(e.spans.dropped for e in events if e.HasField("spans"))
        self.lines = [line for e in events if e.HasField("output") for line in e.output.lines]
        (self.result,) = [e.result for e in events if e.HasField("result")]
        assert events[-1].HasField("result")  # every span went out before the result

    def named(self, name: str) -> run_pb2.Span:
        (found,) = [s for s in self.spans if s.name == name]
        return found

    def children(self, span: run_pb2.Span) -> list[run_pb2.Span]:
        return [s for s in self.spans if s.parent_span_id == span.span_id]

    def line(self, text: str) -> run_pb2.LogLine:
        (found,) = [line for line in self.lines if line.text.startswith(text)]
        return found


def attributes(span: run_pb2.Span) -> dict[str, object]:
    return {a.key: getattr(a, str(a.WhichOneof("value"))) for a in span.attributes}


def run(
    driver: DockerSandboxDriver,
    tmp_path: Path,
    script: str,
    url: str = "",
    *,
    max_spans: int = 10_000,
    max_attribute_length: int = 1024,
    traced: bool = True,
    connections: list[attempt_pb2.ConnectionSnapshot] | None = None,
) -> Attempt:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    dispatched = Timestamp()
    dispatched.FromDatetime(datetime.now(UTC) - timedelta(seconds=2))
    spec = attempt_pb2.AttemptSpec(
        run_id=f"run_trace_{secrets.token_hex(4)}",
        attempt=1,
        run_key=f"rk-{secrets.token_hex(4)}",
        script=script,
        ledger_key=b"k" * 32,
        limits=attempt_pb2.SandboxLimits(timeout_seconds=300),
        templates=[
            attempt_pb2.TemplateSnapshot(
                id="tmpl_trace_customer",
                canonical_json=json.dumps(templates.parse_template(TEMPLATE).to_json()),
            )
        ],
        connections=connections
        if connections is not None
        else [
            attempt_pb2.ConnectionSnapshot(
                id="conn_pg", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
            )
        ]
        if url
        else [],
        trace=attempt_pb2.AttemptTrace(
            traceparent=f"00-{trace_id}-{parent}-01",
            max_spans=max_spans,
            max_attribute_length=max_attribute_length,
            dispatch_time=dispatched,
        ),
    )
    if not traced:
        spec.ClearField("trace")
    events = list(execute(spec, driver, artifacts_dir=tmp_path))
    return Attempt(events, trace_id, parent)


def assert_one_tree(attempt: Attempt) -> None:
    """Every span is in the attempt's trace, and its parent is a span of the set or the attempt's."""
    ids = {s.span_id for s in attempt.spans}
    assert len(ids) == len(attempt.spans)
    assert {s.trace_id for s in attempt.spans} == {attempt.trace_id}
    assert all(s.parent_span_id in ids | {attempt.parent} for s in attempt.spans)
    assert all(s.service == "seedbed-worker" for s in attempt.spans)


def test_one_attempt_is_one_tree_from_queue_wait_to_each_batch(
    ray_session: None, driver: DockerSandboxDriver, target: str, tmp_path: Path
) -> None:
    attempt = run(driver, tmp_path, SCRIPT, target)
    assert attempt.result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, attempt.result.error
    assert_one_tree(attempt)
    assert attempt.dropped == 0
    # The attempt's phases, under the coordinator's span.
    top = {s.name for s in attempt.spans if s.parent_span_id == attempt.parent}
    assert top == {"queue wait", "image check", "sandbox"}
    wait = attempt.named("queue wait")
    dispatched = wait.start_time.ToDatetime(tzinfo=UTC)
    assert wait.end_time.ToDatetime(tzinfo=UTC) > dispatched > datetime.now(UTC) - timedelta(minutes=10)
    sandbox, script = attempt.named("sandbox"), attempt.named("script")
    assert {s.name for s in attempt.children(sandbox)} == {"container create", "container start", "script"}
    (started,) = [e.started for e in attempt.events if e.HasField("started")]
    assert attributes(attempt.named("container create"))["container.id"] == started.container_id
    assert attributes(sandbox)["container.image.name"] == started.image
    assert attributes(script)["seedbed.outcome"] == "succeeded"
    assert attributes(script)["process.exit.code"] == 0
    assert attributes(attempt.named("image check"))["container.image.name"] == started.image
    # The script saw TRACEPARENT naming a recorded span of this attempt: "sandbox".
    seen = attempt.line("TRACEPARENT=").text.removeprefix("TRACEPARENT=")
    assert seen == f"00-{attempt.trace_id}-{sandbox.span_id}-01"
    # script → step → insert → batch.
    load, bulk_step = attempt.named("step load"), attempt.named("step bulk")
    assert load.parent_span_id == bulk_step.parent_span_id == script.span_id
    (items,) = [s for s in attempt.children(load) if s.name == "insert"]
    (items_batch,) = attempt.children(items)
    assert items_batch.name == "COPY items" and items_batch.kind == run_pb2.SPAN_KIND_CLIENT
    database = target.rsplit("/", 1)[1]
    assert attributes(items_batch) | {"seedbed.bytes": 0} == {
        "db.system.name": "postgresql",
        "db.namespace": database,
        "server.address": "127.0.0.1",
        "server.port": attributes(items_batch)["server.port"],
        "db.operation.name": "COPY",
        "db.collection.name": "items",
        "seedbed.connection": "conn_pg",
        "seedbed.call": 1,
        "seedbed.batch": 0,
        "seedbed.bytes": 0,
        "seedbed.rows": 3,
        "seedbed.ledger": "written",
    }
    assert int(str(attributes(items_batch)["seedbed.bytes"])) > 0
    assert attributes(items)["seedbed.table"] == "items" and attributes(items)["seedbed.rows"] == 3
    # insert → shard → batch: three shards of a 25,000-row set, each written in a Ray task.
    (generate, customers, fetch) = attempt.children(bulk_step)
    assert (generate.name, customers.name, fetch.name) == ("generate", "insert", "fetch")
    assert attributes(generate)["seedbed.template"] == "tmpl_trace_customer"
    shards = sorted(attempt.children(customers), key=lambda s: s.name)
    assert [s.name for s in shards] == ["shard 1", "shard 2", "shard 3"]
    rows = []
    for shard in shards:
        shard_attributes = attributes(shard)
        assert str(shard_attributes["seedbed.writer"]).startswith("ray task ")
        rows.append((shard_attributes["seedbed.rows.first"], shard_attributes["seedbed.rows.last"]))
        (batch,) = attempt.children(shard)
        assert batch.name == "COPY customers"
        batch_attributes = attributes(batch)
        assert (
            batch_attributes["db.operation.name"] == "COPY"
            and batch_attributes["seedbed.ledger"] == "written"
        )
        assert batch_attributes["seedbed.rows"] == shard_attributes["seedbed.rows"]
    assert rows == [(0, 10_000), (10_000, 20_000), (20_000, 25_000)]
    assert attributes(customers)["seedbed.rows"] == 25_000
    assert attributes(customers)["seedbed.batches.written"] == 3
    # Every line carries the span it was written in, and a log call's fields come as a map.
    loading = attempt.line("loading")
    assert (loading.trace_id, loading.span_id) == (attempt.trace_id, load.span_id)
    assert dict(loading.fields) == {"rows": "3", "tags": '["a", "b"]', "who": '{"name": "ü"}'}
    assert loading.text == 'loading rows=3 tags=["a", "b"] who={"name": "ü"}'
    assert attempt.line("printed in load").span_id == load.span_id
    assert attempt.line("counted").span_id == bulk_step.span_id
    assert dict(attempt.line("counted").fields) == {"n": "25000"}
    assert attempt.line("done").span_id == script.span_id
    assert attempt.line("insert customers: 25,000 rows").span_id == bulk_step.span_id  # the bulk summary
    assert attempt.line("sandbox runtime:").span_id == sandbox.span_id  # the driver's own
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (25_000,)


def test_a_forged_traceparent_changes_nothing(
    driver: DockerSandboxDriver, target: str, tmp_path: Path
) -> None:
    forged = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    script = f"""
import os
from seedbed.sdk import Seedbed, _context
os.environ["TRACEPARENT"] = "{forged}"
dm = Seedbed()
with dm.step("forge"):
    _context.call("step.start", {{"name": "inner", "traceparent": "{forged}", "parent": "{forged}"}})
    _context.call(
        "insert",
        {{"connection_id": "conn_pg", "table": "items", "rows": [{{"n": 1, "label": "x"}}],
          "traceparent": "{forged}", "trace_id": "{forged[3:35]}", "span_id": "{forged[36:52]}"}},
    )
    _context.call("step.end", {{"name": "inner", "outcome": "SUCCESS"}})
print("traceparent", os.environ["TRACEPARENT"])
"""
    attempt = run(driver, tmp_path, script, target)
    assert attempt.result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, attempt.result.error
    assert_one_tree(attempt)
    forged_trace, forged_span = forged.split("-")[1:3]
    assert forged_trace not in {s.trace_id for s in attempt.spans}
    assert forged_span not in {s.parent_span_id for s in attempt.spans} | {s.span_id for s in attempt.spans}
    inner, insert = attempt.named("step inner"), attempt.named("insert")
    assert (
        inner.parent_span_id == attempt.named("step forge").span_id and insert.parent_span_id == inner.span_id
    )
    assert [s.name for s in attempt.children(insert)] == ["COPY items"]
    line = attempt.line("traceparent")
    assert (line.trace_id, line.span_id) == (attempt.trace_id, attempt.named("script").span_id)


def test_20000_calls_under_a_cap_of_500_are_dropped_and_counted(
    driver: DockerSandboxDriver, tmp_path: Path
) -> None:
    script = """
from seedbed.sdk import Seedbed, _context
dm = Seedbed()
for step in range(4):
    with dm.step(f"step {step}"):
        for _ in range(5000):
            _context.call("stream.close", {"handle": "nothing"})
print("still running")
"""
    attempt = run(driver, tmp_path, script, max_spans=500)
    assert attempt.result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, attempt.result.error
    assert_one_tree(attempt)
    calls = [s for s in attempt.spans if s.name == "stream.close"]
    structural = {"queue wait", "image check", "sandbox", "container create", "container start", "script"}
    assert structural | {f"step step {n}" for n in range(4)} <= {s.name for s in attempt.spans}
    # The structural spans (and the first step) count against the cap too; they are always kept,
    # also past it (the last three steps).
    assert len(attempt.spans) == 500 + 3 and len(calls) == 500 - len(structural) - 1
    assert attempt.dropped == 20_000 - len(calls)
    assert attempt.line("still running").span_id == attempt.named("script").span_id


def test_huge_attribute_values_are_cut(driver: DockerSandboxDriver, target: str, tmp_path: Path) -> None:
    script = """
from seedbed.sdk import Seedbed
dm = Seedbed()
with dm.step("s" * 200):
    try:
        dm.connection("conn_pg").insert("t" * 2**20, [{"a": 1}])
    except Exception as exc:
        print("refused", type(exc).__name__)
"""
    attempt = run(driver, tmp_path, script, target, max_attribute_length=64)
    assert attempt.result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, attempt.result.error
    assert attempt.line("refused").text == "refused InvalidArgument"
    (insert,) = [s for s in attempt.spans if s.name == "insert"]
    assert attributes(insert)["seedbed.table"] == "t" * 64
    assert insert.status_code == run_pb2.SPAN_STATUS_CODE_ERROR and len(insert.status_message) <= 64
    (step,) = [s for s in attempt.spans if s.name.startswith("step ")]
    assert step.name == "step " + "s" * 59 and attributes(step)["seedbed.step"] == "s" * 64
    assert all(len(str(value)) <= 64 for span in attempt.spans for value in attributes(span).values())


def test_without_a_trace_nothing_is_recorded_and_the_sandbox_is_as_before(
    driver: DockerSandboxDriver, tmp_path: Path
) -> None:
    script = """
import os
from seedbed.sdk import Seedbed, log
print("env", sorted(os.environ))
with Seedbed().step("s"):
    log.info("logged", a=1)
"""
    traced = run(driver, tmp_path, script)
    plain = run(driver, tmp_path, script, traced=False)
    assert plain.result.outcome == traced.result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED
    assert not any(e.HasField("spans") for e in plain.events)
    assert all(not line.trace_id and not line.span_id for line in plain.lines)
    assert dict(plain.line("logged").fields) == dict(traced.line("logged").fields) == {"a": "1"}
    # The container's environment differs by TRACEPARENT only (no secret travels that way).
    traced_env, plain_env = (
        ast.literal_eval(a.line("env ").text.removeprefix("env ")) for a in (traced, plain)
    )
    assert set(traced_env) - set(plain_env) == {"TRACEPARENT"} and set(plain_env) <= set(traced_env)


# -- shards on threads, a replay, REST and file targets (the agent's process, no sandbox) ----------------


def _jobs(url: str, attempt: int) -> list[bulk.ShardJob]:
    snapshot = attempt_pb2.ConnectionSnapshot(
        id="conn_pg", kind=connection_pb2.CONNECTION_KIND_POSTGRESQL, url=url
    )
    stamp = ledger.AttemptStamp(
        run_key="rk-traces", run_id="run_traces", attempt=attempt, fencing_token=attempt, ledger_key=b"k" * 32
    )
    base = bulk.ShardJob(
        index=0,
        shards=2,
        first=0,
        last=0,
        call=1,
        table="customers",
        connection=snapshot.SerializeToString(),
        stamp=stamp,
        template_json=json.dumps(templates.parse_template(TEMPLATE).to_json()),
        seed=7,
        set_start=0,
        overrides={},
        refs=bulk.FrozenRefs({}),
        identity="set-traces",
        unique_rows=False,
        field_bytes=65536,
        row_bytes=2**20,
        statement_timeout_seconds=None,
        trace=tracing.handoff(),
    )
    return [
        replace(base, index=i, first=a, last=b) for i, (a, b) in enumerate([(0, 10_000), (10_000, 15_000)])
    ]


def test_shards_on_threads_record_into_the_attempt_and_a_replay_is_skipped(target: str) -> None:
    for attempt_no, decision in ((1, "written"), (2, "skipped")):
        parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        with tracing.SpanRecorder(parent, max_spans=100, max_attribute_length=1024) as recorder:
            with tracing.span("insert", parent=recorder.context):
                bulk.run_insert(
                    _jobs(target, attempt_no),
                    2,
                    runner=bulk.ThreadShardRunner(),
                    stop=threading.Event(),
                    progress=lambda text: None,
                    report=lambda report: None,
                    total=15_000,
                    table="customers",
                )
            spans, dropped = recorder.take()
        assert dropped == 0
        (call,) = [s for s in spans if s.name == "insert"]
        shards = {s.name: s for s in spans if s.parent_span_id == call.span_id}
        assert set(shards) == {"shard 1", "shard 2"}
        for shard in shards.values():
            assert str(attributes(shard)["seedbed.writer"]).startswith("thread seedbed-shard")
            (batch,) = [s for s in spans if s.parent_span_id == shard.span_id]
            assert attributes(batch)["seedbed.ledger"] == decision
        skipped = attributes(shards["shard 2"])
        assert skipped["seedbed.batches.skipped" if attempt_no == 2 else "seedbed.batches.written"] == 1


def test_rest_requests_and_file_writes_are_spans(tmp_path: Path) -> None:
    spec = attempt_pb2.AttemptSpec(run_id="run_rest", attempt=1, run_key="rk-rest")
    with RestTarget() as api:
        spec.connections.extend(
            [
                attempt_pb2.ConnectionSnapshot(
                    id="conn_api",
                    kind=connection_pb2.CONNECTION_KIND_REST,
                    rest=connection_pb2.RestOptions(base_url=api.url, batch_size=2, timeout_seconds=5),
                ),
                attempt_pb2.ConnectionSnapshot(id="conn_files", kind=connection_pb2.CONNECTION_KIND_FILE),
            ]
        )
        api.fail("/people", status=429, times=1)
        parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        with tracing.SpanRecorder(parent, max_spans=100, max_attribute_length=1024) as recorder:
            agent = Agent(spec, artifacts_dir=tmp_path)
            script = tracing.start_span("script", parent=recorder.context, structural=True)
            with tracing.activated(tracing.context_of(script)):
                rows = [{"id": i} for i in range(3)]
                agent("post", {"connection_id": "conn_api", "path": "/people", "rows": rows, "mode": "batch"})
                agent("get", {"connection_id": "conn_api", "path": "/people", "params": {"token": "s3cret"}})
                agent("write", {"connection_id": "conn_files", "name": "people.csv", "rows": rows})
            agent.close()
            script.end()
            spans, _ = recorder.take()
        keys = api.keys_seen("/people")
    post, get, write = (next(s for s in spans if s.name == n) for n in ("post", "get", "write"))
    requests = [s for s in spans if s.parent_span_id == post.span_id]
    # Batch mode, 2 rows a request: a 429 then its retry, then the second batch.
    assert [s.name for s in requests] == ["POST", "POST", "POST"]
    first, retry, second = (attributes(s) for s in requests)
    assert first["http.response.status_code"] == 429 and first["error.type"] == "429"
    assert requests[0].status_code == run_pb2.SPAN_STATUS_CODE_ERROR
    assert retry["http.request.resend_count"] == 1 and retry["http.response.status_code"] == 201
    assert (retry["seedbed.batch"], retry["seedbed.rows"], second["seedbed.batch"]) == (0, 2, 1)
    assert first["url.full"] == f"{api.url}/people" and first["http.request.method"] == "POST"
    assert first["server.address"] == "127.0.0.1" and requests[0].kind == run_pb2.SPAN_KIND_CLIENT
    text = json.dumps([attributes(s) for s in spans])
    assert all(key not in text for key in keys) and "Idempotency" not in text
    (request,) = [s for s in spans if s.parent_span_id == get.span_id]
    assert attributes(request)["url.full"] == f"{api.url}/people?token=REDACTED" and "s3cret" not in text
    (file_span,) = [s for s in spans if s.parent_span_id == write.span_id]
    assert file_span.name == "write people.csv"
    assert attributes(file_span)["file.name"] == "people.csv" and attributes(file_span)["seedbed.rows"] == 3
    assert (tmp_path / "conn_files" / "people.csv").exists()  # the connection's own folder


# -- targets that echo the secret ------------------------------------------------------------------------

# Its encodings differ from one another, and each but base64 still reads "Pa55".
PASSWORD = 'Pa55/w+rd"é&=1xyz'
API_USER = "svc"
BASIC = "Basic " + base64.b64encode(f"{API_USER}:{PASSWORD}".encode()).decode()
ECHO_SCHEMA = """
CREATE TABLE echoes (message text NOT NULL);
CREATE FUNCTION echo_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused, you sent: %', (SELECT string_agg(message, ' | ') FROM echoes);
END $$;
CREATE TABLE items (n int PRIMARY KEY, label text NOT NULL);
CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL, country text NOT NULL);
CREATE TRIGGER echo BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION echo_credentials();
CREATE TRIGGER echo BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION echo_credentials();
"""


def echoes(user: str, secret: str) -> list[str]:
    """What a careless target quotes of the credentials it was given."""
    pair = f"{user}:{secret}"
    return [
        secret,
        pair,
        base64.b64encode(pair.encode()).decode(),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
    ]


def leaks(texts: list[str], user: str) -> list[str]:
    """The texts holding the secret in a form a target echoed."""
    forms = [*echoes(user, PASSWORD), *echoes(API_USER, PASSWORD), BASIC, "Pa55"]
    return [text for text in texts if any(form in text for form in forms)]


def span_texts(spans: list[run_pb2.Span]) -> list[str]:
    return [
        text
        for span in spans
        for text in (span.name, span.status_message, *(str(v) for v in attributes(span).values()))
    ]


@pytest.fixture
def echoing_pg() -> Iterator[tuple[str, str]]:
    """A database logged into by a role of its own, whose inserts into `items` and `customers` fail
    with an error quoting that role's password in many encodings: (its URL without the password,
    the role)."""
    role = f"sb_echo_{secrets.token_hex(4)}"
    admin = pg_admin_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD))
        )
    try:
        with scratch_pg(prefix="seedbed_echo") as url:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(role)))
            own = make_url(url).set(username=role, password=None).render_as_string(hide_password=False)
            with psycopg.connect(own, password=PASSWORD, autocommit=True) as conn:
                conn.execute(ECHO_SCHEMA)
                for text in echoes(role, PASSWORD):
                    conn.execute("INSERT INTO echoes VALUES (%s)", (text,))
            yield own, role
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request 400, its error page quoting the Basic credentials it got."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _serve(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        credentials = auth.partition(" ")[2]
        user, _, secret = base64.b64decode(credentials).decode().partition(":")
        body = "\n".join(["bad request from", auth, credentials, *echoes(user, secret)]).encode()
        self.send_response(400)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _serve
    do_POST = _serve


@pytest.fixture
def echoing_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


ECHOED = """
from seedbed.sdk import Seedbed
dm = Seedbed()
db, api = dm.connection("conn_pg"), dm.connection("conn_api")
with dm.step("echoed"):
    for name, call in (
        ("execute", lambda: db.execute("INSERT INTO items VALUES (1, 'x')")),
        ("insert", lambda: db.insert("items", [{"n": 2, "label": "y"}])),
        ("bulk", lambda: db.insert(
            "customers", dm.generate("tmpl_trace_customer", count=20000), shard_rows=10000, writers=2
        )),
        ("get", lambda: api.get("people")),
        ("post", lambda: api.post("people", [{"a": 1}])),
    ):
        try:
            call()
        except Exception as exc:
            print("refused", name, type(exc).__name__, exc)
"""


def test_a_secret_targets_echo_into_their_errors_is_in_no_span(
    ray_session: None,
    driver: DockerSandboxDriver,
    echoing_pg: tuple[str, str],
    echoing_api: str,
    tmp_path: Path,
) -> None:
    url, role = echoing_pg
    connections = [
        attempt_pb2.ConnectionSnapshot(
            id="conn_pg",
            kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
            url=url,
            secret=connection_pb2.SecretSource(value=PASSWORD),
        ),
        attempt_pb2.ConnectionSnapshot(
            id="conn_api",
            kind=connection_pb2.CONNECTION_KIND_REST,
            rest=connection_pb2.RestOptions(
                base_url=echoing_api, auth_header="Authorization", timeout_seconds=5
            ),
            secret=connection_pb2.SecretSource(value=BASIC),
        ),
    ]
    attempt = run(driver, tmp_path, ECHOED, connections=connections)
    assert attempt.result.outcome == attempt_pb2.ATTEMPT_OUTCOME_SUCCEEDED, attempt.result.error
    refused = [line.text for line in attempt.lines if line.text.startswith("refused ")]
    assert [text.split()[1] for text in refused] == ["execute", "insert", "bulk", "get", "post"], refused
    assert leaks([line.text for line in attempt.lines], role) == []  # what the script saw, as before
    assert_one_tree(attempt)
    assert leaks(span_texts(attempt.spans), role) == []
    # The echoes did reach the spans' statuses: masked there. The shards ran in Ray tasks.
    masked = [s.name for s in attempt.spans if "***" in s.status_message]
    assert sorted(masked) == sorted(
        ["execute", "INSERT", "insert", "COPY items", "insert", "shard 1", "COPY customers"]
        + ["shard 2", "COPY customers", "get", "post"]
    ), masked
    shards = [s for s in attempt.spans if s.name.startswith("shard ")]
    assert all(str(attributes(s)["seedbed.writer"]).startswith("ray task ") for s in shards)


def test_a_shard_recorded_in_another_process_ships_its_failure_and_spans_scrubbed(
    echoing_pg: tuple[str, str],
) -> None:
    # Spans of the shard's own recorder (no recorder of the attempt here), scrubbed where the shard
    # resolved its connection's secret: an `env` secret may differ from the attempt's node.
    url, role = echoing_pg
    snapshot = attempt_pb2.ConnectionSnapshot(
        id="conn_pg",
        kind=connection_pb2.CONNECTION_KIND_POSTGRESQL,
        url=url,
        secret=connection_pb2.SecretSource(value=PASSWORD),
    )
    parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    job = replace(
        _jobs(url, 1)[0],
        connection=snapshot.SerializeToString(),
        trace=tracing.TraceHandoff(parent, 100, 1024),
    )
    result = bulk.write_shard(job)
    assert result.failure is not None and result.failure.kind == "target"
    assert "refused, you sent: ***" in result.failure.message and leaks([result.failure.message], role) == []
    spans = [run_pb2.Span.FromString(data) for data in result.spans]
    assert sorted(s.name for s in spans) == ["COPY customers", "shard 1"]
    assert all("***" in s.status_message for s in spans)
    assert leaks(span_texts(spans), role) == []
