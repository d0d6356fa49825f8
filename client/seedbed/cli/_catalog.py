"""``seedbed template | connection | workspace`` commands."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from seedbed.api.v1 import connection_pb2
from seedbed.client import Client

EXIT_USAGE = 2


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"seedbed: cannot read {path}: {exc}", file=sys.stderr)
        return None


def _dump(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# -- templates ---------------------------------------------------------------------------------------


def cmd_template_push(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        for path in args.files:
            source = _read(path)
            if source is None:
                return EXIT_USAGE
            template = client.put_template(
                source, allow_update=not args.no_update, project_key=args.project, shared=args.shared
            )
            shared = ", shared" if template.shared else ""
            print(
                f"{template.id} revision {template.revision} ({len(template.field_names)} fields) "
                f"in project {template.project_key}{shared}"
            )
    return 0


def cmd_template_list(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        templates = client.list_templates(args.project)
    if args.json:
        _dump([MessageToDict(t) for t in templates])
        return 0
    print(f"{'TEMPLATE':<32} {'PROJECT':<20} {'REV':>4}  {'FIELDS':<50} DESCRIPTION")
    for t in templates:
        fields = ", ".join(t.field_names)
        print(
            f"{t.id:<32} {_owner(t.project_key, t.shared):<20} {t.revision:>4}  {fields[:50]:<50} "
            f"{t.description[:40]}"
        )
    return 0


def cmd_template_show(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        template = client.get_template(args.template_id)
    if args.json:
        _dump(MessageToDict(template))
    else:
        print(template.source, end="" if template.source.endswith("\n") else "\n")
    return 0


def cmd_template_rm(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        client.delete_template(args.template_id)
    print(f"deleted {args.template_id}")
    return 0


def cmd_template_preview(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        if Path(args.template).is_file():
            source = _read(args.template)
            if source is None:
                return EXIT_USAGE
            rows = client.preview_template(
                source=source, count=args.n, seed=args.seed, project_key=args.project
            )
        else:
            rows = client.preview_template(args.template, count=args.n, seed=args.seed)
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return 0


# -- connections -------------------------------------------------------------------------------------

_KINDS = {
    "postgresql": connection_pb2.CONNECTION_KIND_POSTGRESQL,
    "sql": connection_pb2.CONNECTION_KIND_SQL,
    "rest": connection_pb2.CONNECTION_KIND_REST,
    "file": connection_pb2.CONNECTION_KIND_FILE,
}
# BulkOptions fields, given as --writers, --shard-rows, --max-writers.
_BULK_OPTIONS = ("writers", "shard_rows", "max_writers")


def cmd_connection_create(args: argparse.Namespace) -> int:
    request = connection_pb2.CreateConnectionRequest(
        connection_id=args.connection_id,
        kind=_KINDS[args.kind],
        description=args.description,
        url=args.url or "",
        allow_update=args.update,
        allowed_users=args.allowed_user,
        project_key=args.project,
        shared=args.shared,
    )
    if args.kind == "rest":
        headers: dict[str, str] = {}
        for item in args.header:
            name, sep, value = item.partition("=")
            if not sep:
                print(f"seedbed: --header takes NAME=VALUE, got {item!r}", file=sys.stderr)
                return EXIT_USAGE
            headers[name] = value
        request.rest.CopyFrom(
            connection_pb2.RestOptions(
                base_url=args.base_url or "",
                headers=headers,
                auth_header=args.auth_header or "",
                batch_size=args.batch_size,
                timeout_seconds=args.timeout,
                idempotent=args.idempotent,
            )
        )
    for name in _BULK_OPTIONS:
        if getattr(args, name) is not None:
            try:
                setattr(request.bulk, name, getattr(args, name))
            except ValueError:  # beyond the field's integer type; the coordinator checks the range
                flag = "--" + name.replace("_", "-")
                print(f"seedbed: {flag} {getattr(args, name)} is out of range", file=sys.stderr)
                return EXIT_USAGE
    if args.secret_env:
        request.secret.env = args.secret_env
    elif args.secret_file:
        request.secret.file = args.secret_file
    elif args.secret_stdin:
        # Read the secret without echo (tty) or from a pipe: it never appears in argv or history.
        secret = getpass.getpass("secret: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        request.secret.value = secret
    with Client(args.address) as client:
        connection = client.create_connection(request)
    users = ", ".join(connection.allowed_users) or "every user"
    projects = f"{connection.project_key}" + (
        " and every other project (shared)" if connection.shared else ""
    )
    bulk = " ".join(
        f"{name}={getattr(connection.bulk, name)}" for name in _BULK_OPTIONS if connection.bulk.HasField(name)
    )
    print(
        f"{connection.id} ({args.kind}) secret: {connection.secret}; runs acting as: {users}; "
        f"runs of: {projects}" + (f"; bulk: {bulk}" if bulk else "")
    )
    return 0


def cmd_connection_list(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        connections = client.list_connections(args.project)
    if args.json:
        _dump([MessageToDict(c) for c in connections])
        return 0
    print(f"{'CONNECTION':<28} {'PROJECT':<20} {'KIND':<11} {'SECRET':<16} TARGET")
    for c in connections:
        kind = connection_pb2.ConnectionKind.Name(c.kind).removeprefix("CONNECTION_KIND_").lower()
        target = c.url or c.rest.base_url
        print(f"{c.id:<28} {_owner(c.project_key, c.shared):<20} {kind:<11} {c.secret:<16} {target}")
    return 0


def cmd_connection_show(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        _dump(MessageToDict(client.get_connection(args.connection_id)))
    return 0


def cmd_connection_test(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        result = client.test_connection(args.connection_id)
    status = "ok" if result.ok else "FAILED"
    print(f"{args.connection_id}: {status} in {result.latency_seconds:.3f}s: {result.message}")
    return 0 if result.ok else 1


def cmd_connection_rm(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        client.delete_connection(args.connection_id)
    print(f"deleted {args.connection_id}")
    return 0


# -- workspace ---------------------------------------------------------------------------------------


def cmd_workspace_upload(args: argparse.Namespace) -> int:
    source = Path(args.file)
    try:
        data = source.read_bytes()
    except OSError as exc:
        print(f"seedbed: cannot read {source}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    with Client(args.address) as client:
        meta = client.upload_file(
            args.as_path or source.name,
            data,
            overwrite=args.overwrite,
            project_key=args.project,
            shared=args.shared,
        )
    shared = ", shared" if meta.shared else ""
    print(f"{meta.path} {meta.size_bytes} bytes sha256:{meta.sha256} in project {meta.project_key}{shared}")
    return 0


def cmd_workspace_list(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        files = client.list_files(args.prefix, args.project)
    if args.json:
        _dump([MessageToDict(f) for f in files])
        return 0
    for f in files:
        print(f"{f.size_bytes:>12}  {_owner(f.project_key, f.shared):<20} {f.path}")
    return 0


def cmd_workspace_download(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        _, data = client.download_file(args.path)
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(args.output or Path(args.path).name).write_bytes(data)
    return 0


def cmd_workspace_rm(args: argparse.Namespace) -> int:
    with Client(args.address) as client:
        client.delete_file(args.path)
    print(f"deleted {args.path}")
    return 0


def _owner(project_key: str, shared: bool) -> str:
    return f"{project_key} (shared)" if shared else project_key


def _ownership(p: argparse.ArgumentParser, what: str) -> None:
    """--project and --shared/--no-shared of the commands that create catalog objects."""
    p.add_argument(
        "--project",
        default="default",
        metavar="KEY",
        help=f"the project {what} belongs to (default: default)",
    )
    p.add_argument(
        "--shared",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="share it with every project, or stop sharing it (needs admin in its project; "
        "default: unchanged, not shared when new)",
    )


def _project_filter(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--project", default="", metavar="KEY", help=f"only the {what} this project's runs may use"
    )


def register(sub: Any) -> None:
    t = sub.add_parser("template", help="data templates").add_subparsers(
        dest="template_command", required=True
    )
    p = t.add_parser("push", help="create or update templates from YAML or JSON files")
    p.add_argument("files", nargs="+")
    p.add_argument("--no-update", action="store_true", help="fail when the template exists")
    _ownership(p, "the templates")
    p.set_defaults(func=cmd_template_push)
    p = t.add_parser("list", help="list templates")
    p.add_argument("--json", action="store_true")
    _project_filter(p, "templates")
    p.set_defaults(func=cmd_template_list)
    p = t.add_parser("show", help="print a template's source")
    p.add_argument("template_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_template_show)
    p = t.add_parser("rm", help="delete a template")
    p.add_argument("template_id")
    p.set_defaults(func=cmd_template_rm)
    p = t.add_parser("preview", help="print sample rows of a stored template or a template file")
    p.add_argument("template", help="template id, or a YAML/JSON file")
    p.add_argument("-n", type=int, default=5, help="rows (1-100, default 5)")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--project", default="", metavar="KEY", help="a file: preview it as a run of this project would"
    )
    p.set_defaults(func=cmd_template_preview)

    c = sub.add_parser("connection", help="connections to targets").add_subparsers(
        dest="connection_command", required=True
    )
    p = c.add_parser("create", help="create a connection")
    p.add_argument("connection_id")
    p.add_argument("--kind", choices=sorted(_KINDS), required=True)
    p.add_argument("--url", help="SQL kinds: the database URL (a password in it is stored encrypted)")
    p.add_argument("--description", default="")
    p.add_argument("--base-url", help="rest: base URL (the allow-list)")
    p.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="rest: non-secret header"
    )
    p.add_argument("--auth-header", help="rest: header whose value is the secret, e.g. Authorization")
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--timeout", type=int, default=0, help="rest: seconds per request")
    p.add_argument("--idempotent", action="store_true", help="rest: the target honours Idempotency-Key")
    p.add_argument(
        "--writers",
        type=int,
        metavar="N",
        help="postgresql: shards of one bulk insert written at once, each with its own connection "
        "(1-64, default 2)",
    )
    p.add_argument(
        "--shard-rows",
        type=int,
        metavar="N",
        help="postgresql: rows per shard of a bulk insert, rounded up to a multiple of 10000 "
        "(10000-10000000, default 100000)",
    )
    p.add_argument(
        "--max-writers",
        type=int,
        metavar="N",
        help="postgresql: shard writers on this target at once across all runs (1-1024, default: no "
        "bound but --writers)",
    )
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--secret-env", help="the workers read the secret from this environment variable")
    secret.add_argument("--secret-file", help="the workers read the secret from this file")
    secret.add_argument(
        "--secret-stdin", action="store_true", help="read the secret from stdin, store it encrypted"
    )
    p.add_argument("--update", action="store_true", help="replace an existing connection")
    p.add_argument(
        "--allowed-user",
        action="append",
        default=[],
        metavar="USER",
        help="only runs acting as this user may use it (repeat for several; default: every user)",
    )
    _ownership(p, "the connection (whose runs may use it)")
    p.set_defaults(func=cmd_connection_create)
    p = c.add_parser("list", help="list connections")
    p.add_argument("--json", action="store_true")
    _project_filter(p, "connections")
    p.set_defaults(func=cmd_connection_list)
    p = c.add_parser("show", help="show a connection (never its secret)")
    p.add_argument("connection_id")
    p.set_defaults(func=cmd_connection_show)
    p = c.add_parser("test", help="open the connection from a worker and try it")
    p.add_argument("connection_id")
    p.set_defaults(func=cmd_connection_test)
    p = c.add_parser("rm", help="delete a connection")
    p.add_argument("connection_id")
    p.set_defaults(func=cmd_connection_rm)

    w = sub.add_parser("workspace", help="workspace files, read-only to scenarios").add_subparsers(
        dest="workspace_command", required=True
    )
    p = w.add_parser("upload", help="upload a file")
    p.add_argument("file")
    p.add_argument("--as", dest="as_path", help="workspace path (default: the file's name)")
    p.add_argument("--overwrite", action="store_true")
    _ownership(p, "the file")
    p.set_defaults(func=cmd_workspace_upload)
    p = w.add_parser("list", help="list files")
    p.add_argument("prefix", nargs="?", default="")
    p.add_argument("--json", action="store_true")
    _project_filter(p, "files")
    p.set_defaults(func=cmd_workspace_list)
    p = w.add_parser("download", help="download a file")
    p.add_argument("path")
    p.add_argument("-o", "--output", help="local file ('-' for stdout; default: the file's name)")
    p.set_defaults(func=cmd_workspace_download)
    p = w.add_parser("rm", help="delete a file")
    p.add_argument("path")
    p.set_defaults(func=cmd_workspace_rm)
