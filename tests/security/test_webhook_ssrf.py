"""Finding 4 of issue 10: a scenario's webhook reporter made the coordinator POST wherever its URL
pointed — loopback services, the cloud metadata address, private networks — a server-side request
forgery by anyone who may edit a scenario.

Each attack points a reporter at an HTTP server this test starts on loopback (the stand-in for an
internal service) and checks that, without the operator's allow-list, the server receives nothing and
the delivery records why; with the host listed, the report arrives."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from pydantic import ValidationError

from seedbed.api.v1 import run_pb2, scenario_pb2
from seedbed.client import Client, ClientError
from seedbed.coordinator import CoordinatorSettings, running_in_thread
from seedbed.coordinator.egress import EgressPolicy, IPAddress, internal_class
from seedbed.coordinator.fakes import FakeDispatcher
from seedbed.coordinator.reporting import EgressRefused, PinnedTransport, scrub_excerpt
from tests.conftest import eventually, settings_for

# -- an internal service on loopback ---------------------------------------------------------------


@dataclass
class Internal:
    """A loopback HTTP server: records every request; answers with ``status``, ``body`` and
    ``headers`` (200 and a short text by default)."""

    port: int = 0
    status: int = 200
    body: bytes = b"internal secret"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain"})
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, host: str = "127.0.0.1", path: str = "/internal/admin") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def internal() -> Iterator[Internal]:
    state = Internal()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.received.append((self.path, dict(self.headers.items()), body))
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _reporter(url: str) -> scenario_pb2.Reporter:
    return scenario_pb2.Reporter(id="hook", webhook=scenario_pb2.WebhookTarget(url=url))


def _report(client: Client, run_id: str) -> run_pb2.ReporterDelivery:
    def done() -> run_pb2.ReporterDelivery | None:
        reports = list(client.get_run(run_id).reports)
        assert len(reports) == 1 and reports[0].status != "SENDING", reports
        return reports[0]

    return eventually(done)  # type: ignore[no-any-return]


def _run_with(client: Client, name: str, script: str, url: str) -> run_pb2.Run:
    client.put_scenario(
        name, script=script, settings=scenario_pb2.ScenarioSettings(reporters=[_reporter(url)])
    )
    return client.wait(client.run(name).run_id)


@pytest.fixture
def allowing(store_url: str, tmp_path: Path) -> Iterator[tuple[Any, Client]]:
    """A coordinator (fake dispatcher, fast reporter retries) whose operator allows 127.0.0.1."""
    settings = settings_for(
        store_url,
        tmp_path,
        webhook_allowed_hosts=["127.0.0.1"],
        reporter_initial_backoff_seconds=0.01,
        reporter_max_tries=2,
        reporter_timeout_seconds=5,
    )
    with running_in_thread(settings, FakeDispatcher()) as coord, Client(coord.address) as client:
        yield coord, client


# -- the attacks, through the real path -------------------------------------------------------------


@pytest.mark.integration
def test_a_real_run_cannot_report_to_a_loopback_service(
    coordinator: tuple[Any, Client], internal: Internal
) -> None:
    _, client = coordinator
    # A host name, not an address: it passes the check when the scenario is saved, and is refused when
    # the coordinator resolves it to a loopback address at delivery.
    run = _run_with(client, "ssrf-real", "print('hi')\n", internal.url("localhost"))
    assert run.state == run_pb2.RUN_STATE_SUCCESS
    report = _report(client, run.id)
    assert internal.received == []
    assert report.status == "FAILED" and report.tries == 1
    assert "127.0.0.1 is a loopback address" in report.error
    assert "SEEDBED_WEBHOOK_ALLOWED_HOSTS" in report.error
    assert client.get_run(run.id).state == run_pb2.RUN_STATE_SUCCESS


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/internal/admin",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::1]:{port}/",
        "http://10.1.2.3/",
        "http://0x7f.1:{port}/",
    ],
)
def test_an_internal_address_in_the_url_is_refused_when_saved(
    fake_coordinator: tuple[Any, Client], internal: Internal, url: str
) -> None:
    _, client = fake_coordinator
    settings = scenario_pb2.ScenarioSettings(reporters=[_reporter(url.format(port=internal.port))])
    with pytest.raises(ClientError) as info:
        client.put_scenario("ssrf-saved", script="print hi", settings=settings)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details.startswith("settings.reporters[0].webhook.url")
    assert "SEEDBED_WEBHOOK_ALLOWED_HOSTS" in info.value.details
    assert internal.received == []


def test_a_host_name_of_a_loopback_service_is_refused_at_delivery(
    fake_coordinator: tuple[Any, Client], internal: Internal
) -> None:
    _, client = fake_coordinator
    run = _run_with(client, "ssrf-name", "print hi", internal.url("localhost"))
    report = _report(client, run.id)
    assert internal.received == []
    assert (report.status, report.tries) == ("FAILED", 1)
    assert "loopback" in report.error and "SEEDBED_WEBHOOK_ALLOWED_HOSTS" in report.error


def test_an_allowed_host_receives_the_report(allowing: tuple[Any, Client], internal: Internal) -> None:
    _, client = allowing
    run = _run_with(client, "allowed", "print hi", internal.url())
    report = _report(client, run.id)
    assert (report.status, report.error) == ("DELIVERED", "")
    ((path, headers, body),) = internal.received
    assert path == "/internal/admin" and headers["Idempotency-Key"] == f"{run.id}:hook:RUN_FINISHED"
    assert json.loads(body)["run_id"] == run.id


def test_a_redirect_to_the_metadata_address_is_not_followed(
    allowing: tuple[Any, Client], internal: Internal
) -> None:
    _, client = allowing
    internal.status = 307
    internal.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    run = _run_with(client, "redirected", "print hi", internal.url())
    report = _report(client, run.id)
    assert (report.status, report.tries) == ("FAILED", 1)
    assert "HTTP 307" in report.error and "redirects are not followed" in report.error
    assert len(internal.received) == 1


def test_the_error_keeps_a_short_scrubbed_excerpt_of_a_text_answer(
    allowing: tuple[Any, Client], internal: Internal
) -> None:
    _, client = allowing
    internal.status = 400
    internal.body = "\x1b[31mbad\x00 request\r\n\u202e".encode() + b"A" * 5000 + b"TAIL"
    run = _run_with(client, "excerpt", "print hi", internal.url())
    report = _report(client, run.id)
    assert report.status == "FAILED" and "HTTP 400" in report.error
    assert "\x1b" not in report.error and "\x00" not in report.error and "\r" not in report.error
    assert "bad request" in report.error and "TAIL" not in report.error
    assert report.error.count("A") <= 200


def test_the_error_keeps_nothing_of_a_binary_answer(allowing: tuple[Any, Client], internal: Internal) -> None:
    _, client = allowing
    internal.status = 403
    internal.headers = {"Content-Type": "application/octet-stream"}
    internal.body = b"internal secret bytes"
    run = _run_with(client, "binary", "print hi", internal.url())
    report = _report(client, run.id)
    assert report.status == "FAILED" and "HTTP 403" in report.error
    assert "secret" not in report.error


def test_a_listed_host_name_admits_its_addresses(store_url: str, tmp_path: Path, internal: Internal) -> None:
    settings = settings_for(store_url, tmp_path, webhook_allowed_hosts=["LocalHost."])
    with running_in_thread(settings, FakeDispatcher()) as coord, Client(coord.address) as client:
        run = _run_with(client, "by-name", "print hi", internal.url("localhost"))
        assert _report(client, run.id).status == "DELIVERED"
    ((_, headers, _),) = internal.received
    assert headers["Host"] == f"localhost:{internal.port}"


# -- the address classes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "label"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("fc00::1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("100.127.255.254", "shared (carrier-grade NAT)"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation
        ("198.18.0.1", "reserved"),  # benchmarking
        ("2001:db8::1", "reserved"),  # documentation
    ],
)
def test_internal_addresses_are_classified(address: str, label: str) -> None:
    assert internal_class(ipaddress.ip_address(address)) == label


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "11.0.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert internal_class(ipaddress.ip_address(address)) is None
    assert EgressPolicy().refusal("hooks.example.com", ipaddress.ip_address(address)) is None


def test_the_allow_list_admits_names_addresses_and_networks() -> None:
    policy = EgressPolicy.parse(["hooks.internal", "127.0.0.1", "10.0.0.0/8", "fd00::/8"])
    ip = ipaddress.ip_address
    assert policy.refusal("HOOKS.internal.", ip("192.168.7.7")) is None
    assert policy.refusal("a.example", ip("127.0.0.1")) is None
    assert policy.refusal("a.example", ip("::ffff:127.0.0.1")) is None  # the same address, mapped
    assert policy.refusal("a.example", ip("10.20.30.40")) is None
    assert policy.refusal("a.example", ip("fd12::1")) is None
    refused = policy.refusal("a.example", ip("::1"))
    assert refused is not None and refused.startswith("a.example resolves to ::1: ::1 is a loopback address")
    assert "SEEDBED_WEBHOOK_ALLOWED_HOSTS" in refused
    assert policy.refusal("169.254.169.254", ip("169.254.169.254")) == (
        "169.254.169.254 is a cloud metadata address; reports are not sent to loopback, link-local, "
        "private, metadata or other internal addresses unless the operator lists the host or its "
        "address in SEEDBED_WEBHOOK_ALLOWED_HOSTS"
    )


def test_the_setting_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEDBED_WEBHOOK_ALLOWED_HOSTS", " Hooks.Internal, 127.0.0.1 ,10.0.0.0/8,[::1],")
    assert CoordinatorSettings().webhook_allowed_hosts == ["hooks.internal", "127.0.0.1", "10.0.0.0/8", "::1"]
    monkeypatch.setenv("SEEDBED_WEBHOOK_ALLOWED_HOSTS", "10.0.0.1/8")
    with pytest.raises(ValidationError, match=r"'10.0.0.1/8' is not a network"):
        CoordinatorSettings()
    monkeypatch.setenv("SEEDBED_WEBHOOK_ALLOWED_HOSTS", "http://hooks.internal/x")
    with pytest.raises(ValidationError, match="is not a host name, an IP address or a network"):
        CoordinatorSettings()
    monkeypatch.delenv("SEEDBED_WEBHOOK_ALLOWED_HOSTS")
    assert CoordinatorSettings().webhook_allowed_hosts == []


# -- the transport: resolve once, check every address, connect to a checked one --------------------


class FakeResolver:
    """Answers from a script of replies, one per call, the last repeated; counts the calls."""

    def __init__(self, *replies: Sequence[str]) -> None:
        self.replies = [[ipaddress.ip_address(a) for a in reply] for reply in replies]
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return reply


def _post(transport: PinnedTransport, url: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post(url, content=b"{}")

    return asyncio.run(go())


def test_a_rebinding_name_is_connected_at_the_address_that_was_checked() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    # The first answer is public; any later one would be loopback.
    resolver = FakeResolver(["93.184.216.34"], ["127.0.0.1"])
    transport = PinnedTransport(EgressPolicy(), inner=httpx.MockTransport(answer), resolver=resolver)
    assert _post(transport, "https://hooks.example.com/h?x=1").status_code == 204
    (request,) = seen
    assert resolver.calls == 1
    assert str(request.url) == "https://93.184.216.34/h?x=1"
    assert request.headers["Host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


def test_every_resolved_address_is_checked() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    transport = PinnedTransport(
        EgressPolicy(),
        inner=httpx.MockTransport(answer),
        resolver=FakeResolver(["93.184.216.34", "10.0.0.5"]),
    )
    with pytest.raises(EgressRefused, match="hooks.example.com resolves to 10.0.0.5: 10.0.0.5 is a private"):
        _post(transport, "http://hooks.example.com/")
    assert seen == []


def test_the_next_checked_address_is_tried_when_one_does_not_answer() -> None:
    tried: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        if request.url.host == "2606:4700::1111":
            raise httpx.ConnectError("unreachable", request=request)
        return httpx.Response(200)

    transport = PinnedTransport(
        EgressPolicy(),
        inner=httpx.MockTransport(answer),
        resolver=FakeResolver(["2606:4700::1111", "93.184.216.34"]),
    )
    assert _post(transport, "http://hooks.example.com:8080/").status_code == 200
    assert tried == ["2606:4700::1111", "93.184.216.34"]


# -- what the stored error keeps of an answer ---------------------------------------------------------


def test_an_excerpt_is_one_short_printable_line() -> None:
    assert scrub_excerpt("\x1b[2J\x00bad\r\n\tinput\u202e\u200b here ") == "[2J bad input here"
    long = scrub_excerpt("é" * 1000)
    assert len(long) == 200 and long.endswith("…")
    assert scrub_excerpt("x" * 200) == "x" * 200
    assert scrub_excerpt("") == ""
