"""``seedbed``: one grammar, ``seedbed NOUN VERB [ARGS] [OPTIONS]``.

The nouns are ``run``, ``scenario``, ``template``, ``connection``, ``workspace``, ``project``,
``user``, ``member``, ``key``, ``image``, ``deploy``; the verbs are the same everywhere (``list``,
``show``, ``create``, ``delete``, then each noun's own). A few commands stand alone: ``server``,
``login``, ``logout``, ``whoami``, ``apply``, ``pull``, ``mcp``, ``completion``. Global options are
accepted anywhere (``_context``); every command takes ``-o table|json|yaml`` (``_output``); exit
codes are a documented table (``_exits``).

Each noun's commands live in their own module, imported only when that noun is used, so
``seedbed --version`` or ``seedbed run list`` does not load what ``seedbed deploy`` needs.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import click

from seedbed.cli._context import (
    ENV_ADDRESS,
    ENV_API_KEY,
    CliError,
    Globals,
    SeedbedGroup,
    global_options,
    state,
)
from seedbed.cli._exits import ExitCode, for_status
from seedbed.cli._output import printable
from seedbed.cli._profiles import DEFAULT_PROFILE, ENV_PROFILE, Profile, ProfileError, ProfileFile
from seedbed.cli._profiles import locked as profile_lock
from seedbed.client import ClientError

# name → "module:attribute" of the command, imported when the command is used.
_LAZY = {
    "run": "seedbed.cli._runs:run",
    "scenario": "seedbed.cli._scenarios:scenario",
    "template": "seedbed.cli._catalog:template",
    "connection": "seedbed.cli._catalog:connection",
    "workspace": "seedbed.cli._catalog:workspace",
    "project": "seedbed.cli._access:project",
    "user": "seedbed.cli._access:user",
    "member": "seedbed.cli._access:member",
    "key": "seedbed.cli._access:key",
    "whoami": "seedbed.cli._access:whoami",
    "apply": "seedbed.cli._apply:apply",
    "pull": "seedbed.cli._apply:pull",
    "server": "seedbed.cli._server:server",
    "image": "seedbed.cli._deploy:image",
    "deploy": "seedbed.cli._deploy:deploy",
    "mcp": "seedbed.cli._mcp:mcp",
}
# Old spellings, kept hidden for one release; each says its new name when used.
_ALIASES = {"runs": "run list", "logs": "run logs", "abort": "run abort"}


class _Root(SeedbedGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, _, attribute = _LAZY[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


def _package_version() -> str:
    try:
        return version("seedbed")
    except PackageNotFoundError:
        return "unknown"


@click.group(
    cls=_Root,
    aliases=_ALIASES,
    epilog="Exit codes: 0 success, 1 FAILED, 2 usage, 3 ABORTED, 4 WARNING, 5 not found, "
    "6 permission denied, 7 coordinator unreachable, 8 refused, 9 coordinator error, 130 "
    "interrupted. `seedbed COMMAND --help` shows a command's options and examples.",
)
@click.version_option(
    _package_version(), "--version", "-V", prog_name="seedbed", message="%(prog)s %(version)s"
)
@global_options(hidden=False)
def cli() -> None:
    """Run test-data seeding scenarios: submit and follow runs, manage scenarios, templates,
    connections and access, and run the coordinator.

    \b
    Examples:
      seedbed login --address https://seedbed.example:50051
      seedbed run submit examples/shop/classic.py -p customers=100
      seedbed run list --scenario shop -o json
      seedbed run logs RUN --follow
      seedbed scenario fire nightly --wait
    """


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script of SHELL (bash, zsh or fish) for `seedbed`: commands, options
    and choices complete at a TAB.

    \b
    Examples:
      eval "$(seedbed completion bash)"         # in ~/.bashrc
      seedbed completion zsh > "${fpath[1]}/_seedbed"
      seedbed completion fish > ~/.config/fish/completions/seedbed.fish
    """
    from click.shell_completion import get_completion_class

    found = get_completion_class(shell)
    if found is None:  # click knows the three shells offered
        raise CliError(f"no completion for {shell}")
    click.echo(found(cli, {}, "seedbed", "_SEEDBED_COMPLETE").source())


