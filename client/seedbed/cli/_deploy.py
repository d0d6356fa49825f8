"""``seedbed image build|save|load`` and ``seedbed deploy up|down|status|logs|exec``: the images a
cluster runs, and the compose cluster on one machine (deploy/compose/; its logic is in ``_compose``).

Exit codes beyond the table of ``_exits``: a build, save or load that fails is 1 (said in one line,
no traceback); a Docker engine that cannot be reached is 7, like an unreachable coordinator; compose
missing is 2. ``deploy exec`` exits with the command's own code, as ``docker exec`` does.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from seedbed.cli._compose import (
    IMAGE_VARIABLES,
    PORTS,
    URL_SAFE,
    ComposeMissingError,
    ComposeProject,
    Endpoints,
    docker_client,
    generated_secrets,
    read_env_file,
    wait_ready,
    write_env_file,
)
from seedbed.cli._context import CliError, Globals, SeedbedGroup, state
from seedbed.cli._exits import ExitCode
from seedbed.cli._output import Column, dump, printable, table

F = TypeVar("F", bound=Callable[..., Any])


def _say(message: str) -> None:
    click.echo(f"[seedbed] {message}", err=True)


def _answer(g: Globals, value: Any, lines: list[str]) -> None:
    """``value`` as -o json|yaml asks, else ``lines`` as they are (tags and paths, one per line,
    for ``$(…)`` in scripts)."""
    if g.output == "table":
        for line in lines:
            click.echo(line)
    else:
        click.echo(dump(value, g.output), nl=False)


def _refusing(extra: str, feature: str) -> Callable[[F], F]:
    """The command, after its extra's check, with a build, save or load that fails said in one line
    (exit 1), an engine that cannot be reached exit 7, a missing compose exit 2."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            from seedbed.cli._extras import require_extra

            require_extra(cast(Any, extra), feature=feature)
            import docker.errors

            from seedbed.worker._sandbox_errors import EngineUnavailableError, ImageBuildError
            from seedbed.worker.images import RequirementsError

            try:
                return command(*args, **kwargs)
            except (ImageBuildError, RequirementsError) as exc:
                raise CliError(str(exc), ExitCode.FAILED) from None
            except (EngineUnavailableError, docker.errors.DockerException) as exc:
                raise CliError(f"the Docker engine cannot be reached: {exc}", ExitCode.UNREACHABLE) from None
            except ComposeMissingError as exc:
                raise CliError(str(exc), ExitCode.USAGE) from None

        return cast(F, run)

    return decorate


def _docker_url_option(hidden: bool = False) -> Callable[[F], F]:
    return click.option(
        "--docker-url",
        metavar="URL",
        default=lambda: os.environ.get("SEEDBED_DOCKER_URL", ""),
        hidden=hidden,
        help="the Docker engine (SEEDBED_DOCKER_URL; default: the environment's, as docker finds it)",
    )


# -- image ------------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup)
def image() -> None:
    """Build, save and load Seedbed's images, offline: no registry is used, ever."""


