"""``seedbed``: run the coordinator, submit and follow scenarios, show runs, read logs, abort runs,
purge what a run seeded.

Exit codes: 0 SUCCESS, 1 FAILED, 2 usage or connection error, 3 ABORTED, 4 WARNING.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seedbed.api.v1 import run_pb2
from seedbed.cli._access import register as register_access
from seedbed.cli._apply import register as register_apply
from seedbed.cli._catalog import register as register_catalog
from seedbed.cli._deploy import register as register_deploy
from seedbed.cli._mcp import register as register_mcp
from seedbed.cli._purge import purge_run
from seedbed.cli._scenario_runs import RUN_VERBS, add_run_verb_arguments, run_verb
from seedbed.cli._scenarios import register as register_scenarios
from seedbed.cli._show import show_run
from seedbed.client import Client, ClientError, LogEvent, RunEnded
from seedbed.client._transport import ENV_CA, ENV_CLIENT_CERT, ENV_CLIENT_KEY, ConnectionSettingsError

EXIT_CODES = {
    run_pb2.RUN_STATE_SUCCESS: 0,
    run_pb2.RUN_STATE_FAILED: 1,
    run_pb2.RUN_STATE_ABORTED: 3,
    run_pb2.RUN_STATE_WARNING: 4,
}
EXIT_USAGE = 2
DEFAULT_ADDRESS = "127.0.0.1:50051"
# `seedbed run show RUN` describes a run, `seedbed run purge RUN` deletes what it seeded; a
# scenario file named "show" or "purge" is given as ./show or ./purge.
SHOW = "show"
PURGE = "purge"


def _state(value: int) -> str:
    return run_pb2.RunState.Name(value).removeprefix("RUN_STATE_")


def _reason(value: int) -> str:
    return run_pb2.FailureReason.Name(value).removeprefix("FAILURE_REASON_")


def _parse_params(items: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"seedbed: --param takes key=value, got {item!r}")
        params[key] = value
    return params


def _scenario_id_for(path: Path) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_") or "scenario"
    return slug[:63]


# -- printing ---------------------------------------------------------------------------------------


# A bulk insert's progress as the worker words it (seedbed.worker.bulk._insert).
_PROGRESS = re.compile(
    r"insert (?P<table>\S+): (?P<done>[\d,]+)/(?P<total>[\d,]+) rows \((?P<pct>\d+)%\), "
    r"(?P<rate>[\d,]+) rows/s, about (?P<left>\d+)s left"
)


class _ProgressBar:
    """On a terminal, a bulk insert's progress lines become one bar redrawn in place; any other
    line ends the bar first. Elsewhere (a file, CI's log) the lines are printed as they are."""

    def __init__(self) -> None:
        self.open = False

    def draw(self, line: run_pb2.LogLine) -> bool:
        found = _PROGRESS.fullmatch(line.text) if line.stream == run_pb2.LOG_STREAM_SYSTEM else None
        if found is None or not sys.stderr.isatty():
            return False
        width = 30
        filled = min(width, int(width * int(found["pct"]) / 100))
        bar = "#" * filled + "." * (width - filled)
        text = (
            f"\r[seedbed] insert {found['table']} [{bar}] {found['pct']:>3}% "
            f"{found['done']}/{found['total']} rows, {found['rate']} rows/s, ~{found['left']}s left"
        )
        sys.stderr.write(text + "\x1b[K")
        sys.stderr.flush()
        self.open = True
        return True

    def close(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            self.open = False


_bar = _ProgressBar()


def print_line(line: run_pb2.LogLine) -> None:
    if _bar.draw(line):
        return
    _bar.close()
    if line.stream == run_pb2.LOG_STREAM_STDOUT:
        print(line.text, flush=True)
    elif line.stream == run_pb2.LOG_STREAM_STDERR:
        print(line.text, file=sys.stderr, flush=True)
    else:
        level = f" {line.level.upper()}" if line.level else ""
        print(f"[seedbed{level}] {line.text}", file=sys.stderr, flush=True)


def describe(run: run_pb2.Run) -> str:
    text = f"run {run.id} {_state(run.state)}"
    if run.HasField("start_time") and run.HasField("end_time"):
        seconds = (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds()
        text += f" in {seconds:.2f}s"
    if run.HasField("first_error") and run.first_error.type:
        err = run.first_error
        where = f" (line {err.line})" if err.line else ""
        reason = f"{_reason(err.reason)}: " if err.reason else ""
        text += f"\n  {reason}{err.type}: {err.message}{where}"
        if err.traceback:
            text += "\n" + "\n".join("  " + t for t in err.traceback.rstrip().splitlines())
    if run.logs_truncated:
        text += f"\n  logs truncated: {run.dropped_log_lines} lines dropped over the per-run cap"
    return text


def print_json_line(event: LogEvent) -> None:
    """One log line as one JSON object on stdout (``seedbed logs --json``, ``run log --json``): its
    fields as JSON values, its stream in the object rather than chosen by the output."""
    print(json.dumps(event.to_dict(), ensure_ascii=False), flush=True)


def follow(
    client: Client, run_id: str, after: int = 0, follow_: bool = True, as_json: bool = False
) -> run_pb2.Run:
    for event in client.stream_logs(run_id, after=after, follow=follow_):
        if isinstance(event, LogEvent):
            if as_json:
                print_json_line(event)
            else:
                print_line(event.line)
        elif isinstance(event, RunEnded):
            _bar.close()
            return event.run
    raise AssertionError("unreachable")


# -- commands ---------------------------------------------------------------------------------------


def cmd_server(args: argparse.Namespace) -> int:
    from seedbed.coordinator import CoordinatorSettings, serve
    from seedbed.coordinator.errors import SecretKeyMismatchError, StoreUnavailableError
    from seedbed.coordinator.observability.logs import configure_logging
    from seedbed.coordinator.observability.metrics import MetricsEndpointError
    from seedbed.coordinator.tls import TlsSettingsError

    given = {
        "listen": args.listen,
        "store_url": args.store_url,
        "log_format": args.log_format,
        "metrics_listen": args.metrics_listen,
        "rest_listen": args.rest_listen,
    }
    settings = CoordinatorSettings(**{k: v for k, v in given.items() if v is not None})
    configure_logging(settings.log_format)
    if args.migrate_only:
        from seedbed.coordinator.server import migrate_only

        return 0 if asyncio.run(migrate_only(settings)) else 1
    try:
        asyncio.run(serve(settings))
    except (
        TlsSettingsError,
        MetricsEndpointError,
        SecretKeyMismatchError,
        StoreUnavailableError,
        OSError,  # a listen address in use or not available (names its setting)
    ) as exc:
        print(f"seedbed: the coordinator did not start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.file in RUN_VERBS:
        return run_verb(args)
    if args.run_id is not None:
        if args.file not in (SHOW, PURGE):
            print(
                f"seedbed: unexpected argument {args.run_id!r}: `seedbed run` takes one scenario file "
                "(or `seedbed run show RUN` to describe a run, `seedbed run purge RUN` to delete what "
                "it seeded)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if args.dry_run and args.file != PURGE:
            print("seedbed: --dry-run goes with `seedbed run purge RUN`", file=sys.stderr)
            return EXIT_USAGE
        with Client(args.address) as client:
            if args.file == PURGE:
                return purge_run(client, args.run_id, dry_run=args.dry_run, as_json=args.json)
            return show_run(client, args.run_id, args.json)
    if args.json or args.dry_run:
        usage = "`seedbed run show|purge|details|log|trace RUN`" if args.json else "`seedbed run purge RUN`"
        print(f"seedbed: {'--json' if args.json else '--dry-run'} goes with {usage}", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.file)
    try:
        script = path.read_text()
    except OSError as exc:
        hint = {
            SHOW: "\n  to describe a run: seedbed run show RUN",
            PURGE: "\n  to delete what a run seeded: seedbed run purge RUN",
        }.get(args.file, "")
        print(f"seedbed: cannot read {path}: {exc.strerror}{hint}", file=sys.stderr)
        return EXIT_USAGE
    params = _parse_params(args.param)
    scenario_id = args.scenario or _scenario_id_for(path)
    if args.local:
        return _with_local_coordinator(lambda address: _submit(address, scenario_id, script, params, args))
    return _submit(args.address, scenario_id, script, params, args)


def _submit(
    address: str, scenario_id: str, script: str, params: dict[str, str], args: argparse.Namespace
) -> int:
    from seedbed.api.v1 import scenario_pb2

    settings = None
    if args.timeout:
        settings = scenario_pb2.ScenarioSettings(timeout_seconds=args.timeout)
    with Client(address) as client:
        client.put_scenario(scenario_id, script=script, settings=settings)
        fire = client.run(scenario_id, params)
        if fire.state == run_pb2.TRIGGER_FIRE_STATE_CANCELLED:
            print(f"seedbed: fire {fire.id} cancelled: {fire.cancel_reason}", file=sys.stderr)
            return EXIT_USAGE
        print(f"[seedbed] fire {fire.id} → run {fire.run_id}", file=sys.stderr, flush=True)
        if not args.follow:
            print(fire.run_id)
            return 0
        run = follow(client, fire.run_id)
        print(f"[seedbed] {describe(run)}", file=sys.stderr)
        return EXIT_CODES.get(run.state, 1)


def _with_local_coordinator(body: Callable[[str], int]) -> int:
    """Start an embedded coordinator (SQLite store, local Ray, local Docker) for one command."""
    from seedbed.coordinator import CoordinatorSettings, running_in_thread
    from seedbed.coordinator.tls import TlsSettingsError

    logging.basicConfig(level=logging.WARNING, format="[seedbed %(levelname)s] %(message)s")
    try:
        # One command's coordinator serves no metrics and no REST API (nobody else calls it; the
        # ports may be taken).
        settings = CoordinatorSettings(listen="127.0.0.1:0", metrics_listen="", rest_listen="")
        with running_in_thread(settings) as coordinator:
            if coordinator.engine_problem:
                print(f"seedbed: {coordinator.engine_problem}", file=sys.stderr)
            if not os.environ.get("SEEDBED_API_KEY"):
                key = _local_admin_key(settings.admin_api_key, settings.data_dir)
                if key is None:
                    return EXIT_USAGE
                os.environ["SEEDBED_API_KEY"] = key
            # The scheme says how to reach it, whatever TLS variables the shell has for others.
            return body(("https://" if coordinator.tls else "http://") + coordinator.address)
    except (OSError, TlsSettingsError) as exc:
        print(f"seedbed: the embedded coordinator did not start: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _local_admin_key(configured: str, data_dir: Path) -> str | None:
    """The embedded coordinator's admin key: SEEDBED_ADMIN_API_KEY, else the file it wrote at its
    first start (so `seedbed run --local` needs no set-up)."""
    if configured:
        return configured
    path = data_dir / "admin-api-key"
    try:
        return path.read_text().strip()
    except OSError:
        print(
            f"seedbed: no API key: set SEEDBED_API_KEY or --api-key ({path} is missing; the store in "
            "that folder already has users)",
            file=sys.stderr,
        )
        return None


def cmd_logs(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        run = follow(client, args.run_id, after=args.after, follow_=args.follow, as_json=args.json)
        if run.state in EXIT_CODES:
            print(f"[seedbed] {describe(run)}", file=sys.stderr)
            return EXIT_CODES[run.state]
        return 0


def cmd_abort(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        response = client.abort(args.run_id, args.reason)
        if response.already_finished:
            print(f"run {args.run_id} had already ended ({_state(response.run.state)}): nothing to abort")
        else:
            print(describe(response.run))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        runs = client.list_runs(args.scenario or "", args.limit)
    if args.json:
        from google.protobuf.json_format import MessageToDict

        print(json.dumps([MessageToDict(r) for r in runs], indent=2))
        return 0
    print(f"{'RUN':<22} {'SCENARIO':<24} {'STATE':<8} {'CREATED':<20} ERROR")
    for run in runs:
        created = run.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        error = f"{run.first_error.type}: {run.first_error.message}"[:60] if run.first_error.type else ""
        print(f"{run.id:<22} {run.scenario_id:<24} {_state(run.state):<8} {created:<20} {error}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seedbed", description="Run test-data seeding scenarios.")
    parser.add_argument(
        "--address",
        default=os.environ.get("SEEDBED_ADDRESS", DEFAULT_ADDRESS),
        help="coordinator host:port, https://host:port for TLS (SEEDBED_ADDRESS; default %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="API key sent with every call (SEEDBED_API_KEY); the first admin key is in the "
        "coordinator's data folder, file admin-api-key",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="speak TLS to the coordinator, as an https:// address does (also implied by a CA file or "
        "client certificate, from an option or the environment; an http:// address is plaintext)",
    )
    parser.add_argument(
        "--tls-ca-file",
        metavar="PEM",
        help=f"CA certificates that verify the coordinator ({ENV_CA}; default: the system's roots)",
    )
    parser.add_argument(
        "--tls-client-cert-file",
        metavar="PEM",
        help=f"client certificate for a coordinator that requires one, mutual TLS ({ENV_CLIENT_CERT})",
    )
    parser.add_argument(
        "--tls-client-key-file",
        metavar="PEM",
        help=f"the client certificate's private key ({ENV_CLIENT_KEY})",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "server", help="run the coordinator (embedded defaults: SQLite, local Ray, local Docker)"
    )
    p.add_argument("--listen", help="host:port to bind (SEEDBED_LISTEN)")
    p.add_argument("--store-url", help="SQLAlchemy URL of the store (SEEDBED_STORE_URL)")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="the coordinator's own log lines: text, or one JSON object per line with run id, attempt "
        "and trace id (SEEDBED_LOG_FORMAT; default text)",
    )
    p.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="where GET /metrics serves Prometheus metrics; an empty value serves none "
        "(SEEDBED_METRICS_LISTEN; default 127.0.0.1:9464)",
    )
    p.add_argument(
        "--rest-listen",
        metavar="HOST:PORT",
        help="where the REST API (/v1/…) and the MCP endpoint (/mcp) listen; an empty value serves "
        "neither (SEEDBED_REST_LISTEN; default 127.0.0.1:8080)",
    )
    p.add_argument(
        "--migrate-only",
        action="store_true",
        help="bring the store's schema up to date, check the secret key against the store, and exit "
        "(0 when both are fine): a deployment's step before the coordinators start",
    )
    p.set_defaults(func=cmd_server)

    p = sub.add_parser(
        "run",
        help="submit a scenario file and follow its logs; `run show RUN` describes a run, "
        "`run purge RUN` deletes what it seeded, `run trace RUN` draws where its time went",
        usage="seedbed run FILE [options]\n       seedbed run show RUN [--json]\n"
        "       seedbed run purge RUN [--dry-run] [--json]\n"
        "       seedbed run details RUN [--json]\n       seedbed run log RUN [--step S] [--json]\n"
        "       seedbed run export RUN | --last [--project P]\n"
        "       seedbed run trace RUN [--depth N] [--min-ms MS] [--json]",
        description="Submit a scenario file and follow its logs, or (`seedbed run show RUN`) show a "
        "run: its attempts and, per target, the batches applied and replayed, or (`seedbed run purge "
        "RUN`) delete the rows a finished run inserted into its SQL targets, newest batch first "
        "(exit code 1 when the purge stopped at a failure), or (`seedbed run trace RUN`) draw the "
        "run's trace as a waterfall: one row per span from the RunScenario call through each "
        "attempt, step and SDK call to every batch written, with its service, duration, a bar on "
        "the run's time axis and its key attributes; errors are marked. `--json` prints the trace "
        "as OTLP JSON for tools (Jaeger, Tempo, an OpenTelemetry collector's file receiver).",
        epilog="A scenario file named show, purge, details, log, export or trace must be given as "
        "./show, ./purge and so on. Each submission carries an "
        "idempotency key, generated and reused when the call is retried, so a lost answer never starts "
        "two runs; the coordinator keeps keys at least 24 hours (currently for the life of its store).",
    )
    p.add_argument(
        "file",
        metavar="FILE",
        help="the scenario script (or show, purge, details, log, export or trace, then a run id)",
    )
    p.add_argument("run_id", nargs="?", help=argparse.SUPPRESS)
    p.add_argument(
        "--json",
        action="store_true",
        help="with `show`: the run and its write batches as JSON; with `purge`: the purge's report; "
        "with `log`: one JSON object per line; with `trace`: the trace as OTLP JSON",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="with `purge`: count what would be deleted, delete nothing"
    )
    p.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--scenario", help="scenario id (default: from the file name)")
    p.add_argument("--timeout", type=int, default=0, help="deadline of the run in seconds")
    p.add_argument(
        "--follow", dest="follow", action="store_true", default=True, help="show logs live (default)"
    )
    p.add_argument("--no-follow", dest="follow", action="store_false", help="print the run id and return")
    p.add_argument("--local", action="store_true", help="start an embedded coordinator for this one run")
    add_run_verb_arguments(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("logs", help="print a run's logs")
    p.add_argument("run_id")
    p.add_argument("--follow", "-f", action="store_true", help="keep following until the run ends")
    p.add_argument("--after", type=int, default=0, help="start after this sequence number")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line on stdout: sequence, attempt, stream, level, time, text, "
        "fields (the log call's, as JSON values), trace_id, span_id",
    )
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("abort", help="abort a run")
    p.add_argument("run_id")
    p.add_argument("--reason", default="aborted from the command line")
    p.set_defaults(func=cmd_abort)

    p = sub.add_parser("runs", help="list recent runs")
    p.add_argument("--scenario")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    register_catalog(sub)
    register_access(sub)
    register_scenarios(sub)
    register_apply(sub)
    register_mcp(sub)

    register_deploy(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.api_key:
        # Every Client this command opens reads SEEDBED_API_KEY: the option is passed down that way.
        os.environ["SEEDBED_API_KEY"] = args.api_key
    # The TLS options go the same way (the files), or into the address (--tls).
    for value, variable in (
        (args.tls_ca_file, ENV_CA),
        (args.tls_client_cert_file, ENV_CLIENT_CERT),
        (args.tls_client_key_file, ENV_CLIENT_KEY),
    ):
        if value:
            os.environ[variable] = value
    if args.tls and not args.address.startswith("https://"):
        if args.address.startswith("http://"):
            print("seedbed: --tls contradicts the http:// address (plaintext)", file=sys.stderr)
            return EXIT_USAGE
        args.address = f"https://{args.address}"
    try:
        return int(args.func(args))
    except ClientError as exc:
        hint = ""
        if exc.code.name == "UNAVAILABLE" and "TLS" not in exc.details:
            hint = f"\n  is a coordinator running at {args.address}? start one with `seedbed server`"
        print(f"seedbed: {exc}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except ConnectionSettingsError as exc:
        print(f"seedbed: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`seedbed logs RUN --json | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
