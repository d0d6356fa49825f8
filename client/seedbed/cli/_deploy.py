"""``seedbed image build|save|load`` and ``seedbed deploy up|down|status``: the images a cluster runs
and the compose cluster on one machine (deploy/compose/).

Where the cluster answers is read from its env file alone (`Endpoints`): the compose file publishes
each of the coordinator's ports on 127.0.0.1 at the port the file names, or at the compose file's
default. Asking Docker for the published ports instead was rejected: `status` of a stopped cluster
would then have nothing to show, and the env file is already the one source of the cluster's
settings.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
# The variables `seedbed deploy up` writes into the env file; every other line is the user's.
_IMAGE_VARIABLES = ("SEEDBED_COORDINATOR_IMAGE", "SEEDBED_WORKER_IMAGE")
_SECRET_VARIABLES = ("SEEDBED_STORE_PASSWORD", "SEEDBED_SECRET_KEY", "SEEDBED_ADMIN_API_KEY")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
# Characters a store password may hold: the compose file puts it into a URL as it is.
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")
# Stand-ins for the variables the compose file requires, for commands that need no real value
# (`down` and `ps` of a cluster whose env file is gone).
_PLACEHOLDERS = {
    name: "unset"
    for name in (
        "SEEDBED_COORDINATOR_IMAGE",
        "SEEDBED_WORKER_IMAGE",
        "SEEDBED_STORE_IMAGE",
        "SEEDBED_STORE_PASSWORD",
        "SEEDBED_SECRET_KEY",
        "SEEDBED_ADMIN_API_KEY",
    )
}


# The coordinator's ports on 127.0.0.1: the env file's variable and the compose file's default.
_PORTS = {"SEEDBED_PORT": 50051, "SEEDBED_METRICS_PORT": 59464, "SEEDBED_REST_PORT": 58080}


@dataclass(frozen=True)
class Endpoints:
    """Where a compose cluster's coordinator answers on this machine: the gRPC API (host:port), the
    REST API's base URL (``/v1``), the MCP endpoint and the Prometheus metrics."""

    grpc: str
    rest: str
    mcp: str
    metrics: str

    @classmethod
    def of(cls, values: Mapping[str, str]) -> Endpoints:
        """The endpoints for the env file's `values` (the compose file's default for a port unset)."""
        port = {name: values.get(name) or str(default) for name, default in _PORTS.items()}
        http = f"http://127.0.0.1:{port['SEEDBED_REST_PORT']}"
        return cls(
            grpc=f"127.0.0.1:{port['SEEDBED_PORT']}",
            rest=f"{http}/v1",
            mcp=f"{http}/mcp",
            metrics=f"http://127.0.0.1:{port['SEEDBED_METRICS_PORT']}/metrics",
        )

    def lines(self) -> list[str]:
        return [
            f"  gRPC API   {self.grpc}",
            f"  REST API   {self.rest}  (OpenAPI: {self.rest}/openapi.json)",
            f"  MCP        {self.mcp}",
            f"  metrics    {self.metrics}",
        ]


def _say(message: str) -> None:
    print(f"[seedbed] {message}", file=sys.stderr, flush=True)


def _docker(url: str = "") -> Any:
    import docker

    return docker.DockerClient(base_url=url) if url else docker.from_env()


