"""The command line's frame: global options accepted anywhere, the client they make, the consoles,
and groups that suggest what was meant and keep old spellings as hidden aliases.

Global options (``--address``, ``--api-key``, ``--profile``, the TLS files, ``-o``, ``--no-color``)
are declared on the root group and, hidden from their help, on every command, so ``seedbed run list
--address X`` and ``seedbed --address X run list`` are the same; the last one given wins. Their
values gather in one ``Globals`` object, the root context's ``obj``, which commands read with
``state()``.

Rejected: pre-parsing ``sys.argv`` to move global options to the front (it cannot tell an option's
value from a command's argument, and breaks completion); typer (its annotations add little over
click for a CLI whose commands are plain functions, and it brings its own help renderer).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, cast

import click
from rich.console import Console

from seedbed.cli._exits import ExitCode
from seedbed.cli._output import FORMATS, Format, consoles, dump, printable
from seedbed.cli._profiles import Profile, ProfileError, ProfileFile
from seedbed.client import Client

DEFAULT_ADDRESS = "127.0.0.1:50051"
ENV_ADDRESS = "SEEDBED_ADDRESS"
ENV_API_KEY = "SEEDBED_API_KEY"
# An unreachable coordinator is said within this many seconds, with what to check.
CONNECT_SECONDS = 2.0

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A command cannot go on: its message says what to do; ``exit_code`` says what kind."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.kind = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"seedbed: {self.format_message()}", err=True)


@dataclass
class Globals:
    """The global options as given (None: not given), and what is made from them once."""

    address: str | None = None
    api_key: str | None = None
    profile: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    tls_client_cert_file: str | None = None
    tls_client_key_file: str | None = None
    output: Format = "table"
    no_color: bool = False
    _made: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def _profile(self) -> tuple[str, Profile | None]:
        try:
            return ProfileFile.load().select(self.profile)
        except ProfileError as exc:
            raise CliError(str(exc)) from None

    def use_profile(self, name: str, profile: Profile) -> None:
        """Use ``profile`` (not saved yet: ``seedbed login`` checks it before saving)."""
        self.__dict__["_profile"] = (name, profile)
        self._made.clear()

    @property
    def profile_name(self) -> str:
        return self._profile[0]

    def _explicit_address(self) -> str:
        return self.address or os.environ.get(ENV_ADDRESS, "")

    def _trusted_profile(self) -> Profile | None:
        """The profile whose key and CA file may be used: only for the profile's own address, so
        a key never goes to another coordinator that --address or SEEDBED_ADDRESS names."""
        _, profile = self._profile
        if profile is None:
            return None
        explicit = self._explicit_address()
        if explicit and explicit.removeprefix("https://") != profile.address.removeprefix("https://"):
            return None
        return profile

    def resolved_address(self) -> str:
        """--address, else SEEDBED_ADDRESS, else the profile's, else 127.0.0.1:50051; ``--tls``
        makes a bare host:port https://."""
        _, profile = self._profile
        address = (self._explicit_address() or (profile.address if profile else "")) or DEFAULT_ADDRESS
        if self.tls and not address.startswith("https://"):
            if address.startswith("http://"):
                raise CliError("--tls contradicts the http:// address (plaintext)")
            address = f"https://{address}"
        return address

    def resolved_api_key(self) -> str:
        """--api-key, else SEEDBED_API_KEY, else the profile's (for the profile's address only);
        empty when none."""
        profile = self._trusted_profile()
        return self.api_key or os.environ.get(ENV_API_KEY, "") or (profile.api_key if profile else "")

    def resolved_ca_file(self) -> str | None:
        """--tls-ca-file, else (when SEEDBED_TLS_CA_FILE is unset) the profile's, for the profile's
        address only; None leaves the client to read the environment."""
        profile = self._trusted_profile()
        if self.tls_ca_file:
            return self.tls_ca_file
        if not os.environ.get("SEEDBED_TLS_CA_FILE") and profile and profile.tls_ca_file:
            return profile.tls_ca_file
        return None

    def client(self) -> Client:
        """A client of the coordinator these options name, known to answer: an unreachable one is
        a CliError within CONNECT_SECONDS saying what to check. One per command, closed at its end."""
        made = self._made.get("client")
        if made is not None:
            return cast(Client, made)
        address = self.resolved_address()
        try:
            client = Client(
                address,
                api_key=self.resolved_api_key(),
                ca_file=self.resolved_ca_file(),
                client_cert_file=self.tls_client_cert_file,
                client_key_file=self.tls_client_key_file,
            )
        except ValueError as exc:  # ConnectionSettingsError: contradictions, unreadable files
            raise CliError(str(exc)) from None
        refused = client.wait_until_ready(CONNECT_SECONDS)
        if refused is not None:
            client.close()
            raise CliError(self.unreachable(address, refused.details), ExitCode.UNREACHABLE)
        click.get_current_context().call_on_close(client.close)
        self._made["client"] = client
        return client

    def unreachable(self, address: str, details: str) -> str:
        """What to say when nothing answers at ``address``: gRPC's reason, then what to check (the
        client's own line when TLS explains it, the usual suspects otherwise)."""
        where = f" (profile {self.profile_name!r})" if self.profile_name else ""
        reason, _, hint = details.partition("\n")
        text = f"no coordinator answered at {address}{where} within {CONNECT_SECONDS:g} s"
        text += f" ({printable(reason)})" if reason else ""
        if hint.strip():
            return f"{text}\n  {printable(hint.strip())}"
        return (
            f"{text}\n"
            "  is it running? start one with `seedbed server`, or run one scenario with "
            "`seedbed run submit FILE --local`\n"
            f"  is the address right? --address, {ENV_ADDRESS}, or `seedbed login` for a profile\n"
            "  does it speak TLS? give an https:// address (and --tls-ca-file for a private CA)"
        )

    def missing_key_hint(self) -> str:
        """What to say when the coordinator wants a key and none was given."""
        if self.resolved_api_key():
            return "  the API key was not accepted: check it, or sign in again with `seedbed login`"
        name, profile = self._profile
        if profile is not None and profile.api_key and self._trusted_profile() is None:
            return (
                f"  profile {name!r} keeps a key for {profile.address}, not for this address: run "
                f"`seedbed login --address ADDRESS`, or set {ENV_API_KEY} or --api-key"
            )
        return (
            "  no API key was given: run `seedbed login` (keeps it in a profile), or set "
            f"{ENV_API_KEY} or --api-key"
        )

    @cached_property
    def consoles(self) -> tuple[Console, Console]:
        return consoles(no_color=self.no_color)

    @property
    def out(self) -> Console:
        return self.consoles[0]

    @property
    def err(self) -> Console:
        return self.consoles[1]

    def emit(self, value: Any, render: Callable[[], Any], *, sentences: bool = False) -> None:
        """Print ``value`` as -o asks: JSON or YAML of the value, else the table ``render()`` makes
        (a rich renderable, printed to stdout). ``sentences``: the renderable's lines of text stay
        whole however narrow the output (a script looks for their words); tables still fit."""
        if self.output == "table":
            self.out.print(render(), soft_wrap=sentences)
        else:
            click.echo(dump(value, self.output), nl=False)