@image.command()
@click.option("--all", "all_", is_flag=True, help="also the seedbed-coordinator and seedbed-worker images")
@click.option("--save", metavar="FILE", help="with --all: write the three images to FILE, for `docker load`")
@_docker_url_option()
@_refusing("worker", "seedbed image build")
def build(all_: bool, save: str | None, docker_url: str) -> int:
    """Build the sandbox image (--all: the server images too) and print their tags, one per line.

    The images are built from Debian packages and a wheelhouse downloaded on this machine; no
    registry is used, and a rebuild with nothing changed is a no-op (the tags are hashes of the
    inputs). With -o json|yaml: a list of the tags.

    \b
    Examples:
      seedbed image build
      seedbed image build --all
      seedbed image build --all --save seedbed.tar   # for machines that cannot build
    """
    from seedbed.worker.images import ensure_image

    if save and not all_:
        raise CliError("--save goes with --all (the sandbox image alone: seedbed image save FILE TAG)")
    client = docker_client(docker_url)
    if not all_:
        tag = ensure_image(client, log=_say)
        _answer(state(), [tag], [tag])
        return ExitCode.SUCCESS
    from seedbed.worker.deploy_images import ensure_server_images, save_images

    tags = ensure_server_images(client, log=_say)
    if save:
        target = save_images(client, tags.all(), Path(save))
        _say(f"saved {', '.join(tags.all())} to {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    _answer(state(), list(tags.all()), list(tags.all()))
    return ExitCode.SUCCESS


@image.command("save")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False))
@click.argument("tags", metavar="TAG...", nargs=-1)
@_docker_url_option()
@_refusing("worker", "seedbed image save")
def save_(file: str, tags: tuple[str, ...], docker_url: str) -> int:
    """Write images into one tarball FILE, layers stored once, for `docker load` (or `seedbed image
    load`) on machines that cannot build.

    TAG: the images to save (default: this release's coordinator, worker and sandbox images). An
    image not built yet is named, and nothing is written (exit 1). With -o json|yaml: an object
    {"file", "tags", "size_bytes"}.

    \b
    Examples:
      seedbed image save seedbed.tar
      seedbed image save sandbox.tar seedbed-sandbox:3f2a…
    """
    from seedbed.worker.deploy_images import save_images, server_images

    chosen = list(tags) or list(server_images().all())
    target = save_images(docker_client(docker_url), chosen, Path(file))
    size = target.stat().st_size
    _say(f"saved {', '.join(chosen)} to {target} ({size / 2**20:.0f} MiB)")
    _answer(state(), {"file": str(target), "tags": chosen, "size_bytes": size}, [])
    return ExitCode.SUCCESS