@cli.command()
@click.option(
    "--api-key-stdin",
    is_flag=True,
    help="read the API key from standard input (for scripts), instead of --api-key or a prompt",
)
@click.option("--default/--no-default", "make_current", default=True, help="make it the current profile")
def login(api_key_stdin: bool, make_current: bool) -> int:
    """Check an address and API key against the coordinator and keep them in a profile.

    The profile (--profile, default "default") gets the address, the key and the CA file given
    with the global options, in a file only you can read (SEEDBED_CONFIG_FILE, default
    ~/.config/seedbed/profiles.yaml). Later commands use it unless an option or variable says
    otherwise. Without --api-key, the key is asked for without echo.

    \b
    Examples:
      seedbed login --address https://seedbed.example:50051 --tls-ca-file ca.pem
      seedbed login --profile staging --address 10.0.0.5:50051 --api-key-stdin < key.txt
    """
    globals_ = state()
    name = globals_.profile or os.environ.get(ENV_PROFILE, "") or DEFAULT_PROFILE
    key = globals_.api_key or ""
    if api_key_stdin:
        key = sys.stdin.readline().strip()
    elif not key:
        key = os.environ.get(ENV_API_KEY, "") or click.prompt("API key", hide_input=True)
    if not key:
        raise CliError("no API key given: pass --api-key, --api-key-stdin, or type it at the prompt")
    with profile_lock():
        try:
            profiles = ProfileFile.load()
        except ProfileError as exc:
            raise CliError(str(exc)) from None
        previous = profiles.profiles.get(name, Profile())
        globals_.address = globals_.address or os.environ.get(ENV_ADDRESS, "") or previous.address
        if not globals_.address:
            raise CliError("no address given: pass --address HOST:PORT (https://HOST:PORT for TLS)")
        # Check with exactly what will be saved (--tls made part of the address), whatever the
        # current profile says: the profile being made is not in the file yet.
        ca_file = globals_.tls_ca_file or previous.tls_ca_file
        globals_.api_key, globals_.profile = key, name
        globals_.use_profile(name, Profile(address=globals_.address, api_key=key, tls_ca_file=ca_file))
        globals_.address = globals_.resolved_address()
        profile = Profile(address=globals_.address, api_key=key, tls_ca_file=ca_file)
        globals_.use_profile(name, profile)
        user = globals_.client().whoami().user.id
        profiles.profiles[name] = profile
        if make_current or not profiles.current:
            profiles.current = name
        where = profiles.save()
    click.echo(printable(f"signed in to {globals_.address} as {user}; profile {name!r} saved in {where}"))
    return 0


@cli.command()
def logout() -> int:
    """Forget a profile's API key and address (--profile, default: the current one).

    \b
    Examples:
      seedbed logout
      seedbed logout --profile staging
    """
    with profile_lock():
        try:
            profiles = ProfileFile.load()
            name, found = profiles.select(state().profile)
        except ProfileError as exc:
            raise CliError(str(exc)) from None
        if found is None:
            raise CliError("no profile to log out of: none is current; name one with --profile")
        del profiles.profiles[name]
        if profiles.current == name:
            profiles.current = ""
        where = profiles.save()
    click.echo(f"profile {name!r} removed from {where}")
    return 0


def _report(exc: ClientError, globals_: Globals) -> int:
    """Say why the coordinator refused a call, with what to do; the exit code for its kind."""
    code = for_status(exc.code)
    # The coordinator's words may carry a script's or a tenant's text: nothing steers the terminal.
    text = "seedbed: " + "\n".join(printable(line) for line in str(exc).splitlines())
    if exc.code.name == "UNAUTHENTICATED":
        with contextlib.suppress(CliError):  # a broken profiles file: the refusal says enough
            text += "\n" + globals_.missing_key_hint()
    elif code == ExitCode.UNREACHABLE and "TLS" not in exc.details:
        text += "\n  is the coordinator still running? (`seedbed server` starts one)"
    if exc.retry_after_seconds is not None:
        text += f"\n  the coordinator asks to retry in {exc.retry_after_seconds} s"
    click.echo(text, err=True)
    return int(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; answer its exit code (see ``_exits``)."""
    globals_ = Globals()
    try:
        result = cli.main(
            args=None if argv is None else list(argv),
            prog_name="seedbed",
            complete_var="_SEEDBED_COMPLETE",
            standalone_mode=False,
            obj=globals_,
        )
        return int(result or 0)
    except CliError as exc:
        exc.show()
        return int(exc.kind)
    except click.ClickException as exc:  # usage errors: click's message, with the command's usage
        exc.show()
        return int(ExitCode.USAGE)
    except ClientError as exc:
        return _report(exc, globals_)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("", err=True)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`seedbed run logs RUN -o json | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
