"""``seedbed whoami | project | user | member | key``: who you are, projects, users, their roles and
API keys.

Each command calls one public method of ``seedbed.client.Client`` and prints the contract's message
(``-o json|yaml``) or a table. Only what the access API offers is here: projects and users are
created, never deleted; an API key is revoked (and stays listed as revoked), never deleted; a role
is removed by ``member delete`` (which sets no role). ``--json``, the old spelling of ``-o json``,
still works on every command for one release.
"""

from __future__ import annotations

from typing import Any

import click

from seedbed.api.v1 import access_pb2
from seedbed.cli._catalog_options import tell
from seedbed.cli._context import SeedbedCommand, SeedbedGroup, state
from seedbed.cli._output import Column, fields, printable, table


def role_name(value: int) -> str:
    """A contract role as typed on the command line: viewer, runner, editor, admin (none: no role)."""
    return "none" if not value else access_pb2.Role.Name(value).removeprefix("ROLE_").lower()


_ROLE_VALUES = {
    "viewer": access_pb2.ROLE_VIEWER,
    "runner": access_pb2.ROLE_RUNNER,
    "editor": access_pb2.ROLE_EDITOR,
    "admin": access_pb2.ROLE_ADMIN,
    "none": access_pb2.ROLE_UNSPECIFIED,
}


def _roles(user: access_pb2.User) -> str:
    return ", ".join(f"{m.project_key}:{role_name(m.role)}" for m in user.memberships) or "-"


_USER_COLUMNS = (
    Column("USER", lambda u: u.id),
    Column("NAME", lambda u: u.display_name, overflow="ellipsis", max_width=24),
    Column("SUPERUSER", lambda u: u.superuser),
    Column("ROLES", _roles),
)


def _user_fields(user: access_pb2.User, *extra: tuple[str, object]) -> Any:
    return fields(
        [
            ("user", user.id),
            ("name", user.display_name),
            ("email", user.email),
            ("superuser", user.superuser),
            ("roles", _roles(user)),
            ("created", user.create_time),
            *extra,
        ]
    )


@click.command(cls=SeedbedCommand)
def whoami() -> None:
    """The user and API key the coordinator takes you for, and your roles.

    -o json prints the contract's WhoAmIResponse: {"user": User, "api_key_id": ...}.

    \b
    Examples:
      seedbed whoami
      seedbed whoami --profile staging -o json
    """
    g = state()
    answer = g.client().whoami()
    g.emit(answer, lambda: _user_fields(answer.user, ("API key", answer.api_key_id or "-")))


# -- projects ----------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup)
def project() -> None:
    """Projects: scenarios, templates, connections and runs live in one; users have a role in each.

    \b
    Examples:
      seedbed project list
      seedbed project create shop --name "Shop"
    """


@project.command("list")
def project_list() -> None:
    """The projects you have a role in (every project for a superuser).

    \b
    Examples:
      seedbed project list
      seedbed project list -o json
    """
    g = state()
    projects = [p.raw for p in g.client().list_projects()]
    columns = (
        Column("PROJECT", lambda p: p.key),
        Column("NAME", lambda p: p.name, overflow="ellipsis", max_width=30),
        Column("CREATED", lambda p: p.create_time),
        Column("DESCRIPTION", lambda p: p.description, overflow="ellipsis"),
    )
    g.emit(projects, lambda: table(projects, columns))


@project.command("show")
@click.argument("key", metavar="KEY")
def project_show(key: str) -> None:
    """Show project KEY and your role in it.

    -o json prints the contract's GetProjectResponse: {"project": Project, "role": ...}.

    \b
    Examples:
      seedbed project show shop
      seedbed project show shop -o json
    """
    g = state()
    answer = g.client().describe_project(key)
    p = answer.project
    g.emit(
        answer,
        lambda: fields(
            [
                ("project", p.key),
                ("name", p.name),
                ("description", p.description),
                ("created", p.create_time),
                ("your role", role_name(answer.role)),
            ]
        ),
    )


@project.command("create")
@click.argument("key", metavar="KEY")
@click.option("--name", default="", help="a readable name (default: the key)")
@click.option("--description", default="", help="what the project is for")
def project_create(key: str, name: str, description: str) -> None:
    """Create project KEY (superuser): lower-case letters, digits, '_' and '-'.

    Nobody but superusers has a role in it until `seedbed member set` gives one.

    \b
    Examples:
      seedbed project create shop --name "Shop" --description "the web shop's test data"
      seedbed member set alice shop editor
    """
    g = state()
    created = g.client().create_project(key, name=name, description=description)
    tell(created, f"created project {created.key}")


# -- users -------------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup)
def user() -> None:
    """Users, who act through their API keys with a role in each project.

    \b
    Examples:
      seedbed user list
      seedbed user create alice --email alice@example.com
    """


@user.command("list")
def user_list() -> None:
    """Every user and their roles (superuser).

    \b
    Examples:
      seedbed user list
      seedbed user list -o yaml
    """
    g = state()
    users = g.client().list_users()
    g.emit(users, lambda: table(users, _USER_COLUMNS))


@user.command("show")
@click.argument("user_id", metavar="USER")
def user_show(user_id: str) -> None:
    """Show USER (a user id) and their roles: yourself, or anyone for a superuser.

    \b
    Examples:
      seedbed user show alice
      seedbed user show alice -o json
    """
    g = state()
    found = g.client().get_user(user_id)
    g.emit(found, lambda: _user_fields(found))