@image.command()
@click.argument("file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("--if-missing", is_flag=True, help="do nothing when the engine has every image in FILE")
@click.option(
    "--wait",
    type=float,
    default=0,
    metavar="SECONDS",
    help="wait this long for the engine to answer (a Docker daemon starting beside this one)",
)
@_docker_url_option()
@_refusing("worker", "seedbed image load")
def load(file: str, if_missing: bool, wait: float, docker_url: str) -> int:
    """Load the images of the tarball FILE (written by `seedbed image save` or `docker save`) into
    the engine and print their tags, one per line; a file that is no image tarball is refused by
    name (exit 1). With -o json|yaml: a list of the tags.

    \b
    Examples:
      seedbed image load seedbed.tar
      seedbed image load --if-missing --wait 120 /opt/seedbed/sandbox-image.tar
    """
    from seedbed.worker.deploy_images import load_images

    tags = load_images(
        lambda: docker_client(docker_url),
        Path(file),
        if_missing=if_missing,
        wait_seconds=wait,
        log=_say,
    )
    _answer(state(), list(tags), list(tags))
    return ExitCode.SUCCESS


# -- deploy -----------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup)
def deploy() -> None:
    """A Seedbed cluster on this machine with docker compose: PostgreSQL as the store, the
    coordinator, a Ray head and Ray worker nodes whose sandboxes run on this machine's Docker engine
    (deploy/compose/; see deploy/README.md)."""


def _project_options(f: F) -> F:
    f = _docker_url_option(hidden=True)(f)
    f = click.option(
        "--env-file",
        metavar="FILE",
        default=lambda: os.environ.get("SEEDBED_DEPLOY_ENV_FILE", ""),
        help="the env file with image tags, secrets and settings (SEEDBED_DEPLOY_ENV_FILE; default "
        "deploy/compose/.env of the source tree; every variable: deploy/compose/seedbed.env.example)",
    )(f)
    return click.option(
        "--project",
        metavar="NAME",
        default=lambda: os.environ.get("SEEDBED_DEPLOY_PROJECT", "seedbed"),
        help="compose project name: containers, network and volume are named after it "
        "(SEEDBED_DEPLOY_PROJECT; default seedbed)",
    )(f)


@contextlib.contextmanager
def _spinner(g: Globals, text: str) -> Iterator[Callable[[str], None]]:
    """On a terminal, a spinner whose text the body updates; elsewhere nothing is drawn."""
    if not g.err.is_terminal:
        yield lambda _text: None
        return
    with g.err.status(text) as status:
        yield lambda now: status.update(f"{text}: {printable(now)}")


@deploy.command()
@_project_options
@click.option(
    "--workers", type=click.IntRange(min=0), help="Ray worker nodes (SEEDBED_WORKER_NODES; default 2)"
)
@click.option(
    "--port", type=click.IntRange(1, 65535), help="the coordinator's port on 127.0.0.1 (default 50051)"
)
@click.option(
    "--wait",
    type=float,
    default=300,
    show_default=True,
    metavar="SECONDS",
    help="wait this long for the coordinator to answer and every worker node to join",
)
@click.option(
    "--no-build",
    is_flag=True,
    help="run the images the env file names as they are (loaded with `seedbed image load`)",
)
@_refusing("server", "seedbed deploy up")
def up(
    project: str,
    env_file: str,
    docker_url: str,
    workers: int | None,
    port: int | None,
    wait: float,
    no_build: bool,
) -> int:
    """Build what is missing and start the cluster, then wait until it is ready; idempotent:
    running it again changes only what changed.

    The env file gets the image tags (rewritten at every up) and, at first start, generated
    secrets (kept). Once ready it prints how to reach the coordinator; with -o json|yaml an object
    {"project", "env_file", "endpoints": {"grpc", "rest", "mcp", "metrics"}}. Exit 1 when compose
    fails or the cluster is not ready within --wait (it says what it still waited for).

    \b
    Examples:
      seedbed deploy up
      seedbed deploy up --workers 3 --port 7000
      seedbed deploy up --no-build --env-file /etc/seedbed/cluster.env
    """
    g = state()
    cluster = ComposeProject(project, env_file)
    env_path = cluster.env_file
    existing = read_env_file(env_path)
    updates: dict[str, str] = {"COMPOSE_PROJECT_NAME": project}
    if no_build:
        missing = [name for name in (*IMAGE_VARIABLES, "SEEDBED_STORE_IMAGE") if not existing.get(name)]
        if missing:
            raise CliError(
                f"--no-build runs the images the env file names, and {env_path} lacks {', '.join(missing)}"
            )
    else:
        from seedbed.worker.deploy_images import ensure_server_images, ensure_store_image

        client = docker_client(docker_url)
        tags = ensure_server_images(client, log=_say)
        updates.update(zip(IMAGE_VARIABLES, (tags.coordinator, tags.worker), strict=True))
        store_image = existing.get("SEEDBED_STORE_IMAGE", "")
        if not store_image or store_image.startswith("seedbed-postgres:"):
            updates["SEEDBED_STORE_IMAGE"] = ensure_store_image(client, log=_say)
    updates.update(generated_secrets(existing))
    password = existing.get("SEEDBED_STORE_PASSWORD", "")
    if password and not URL_SAFE.match(password):
        raise CliError(
            f"SEEDBED_STORE_PASSWORD in {env_path} holds characters a URL would need escaped: the store "
            "URL is made from it as it is; use letters, digits and . _ ~ - only"
        )
    for key, value in (("SEEDBED_WORKER_NODES", workers), ("SEEDBED_PORT", port)):
        if value is not None:
            updates[key] = str(value)
    write_env_file(env_path, updates)
    values = read_env_file(env_path)
    for name in ("SEEDBED_WORKER_NODES", *PORTS):
        if values.get(name) and not values[name].isdigit():
            raise CliError(f"{name}={values[name]!r} in {env_path} is not a number")
    if cluster.run(cluster.argv("up", "--detach", "--remove-orphans"), _say) != 0:
        return ExitCode.FAILED
    with _spinner(g, "waiting for the cluster") as progress:
        waited_for = wait_ready(values, wait, progress)
    if waited_for is not None:
        _say(f"not ready within {wait:g}s: {waited_for}")
        _say("see the containers' logs: seedbed deploy logs coordinator ray-worker")
        return ExitCode.FAILED
    endpoints = Endpoints.of(values)
    answer = {"project": project, "env_file": str(env_path), "endpoints": endpoints.to_json()}
    _answer(
        g,
        answer,
        [
            f"Seedbed is up at {endpoints.grpc}. To use it from this machine:",
            f"  export SEEDBED_ADDRESS={endpoints.grpc}",
            f"  export SEEDBED_API_KEY=$(sed -n 's/^SEEDBED_ADMIN_API_KEY=//p' {env_path})",
            "It answers at (the REST API and MCP take the same key as a Bearer token):",
            *endpoints.lines(),
        ],
    )
    return ExitCode.SUCCESS


@deploy.command()
@_project_options
@click.option("--keep-data", is_flag=True, help="keep the store's volume (its runs, scenarios, users)")
@_refusing("server", "seedbed deploy down")
def down(project: str, env_file: str, docker_url: str, keep_data: bool) -> int:
    """Stop and remove the cluster's containers, its network and (unless --keep-data) the store's
    volume. Nothing is printed on stdout; exit 1 when compose fails.

    \b
    Examples:
      seedbed deploy down
      seedbed deploy down --keep-data --project staging
    """
    cluster = ComposeProject(project, env_file)
    command = ["down", "--remove-orphans", "--timeout", "20"]
    if not keep_data:
        command.append("--volumes")
    code = cluster.run(cluster.argv(*command), _say, placeholders=True)
    return ExitCode.SUCCESS if code == 0 else ExitCode.FAILED


@deploy.command()
@_project_options
@_refusing("server", "seedbed deploy status")
def status(project: str, env_file: str, docker_url: str) -> int:
    """The cluster's containers and their state, and where its coordinator answers on this machine
    (the ports the env file names; unknown without it).

    With -o json|yaml: an object {"project", "env_file", "containers": [{"service", "name",
    "state", "status"}], "endpoints": {"grpc", "rest", "mcp", "metrics"} or null}.

    \b
    Examples:
      seedbed deploy status
      seedbed deploy status --project staging -o json
    """
    g = state()
    cluster = ComposeProject(project, env_file)
    containers = cluster.containers(docker_url)
    env_path = cluster.env_file
    endpoints = Endpoints.of(read_env_file(env_path)) if env_path.is_file() else None
    answer = {
        "project": project,
        "env_file": str(env_path),
        "containers": containers,
        "endpoints": endpoints.to_json() if endpoints else None,
    }
    if g.output != "table":
        click.echo(dump(answer, g.output), nl=False)
        return ExitCode.SUCCESS
    if containers:
        keys = ("service", "name", "state", "status")
        columns = [Column(key.upper(), operator.itemgetter(key)) for key in keys]
        g.out.print(table(containers, columns))
    else:
        click.echo(f"no container of compose project {project!r}")
    if endpoints is not None:
        click.echo(f"The coordinator's endpoints on this machine (ports from {env_path}):")
        click.echo("\n".join(endpoints.lines()))
    return ExitCode.SUCCESS


@deploy.command()
@_project_options
@click.argument("services", metavar="SERVICE...", nargs=-1)
@click.option("--follow", "-f", is_flag=True, help="keep following until Ctrl-C")
@click.option(
    "--tail", type=click.IntRange(min=0), default=200, show_default=True, help="lines per container"
)
@_refusing("server", "seedbed deploy logs")
def logs(
    project: str, env_file: str, docker_url: str, services: tuple[str, ...], follow: bool, tail: int
) -> int:
    """The containers' logs, as compose prints them (-o does not change them).

    SERVICE: coordinator, ray-head, ray-worker or store; default: all of them.

    \b
    Examples:
      seedbed deploy logs coordinator ray-worker
      seedbed deploy logs coordinator -f --tail 50
    """
    cluster = ComposeProject(project, env_file)
    command = ["logs", "--no-color", "--tail", str(tail)]
    if follow:
        command.append("--follow")
    code = cluster.run(cluster.argv(*command, *services), _say, placeholders=True)
    return ExitCode.SUCCESS if code == 0 else ExitCode.FAILED


@deploy.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_project_options
@click.argument("service", metavar="SERVICE")
@click.argument("command", metavar="COMMAND...", nargs=-1, required=True, type=click.UNPROCESSED)
@_refusing("server", "seedbed deploy exec")
def exec_(project: str, env_file: str, docker_url: str, service: str, command: tuple[str, ...]) -> int:
    """Run COMMAND (with its arguments, taken as they are) in the container of SERVICE
    (coordinator, ray-head, ray-worker or store); its output as it is, and its exit code.

    \b
    Examples:
      seedbed deploy exec store psql -U seedbed -c 'CREATE DATABASE shop'
      seedbed deploy exec store psql -U seedbed -d shop < examples/shop/schema.sql
      seedbed deploy exec coordinator seedbed --version
    """
    cluster = ComposeProject(project, env_file)
    return cluster.run(cluster.argv("exec", "-T", service, *command), _say)