def state() -> Globals:
    """The global options of the command being run."""
    return click.get_current_context().find_root().ensure_object(Globals)


def _keep(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False or ctx.resilient_parsing:
            return  # not given here: what another level was given stays
        setattr(ctx.find_root().ensure_object(Globals), name, value)

    return callback


def _old_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(
            "seedbed: `--json` is now `-o json`; the old spelling goes away in the next release", err=True
        )
        ctx.find_root().ensure_object(Globals).output = "json"


def global_options(hidden: bool) -> Callable[[F], F]:
    """The global options, hidden on commands (they are listed once, in ``seedbed --help``)."""

    def decorate(f: F) -> F:
        specs: list[tuple[tuple[str, ...], dict[str, Any]]] = [
            (
                ("--address",),
                {
                    "metavar": "HOST:PORT",
                    "help": f"the coordinator: host:port, or https://host:port for TLS ({ENV_ADDRESS}, "
                    f"else the profile's; default {DEFAULT_ADDRESS})",
                },
            ),
            (
                ("--api-key",),
                {
                    "metavar": "KEY",
                    "help": f"API key sent with every call ({ENV_API_KEY}, else the profile's; "
                    "`seedbed login` keeps one)",
                },
            ),
            (
                ("--profile",),
                {
                    "metavar": "NAME",
                    "help": "a profile saved by `seedbed login` (SEEDBED_PROFILE; default: the current one)",
                },
            ),
            (
                ("--tls",),
                {
                    "is_flag": True,
                    "default": False,
                    "help": "speak TLS to a bare host:port, as an https:// address does",
                },
            ),
            (
                ("--tls-ca-file",),
                {
                    "metavar": "PEM",
                    "help": "CA certificates that verify the coordinator (SEEDBED_TLS_CA_FILE, else "
                    "the profile's; default: the system's roots)",
                },
            ),
            (
                ("--tls-client-cert-file",),
                {
                    "metavar": "PEM",
                    "help": "client certificate for mutual TLS (SEEDBED_TLS_CLIENT_CERT_FILE)",
                },
            ),
            (
                ("--tls-client-key-file",),
                {"metavar": "PEM", "help": "the client certificate's key (SEEDBED_TLS_CLIENT_KEY_FILE)"},
            ),
            (
                ("-o", "--output"),
                {
                    "type": click.Choice(FORMATS),
                    "metavar": "table|json|yaml",
                    "help": "how to print the answer: a table for people (default), JSON or YAML "
                    "with the contract's field names for programs",
                },
            ),
            (
                ("--no-color",),
                {
                    "is_flag": True,
                    "default": False,
                    "help": "no colour even on a terminal (NO_COLOR does the same)",
                },
            ),
        ]
        # The old spelling of -o json, hidden everywhere, kept for one release.
        f = click.option(
            "--json",
            is_flag=True,
            is_eager=True,  # as -o is: of the two, the one given last wins
            hidden=True,
            expose_value=False,
            callback=_old_json,
            help="-o json",
        )(f)
        for decls, extra in reversed(specs):
            name = decls[-1].lstrip("-").replace("-", "_")
            f = click.option(
                *decls,
                expose_value=False,
                is_eager=True,
                hidden=hidden,
                callback=_keep(name),
                **extra,
            )(f)
        return f

    return decorate


class SeedbedCommand(click.Command):
    """A command that takes the global options anywhere, and ``-h`` for help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        super().__init__(*args, **kwargs)
        global_options(hidden=True)(self)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        with formatter.section("Global options"):
            formatter.write_text(
                "--address, --api-key, --profile, --tls…, -o table|json|yaml, --no-color: see "
                "`seedbed --help`; accepted before or after the command"
            )


def _looks_like_a_file(word: str) -> bool:
    """Whether an unknown word in a group with a fallback names a file (``seedbed run hello.py``):
    a path, a ``.py`` name or a file that exists; anything else gets "did you mean"."""
    return (
        bool(word)
        and not word.startswith("-")
        and ("/" in word or word.endswith(".py") or os.path.exists(word))
    )


class SeedbedGroup(click.Group):
    """A group that suggests close commands for a typo, keeps old spellings as hidden aliases that
    say their new name, and (``fallback``) may read an unknown first word as a command's argument
    (``seedbed run FILE`` as ``seedbed run submit FILE``, the old spelling)."""

    # Commands and groups made with ``group.command()`` / ``group.group()`` are of these classes.
    command_class = SeedbedCommand
    group_class = type

    def __init__(
        self,
        *args: Any,
        aliases: dict[str, str] | None = None,
        fallback: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        super().__init__(*args, **kwargs)
        self.aliases = dict(aliases or {})
        self.fallback = fallback

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in self.aliases:
            new = self.aliases[cmd_name]
            if not ctx.resilient_parsing:
                click.echo(
                    f"seedbed: `{ctx.command_path} {cmd_name}` is now `{ctx.command_path} {new}`; "
                    "the old spelling goes away in the next release",
                    err=True,
                )
            found = super().get_command(ctx, new.split()[0])
        return found

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name in self.aliases and " " in self.aliases[name]:
            # An alias that is a command of a subgroup (`runs` → `run list`).
            args = [*self.aliases[name].split(), *args[1:]]
            if not ctx.resilient_parsing:
                click.echo(
                    f"seedbed: `{ctx.command_path} {name}` is now `{ctx.command_path} "
                    f"{self.aliases[name]}`; the old spelling goes away in the next release",
                    err=True,
                )
            return super().resolve_command(ctx, args)
        if (
            self.fallback
            and _looks_like_a_file(name)
            and super().get_command(ctx, name) is None
            and name not in self.aliases
        ):
            if not ctx.resilient_parsing:
                click.echo(
                    f"seedbed: `{ctx.command_path} {name}` is now `{ctx.command_path} {self.fallback} "
                    f"{name}`; the old spelling goes away in the next release",
                    err=True,
                )
            return super().resolve_command(ctx, [self.fallback, *args])
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if not name or name.startswith("-"):
                raise
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            if not close:
                raise
            raise click.UsageError(f"{exc.message}\nDid you mean: {', '.join(close)}?", ctx) from None


__all__ = [
    "CONNECT_SECONDS",
    "CliError",
    "Globals",
    "SeedbedCommand",
    "SeedbedGroup",
    "global_options",
    "state",
]