@user.command("create")
@click.argument("user_id", metavar="USER")
@click.option("--display-name", default="", help="the name shown for the user")
@click.option("--email", default="", help="the user's e-mail address")
@click.option("--superuser", is_flag=True, help="every right in every project")
def user_create(user_id: str, display_name: str, email: str, superuser: bool) -> None:
    """Create user USER (superuser); they have no role until `seedbed member set` gives one, and
    act through a key made with `seedbed key create --user USER`.

    \b
    Examples:
      seedbed user create alice --display-name "Alice" --email alice@example.com
      seedbed key create --user alice --description laptop
    """
    g = state()
    created = g.client().create_user(user_id, display_name=display_name, email=email, superuser=superuser)
    uid = created.id
    tell(created, f"created user {uid}; give them a role with `seedbed member set {uid} PROJECT ROLE`")


# -- members -----------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup)
def member() -> None:
    """Roles of users in projects: viewer, runner, editor, admin.

    \b
    Examples:
      seedbed member set alice shop editor
      seedbed member list --project shop
    """


@member.command("list")
@click.argument("user_id", metavar="USER", required=False)
@click.option("--project", "project_key", default="", metavar="KEY", help="only members of this project")
def member_list(user_id: str | None, project_key: str) -> None:
    """The roles of USER (default: every user's, which needs a superuser), one row per project.

    -o json prints the contract's Users (each with its memberships), those with a role in
    --project only when it is given.

    \b
    Examples:
      seedbed member list alice
      seedbed member list --project shop -o json
    """
    g = state()
    client = g.client()
    users = [client.get_user(user_id)] if user_id else client.list_users()
    if project_key:
        users = [u for u in users if any(m.project_key == project_key for m in u.memberships)]
    rows = [
        (u.id, m.project_key, role_name(m.role))
        for u in users
        for m in u.memberships
        if not project_key or m.project_key == project_key
    ]
    columns = (
        Column("USER", lambda r: r[0]),
        Column("PROJECT", lambda r: r[1]),
        Column("ROLE", lambda r: r[2]),
    )
    g.emit(users, lambda: table(rows, columns))


@member.command("set")
@click.argument("user_id", metavar="USER")
@click.argument("project_key", metavar="PROJECT")
@click.argument("role", metavar="ROLE", type=click.Choice(tuple(_ROLE_VALUES)))
def member_set(user_id: str, project_key: str, role: str) -> None:
    """Give USER the role ROLE in PROJECT (viewer, runner, editor or admin; none removes them).

    Needs admin in PROJECT. -o json prints the user as saved (a User).

    \b
    Examples:
      seedbed member set alice shop runner
      seedbed member set ci-bot shop viewer -o json
    """
    _set_role(user_id, project_key, role)


@member.command("delete")
@click.argument("user_id", metavar="USER")
@click.argument("project_key", metavar="PROJECT")
def member_delete(user_id: str, project_key: str) -> None:
    """Take USER's role in PROJECT away (the same as `seedbed member set USER PROJECT none`).

    -o json prints the user as saved (a User).

    \b
    Examples:
      seedbed member delete alice shop
    """
    _set_role(user_id, project_key, "none")


def _set_role(user_id: str, project_key: str, role: str) -> None:
    g = state()
    saved = g.client().set_membership(user_id, project_key, _ROLE_VALUES[role])
    g.emit(saved, lambda: table([saved], _USER_COLUMNS))


# -- API keys ----------------------------------------------------------------------------------------


@click.group(cls=SeedbedGroup)
def key() -> None:
    """API keys: every call carries one; a key acts as its user.

    \b
    Examples:
      seedbed key create --description laptop
      seedbed key list
      seedbed key revoke key_0123abcd
    """


@key.command("list")
@click.option("--user", "user_id", default="", metavar="USER", help="another user's keys (superuser)")
def key_list(user_id: str) -> None:
    """Your API keys, or --user's; revoked keys stay listed as revoked. Secrets are never shown.

    \b
    Examples:
      seedbed key list
      seedbed key list --user alice -o json
    """
    g = state()
    keys = g.client().list_api_keys(user_id)
    columns = (
        Column("KEY", lambda k: k.id),
        Column("USER", lambda k: k.user_id),
        Column("CREATED", lambda k: k.create_time),
        Column("LAST USED", lambda k: k.last_used_time),
        Column("REVOKED", lambda k: k.revoked),
        Column("DESCRIPTION", lambda k: k.description, overflow="ellipsis"),
    )
    g.emit(keys, lambda: table(keys, columns))


@key.command("create")
@click.option(
    "--user", "user_id", default="", metavar="USER", help="for another user (superuser); default: you"
)
@click.option("--description", default="", help="what the key is for (shown in `seedbed key list`)")
def key_create(user_id: str, description: str) -> None:
    """Create an API key. Its secret is printed once, alone on standard output (what to keep is
    said on standard error), and never shown again.

    -o json prints the contract's CreateApiKeyResponse: {"api_key": ApiKey, "secret": ...}.

    \b
    Examples:
      seedbed key create --description laptop
      seedbed key create --user ci-bot --description "CI pipeline" > ci-bot.key
    """
    g = state()
    created = g.client().create_api_key(user_id=user_id, description=description)
    if g.output == "table":
        made = created.api_key
        click.echo(
            printable(f"created API key {made.id} for {made.user_id}; its secret is shown only now:"),
            err=True,
        )
        click.echo(created.secret)
        return
    g.emit(created, lambda: "")


@key.command("revoke")
@click.argument("key_id", metavar="ID")
def key_revoke(key_id: str) -> None:
    """Revoke API key ID for good (yours, or anyone's for a superuser); calls with it are refused
    from then on. -o json prints the key as revoked (an ApiKey).

    \b
    Examples:
      seedbed key revoke key_0123abcd
    """
    g = state()
    revoked = g.client().revoke_api_key(key_id)
    tell(revoked, f"revoked API key {revoked.id} of {revoked.user_id}")