def cmd_image_build(args: argparse.Namespace) -> int:
    from seedbed.worker.images import ensure_image

    if args.save and not args.all:
        print(
            "seedbed: --save goes with --all (the sandbox image alone: seedbed image save FILE TAG)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    client = _docker(args.docker_url)
    if not args.all:
        print(ensure_image(client, log=_say))
        return 0
    from seedbed.worker.deploy_images import ensure_server_images, save_images

    tags = ensure_server_images(client, log=_say)
    if args.save:
        target = save_images(client, tags.all(), Path(args.save))
        _say(f"saved {', '.join(tags.all())} to {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    for tag in tags.all():
        print(tag)
    return 0


def cmd_image_save(args: argparse.Namespace) -> int:
    from seedbed.worker.deploy_images import save_images, server_images

    tags = args.tags or server_images().all()
    target = save_images(_docker(args.docker_url), tags, Path(args.file))
    _say(f"saved {', '.join(tags)} to {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    return 0


def cmd_image_load(args: argparse.Namespace) -> int:
    from seedbed.worker.deploy_images import load_images

    tags = load_images(
        lambda: _docker(args.docker_url),
        Path(args.file),
        if_missing=args.if_missing,
        wait_seconds=args.wait,
        log=_say,
    )
    for tag in tags:
        print(tag)
    return 0


def _compose_dir() -> Path:
    from seedbed.worker.deploy_images import source_root

    return source_root() / "deploy" / "compose"


def compose_command() -> list[str]:
    """This machine's compose: the `docker compose` plugin when it has one (compose 1.29 fails to
    recreate containers on Docker Engine 25 and later), else `docker-compose` (Debian 12's 1.29)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit(
        "seedbed: neither docker-compose nor the docker compose plugin is installed "
        "(Debian: apt-get install docker-compose)"
    )


def read_env_file(path: Path) -> dict[str, str]:
    """The env file's variables, read as compose reads them (python-dotenv: quotes, `export `,
    comments after a space and `#`; the last of two lines with one name wins)."""
    from dotenv import dotenv_values

    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def write_env_file(path: Path, updates: dict[str, str]) -> None:
    """Set `updates` in the env file, keeping every other line (comments, the user's settings); a
    name written on several lines is set on each. Mode 0600: the file holds the cluster's secrets."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    pending = dict(updates)
    out = []
    for line in lines:
        match = _LINE.match(line)
        if match and match.group(1) in updates and not line.lstrip().startswith("#"):
            out.append(f"{match.group(1)}={updates[match.group(1)]}")
            pending.pop(match.group(1), None)
        else:
            out.append(line)
    if pending and not lines:
        out.append("# Written by `seedbed deploy up`: image tags (rewritten at every up) and the secrets")
        out.append("# it generated at first start (kept: stored secrets are sealed with SEEDBED_SECRET_KEY).")
    out += [f"{key}={value}" for key, value in pending.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600, a new file
            handle.write("\n".join(out) + "\n")
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _generated_secrets(existing: dict[str, str]) -> dict[str, str]:
    from cryptography.fernet import Fernet

    made = {
        "SEEDBED_STORE_PASSWORD": secrets.token_urlsafe(24),
        "SEEDBED_SECRET_KEY": Fernet.generate_key().decode(),
        "SEEDBED_ADMIN_API_KEY": "sb_" + secrets.token_urlsafe(32),
    }
    return {key: value for key, value in made.items() if not existing.get(key)}


def _env_file(args: argparse.Namespace) -> Path:
    return Path(args.env_file).resolve() if args.env_file else _compose_dir() / ".env"


def _compose(args: argparse.Namespace, *command: str) -> list[str]:
    env_file = _env_file(args)
    argv = [*compose_command(), "--project-name", args.project, "--project-directory", str(_compose_dir())]
    if env_file.is_file():
        argv += ["--env-file", str(env_file)]
    return [*argv, "-f", str(_compose_dir() / "docker-compose.yml"), *command]


def _run(argv: Sequence[str], *, placeholders: bool = False) -> int:
    """Run compose with the env file as the only source of Seedbed's settings: compose lets the
    shell's variables win over the file, and a SEEDBED_* variable exported for a client (an API key,
    an address) would silently replace the cluster's own. `placeholders`: stand-ins for required
    variables the file lacks (commands that only find containers by project)."""
    _say(" ".join(argv))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEEDBED_")}
    if placeholders:
        env.update(_PLACEHOLDERS)
    return subprocess.run(list(argv), check=False, env=env).returncode


def cmd_deploy_up(args: argparse.Namespace) -> int:
    from seedbed.worker.deploy_images import ensure_server_images, ensure_store_image

    env_file = _env_file(args)
    existing = read_env_file(env_file)
    updates: dict[str, str] = {"COMPOSE_PROJECT_NAME": args.project}
    if args.no_build:
        missing = [name for name in (*_IMAGE_VARIABLES, "SEEDBED_STORE_IMAGE") if not existing.get(name)]
        if missing:
            _say(f"--no-build runs the images the env file names, and {env_file} lacks {', '.join(missing)}")
            return EXIT_USAGE
    else:
        client = _docker(args.docker_url)
        tags = ensure_server_images(client, log=_say)
        updates.update(zip(_IMAGE_VARIABLES, (tags.coordinator, tags.worker), strict=True))
        store_image = existing.get("SEEDBED_STORE_IMAGE", "")
        if not store_image or store_image.startswith("seedbed-postgres:"):
            updates["SEEDBED_STORE_IMAGE"] = ensure_store_image(client, log=_say)
    updates.update(_generated_secrets(existing))
    password = existing.get("SEEDBED_STORE_PASSWORD", "")
    if password and not _URL_SAFE.match(password):
        _say(
            f"SEEDBED_STORE_PASSWORD in {env_file} holds characters a URL would need escaped: the store "
            "URL is made from it as it is; use letters, digits and . _ ~ - only"
        )
        return EXIT_USAGE
    for key, value in (("SEEDBED_WORKER_NODES", args.workers), ("SEEDBED_PORT", args.port)):
        if value is not None:
            updates[key] = str(value)
    write_env_file(env_file, updates)
    values = read_env_file(env_file)
    for name in ("SEEDBED_WORKER_NODES", *_PORTS):
        if values.get(name) and not values[name].isdigit():
            _say(f"{name}={values[name]!r} in {env_file} is not a number")
            return EXIT_USAGE
    code = _run(_compose(args, "up", "--detach", "--remove-orphans"))
    if code != 0:
        return code
    ready = _wait_ready(values, args.wait)
    if ready == 0:
        endpoints = Endpoints.of(values)
        print(f"Seedbed is up at {endpoints.grpc}. To use it from this machine:")
        print(f"  export SEEDBED_ADDRESS={endpoints.grpc}")
        print(f"  export SEEDBED_API_KEY=$(sed -n 's/^SEEDBED_ADMIN_API_KEY=//p' {env_file})")
        print("It answers at (the REST API and MCP take the same key as a Bearer token):")
        print("\n".join(endpoints.lines()))
    return ready


def worker_nodes(metrics_url: str) -> int | None:
    """The coordinator's count of worker nodes (its seedbed_ray_worker_nodes gauge); None when it
    does not answer (yet)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(metrics_url, timeout=5).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "seedbed_ray_worker_nodes" and family.samples:
            return int(family.samples[0].value)
    return None


def rest_problem(rest_url: str) -> str | None:
    """Why the REST API at `rest_url` (its ``/v1`` base) is not healthy, or None when
    ``GET /v1/healthz`` answers ``{"status": "ok"}`` (it needs no key)."""
    import httpx

    try:
        answer = httpx.get(f"{rest_url}/healthz", timeout=5)
    except httpx.HTTPError as exc:
        return f"the REST API at {rest_url} does not answer: {str(exc) or type(exc).__name__}"
    try:
        body = answer.json()
    except ValueError:  # not JSON: something else answers on that port
        body = None
    if answer.status_code != 200 or body != {"status": "ok"}:
        said = f"HTTP {answer.status_code} {answer.text[:200]!r}"
        return f"the REST API at {rest_url} is not healthy: GET {rest_url}/healthz answered {said}"
    return None


def _wait_ready(values: dict[str, str], seconds: float) -> int:
    """Wait until the coordinator answers (gRPC with the admin key, REST health) and every worker
    node has joined."""
    from seedbed.client import Client, ClientError

    endpoints = Endpoints.of(values)
    wanted = int(values.get("SEEDBED_WORKER_NODES") or 2)
    give_up = time.monotonic() + seconds
    last = "no answer yet"
    while True:
        try:
            with Client(endpoints.grpc, api_key=values.get("SEEDBED_ADMIN_API_KEY")) as client:
                client.list_runs("", 1)
            joined = worker_nodes(endpoints.metrics)
            problem = rest_problem(endpoints.rest)
            if problem is not None:
                last = problem
            elif joined is not None and joined >= wanted:
                return 0
            else:
                last = f"{joined or 0} of {wanted} worker node(s) have joined the Ray cluster"
        except ClientError as exc:
            last = f"the coordinator at {endpoints.grpc} does not answer: {exc}"
        if time.monotonic() >= give_up:
            _say(f"not ready within {seconds:g}s: {last}")
            _say("see the containers' logs: seedbed deploy logs coordinator ray-worker")
            return 1
        time.sleep(1)


def cmd_deploy_down(args: argparse.Namespace) -> int:
    command = ["down", "--remove-orphans", "--timeout", "20"]
    if not args.keep_data:
        command.append("--volumes")
    return _run(_compose(args, *command), placeholders=True)


def cmd_deploy_status(args: argparse.Namespace) -> int:
    code = _run(_compose(args, "ps"), placeholders=True)
    env_file = _env_file(args)
    if env_file.is_file():  # without it, the ports the cluster was started with are unknown
        print(f"The coordinator's endpoints on this machine (ports from {env_file}):")
        print("\n".join(Endpoints.of(read_env_file(env_file)).lines()))
    return code


def cmd_deploy_logs(args: argparse.Namespace) -> int:
    command = ["logs", "--no-color", "--tail", str(args.tail)]
    if args.follow:
        command.append("--follow")
    return _run(_compose(args, *command, *args.services), placeholders=True)


def cmd_deploy_exec(args: argparse.Namespace) -> int:
    return _run(_compose(args, "exec", "-T", args.service, *args.command))


def _refusing(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The command, with a build, save or load that fails said in one line (exit 1; 2 when the
    Docker engine cannot be reached) instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        import docker.errors

        from seedbed.worker._sandbox_errors import EngineUnavailableError, ImageBuildError
        from seedbed.worker.images import RequirementsError

        try:
            return command(args)
        except (ImageBuildError, RequirementsError) as exc:
            print(f"seedbed: {exc}", file=sys.stderr)
            return 1
        except (EngineUnavailableError, docker.errors.DockerException) as exc:
            print(f"seedbed: the Docker engine cannot be reached: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def register(sub: Any) -> None:
    docker_url = os.environ.get("SEEDBED_DOCKER_URL", "")
    p = sub.add_parser("image", help="build, save and load Seedbed's images (offline, no registry)")
    image_sub = p.add_subparsers(dest="image_command", required=True)
    b = image_sub.add_parser(
        "build",
        help="build the sandbox image offline (a no-op when up to date); --all: the coordinator and "
        "worker images too",
        description="Build Seedbed's images from Debian packages and a wheelhouse downloaded on this "
        "machine; no registry is used and a rebuild with nothing changed is a no-op (tags are hashes "
        "of the inputs). Prints the tags.",
    )
    b.add_argument("--all", action="store_true", help="also seedbed-coordinator and seedbed-worker")
    b.add_argument(
        "--save", metavar="FILE", help="with --all: write the three images to FILE for docker load"
    )
    b.add_argument("--docker-url", default=docker_url, help="Docker engine (SEEDBED_DOCKER_URL)")
    b.set_defaults(func=_refusing(cmd_image_build))
    s = image_sub.add_parser(
        "save",
        help="write images to one tarball for `docker load` on machines that cannot build",
    )
    s.add_argument("file", metavar="FILE", help="the tarball to write")
    s.add_argument("tags", nargs="*", metavar="TAG", help="default: this release's three images")
    s.add_argument("--docker-url", default=docker_url, help="Docker engine (SEEDBED_DOCKER_URL)")
    s.set_defaults(func=_refusing(cmd_image_save))
    ld = image_sub.add_parser("load", help="load a tarball of images (docker save) into the engine")
    ld.add_argument("file", metavar="FILE", help="the tarball")
    ld.add_argument(
        "--if-missing", action="store_true", help="do nothing when the engine has every image in it"
    )
    ld.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait this long for the engine to answer (a Docker daemon starting beside this one)",
    )
    ld.add_argument("--docker-url", default=docker_url, help="Docker engine (SEEDBED_DOCKER_URL)")
    ld.set_defaults(func=_refusing(cmd_image_load))

    p = sub.add_parser(
        "deploy",
        help="a Seedbed cluster on this machine with docker compose (deploy/compose/)",
        description="Run Seedbed as a cluster on this machine: PostgreSQL as the store, the "
        "coordinator, a Ray head and Ray worker nodes whose sandboxes run on this machine's Docker "
        "engine. See deploy/README.md.",
    )
    deploy_sub = p.add_subparsers(dest="deploy_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--project",
            default=os.environ.get("SEEDBED_DEPLOY_PROJECT", "seedbed"),
            help="compose project name: containers, network and volume are named after it "
            "(SEEDBED_DEPLOY_PROJECT; default %(default)s)",
        )
        q.add_argument(
            "--env-file",
            default=os.environ.get("SEEDBED_DEPLOY_ENV_FILE", ""),
            help="the env file with image tags, secrets and settings (SEEDBED_DEPLOY_ENV_FILE; default "
            "deploy/compose/.env of the source tree; every variable: deploy/compose/seedbed.env.example)",
        )
        q.add_argument("--docker-url", default=docker_url, help=argparse.SUPPRESS)

    up = deploy_sub.add_parser(
        "up",
        help="build what is missing and start the cluster (idempotent: running it again changes "
        "only what changed)",
    )
    common(up)
    up.add_argument("--workers", type=int, help="Ray worker nodes (SEEDBED_WORKER_NODES; default 2)")
    up.add_argument("--port", type=int, help="the coordinator's port on 127.0.0.1 (default 50051)")
    up.add_argument(
        "--wait", type=float, default=300, metavar="SECONDS", help="wait for the coordinator (default 300)"
    )
    up.add_argument(
        "--no-build",
        action="store_true",
        help="run the images the env file names as they are (loaded with `seedbed image load`)",
    )
    up.set_defaults(func=_refusing(cmd_deploy_up))
    down = deploy_sub.add_parser("down", help="stop and remove the cluster's containers, network and volume")
    common(down)
    down.add_argument("--keep-data", action="store_true", help="keep the store's volume")
    down.set_defaults(func=_refusing(cmd_deploy_down))
    st = deploy_sub.add_parser(
        "status", help="the cluster's containers and their state, and where the coordinator answers"
    )
    common(st)
    st.set_defaults(func=_refusing(cmd_deploy_status))
    lg = deploy_sub.add_parser("logs", help="the containers' logs")
    common(lg)
    lg.add_argument("services", nargs="*", help="coordinator, ray-head, ray-worker, store (default: all)")
    lg.add_argument("--follow", "-f", action="store_true", help="keep following")
    lg.add_argument("--tail", type=int, default=200, help="lines per container (default 200)")
    lg.set_defaults(func=_refusing(cmd_deploy_logs))
    ex = deploy_sub.add_parser(
        "exec",
        help="run a command in a service's container, e.g. `seedbed deploy exec store psql -U seedbed`",
    )
    common(ex)
    ex.add_argument("service", help="coordinator, ray-head, ray-worker or store")
    ex.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    ex.set_defaults(func=_refusing(cmd_deploy_exec))
