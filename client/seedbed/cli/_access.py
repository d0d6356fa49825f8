"""``seedbed whoami | project | user | member | key`` commands: projects, users, roles and API keys."""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from seedbed.api.v1 import access_pb2
from seedbed.client import Client

ROLES = ("viewer", "runner", "editor", "admin", "none")


def _call(args: argparse.Namespace, method: str, request: Message) -> Any:
    with Client(args.address) as client:
        return client._call(getattr(client._access, method), request)


def _json(message: Message) -> None:
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2))


def _role(value: int) -> str:
    return access_pb2.Role.Name(value).removeprefix("ROLE_").lower()


def _user_line(user: access_pb2.User) -> str:
    roles = ", ".join(f"{m.project_key}:{_role(m.role)}" for m in user.memberships) or "-"
    flag = " superuser" if user.superuser else ""
    return f"{user.id:<24}{flag:<11} {roles}"


def cmd_whoami(args: argparse.Namespace) -> int:
    response = _call(args, "WhoAmI", access_pb2.WhoAmIRequest())
    if args.json:
        _json(response)
        return 0
    print(f"{_user_line(response.user)}  (key {response.api_key_id or '-'})")
    return 0


def cmd_project_create(args: argparse.Namespace) -> int:
    request = access_pb2.CreateProjectRequest(
        key=args.key, name=args.name or "", description=args.description
    )
    project = _call(args, "CreateProject", request).project
    if args.json:
        _json(project)
    else:
        print(f"created project {project.key}")
    return 0


def cmd_project_list(args: argparse.Namespace) -> int:
    projects = _call(args, "ListProjects", access_pb2.ListProjectsRequest()).projects
    if args.json:
        print(json.dumps([MessageToDict(p, preserving_proto_field_name=True) for p in projects], indent=2))
        return 0
    print(f"{'PROJECT':<24} NAME")
    for p in projects:
        print(f"{p.key:<24} {p.name}")
    return 0


def cmd_project_show(args: argparse.Namespace) -> int:
    response = _call(args, "GetProject", access_pb2.GetProjectRequest(key=args.key))
    if args.json:
        _json(response)
        return 0
    p = response.project
    print(f"{p.key}: {p.name}\n  {p.description or '(no description)'}\n  your role: {_role(response.role)}")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    request = access_pb2.CreateUserRequest(
        user_id=args.user_id, display_name=args.display_name, email=args.email, superuser=args.superuser
    )
    user = _call(args, "CreateUser", request).user
    if args.json:
        _json(user)
    else:
        print(f"created user {user.id}; give them a role with `seedbed member set {user.id} PROJECT ROLE`")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    users = _call(args, "ListUsers", access_pb2.ListUsersRequest()).users
    if args.json:
        print(json.dumps([MessageToDict(u, preserving_proto_field_name=True) for u in users], indent=2))
        return 0
    for user in users:
        print(_user_line(user))
    return 0


def cmd_user_show(args: argparse.Namespace) -> int:
    user = _call(args, "GetUser", access_pb2.GetUserRequest(user_id=args.user_id)).user
    if args.json:
        _json(user)
    else:
        print(_user_line(user))
    return 0


def cmd_member_set(args: argparse.Namespace) -> int:
    role = "ROLE_UNSPECIFIED" if args.role == "none" else f"ROLE_{args.role.upper()}"
    request = access_pb2.SetMembershipRequest(user_id=args.user_id, project_key=args.project, role=role)
    user = _call(args, "SetMembership", request).user
    if args.json:
        _json(user)
    else:
        print(_user_line(user))
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    request = access_pb2.CreateApiKeyRequest(user_id=args.user or "", description=args.description)
    response = _call(args, "CreateApiKey", request)
    if args.json:
        _json(response)
        return 0
    print(f"created API key {response.api_key.id} for {response.api_key.user_id}; it is shown only now:")
    print(response.secret)
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    keys = _call(args, "ListApiKeys", access_pb2.ListApiKeysRequest(user_id=args.user or "")).api_keys
    if args.json:
        print(json.dumps([MessageToDict(k, preserving_proto_field_name=True) for k in keys], indent=2))
        return 0
    print(f"{'KEY':<22} {'USER':<20} {'CREATED':<20} {'LAST USED':<20} DESCRIPTION")
    for k in keys:
        created = k.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        used = (
            k.last_used_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
            if k.HasField("last_used_time")
            else "-"
        )
        state = " (revoked)" if k.revoked else ""
        print(f"{k.id:<22} {k.user_id:<20} {created:<20} {used:<20} {k.description}{state}")
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    key = _call(args, "RevokeApiKey", access_pb2.RevokeApiKeyRequest(api_key_id=args.key_id)).api_key
    if args.json:
        _json(key)
    else:
        print(f"revoked API key {key.id} of {key.user_id}")
    return 0


def register(sub: Any) -> None:
    """Add the access commands to the top-level subparsers."""

    def leaf(parent: Any, name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="print the answer as JSON")
        p.set_defaults(func=func)
        return p

    leaf(sub, "whoami", cmd_whoami, "the user and API key the coordinator sees")

    group = sub.add_parser("project", help="projects (scenarios and runs live in one)")
    psub = group.add_subparsers(dest="project_command", required=True)
    p = leaf(psub, "create", cmd_project_create, "create a project (superuser)")
    p.add_argument("key", help="lower-case letters, digits, '_' and '-'")
    p.add_argument("--name")
    p.add_argument("--description", default="")
    leaf(psub, "list", cmd_project_list, "the projects you have a role in")
    p = leaf(psub, "show", cmd_project_show, "a project and your role in it")
    p.add_argument("key")

    group = sub.add_parser("user", help="users")
    usub = group.add_subparsers(dest="user_command", required=True)
    p = leaf(usub, "create", cmd_user_create, "create a user (superuser)")
    p.add_argument("user_id")
    p.add_argument("--display-name", default="")
    p.add_argument("--email", default="")
    p.add_argument("--superuser", action="store_true")
    leaf(usub, "list", cmd_user_list, "every user (superuser)")
    p = leaf(usub, "show", cmd_user_show, "a user and their roles")
    p.add_argument("user_id")

    group = sub.add_parser("member", help="roles of users in projects")
    msub = group.add_subparsers(dest="member_command", required=True)
    p = leaf(msub, "set", cmd_member_set, "give USER ROLE in PROJECT ('none' removes them)")
    p.add_argument("user_id", metavar="USER")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("role", metavar="ROLE", choices=ROLES, help=" | ".join(ROLES))

    group = sub.add_parser("key", help="API keys")
    ksub = group.add_subparsers(dest="key_command", required=True)
    p = leaf(ksub, "create", cmd_key_create, "create an API key (shown once)")
    p.add_argument("--user", help="for another user (superuser); default: you")
    p.add_argument("--description", default="")
    p = leaf(ksub, "list", cmd_key_list, "API keys (yours, or --user's for a superuser)")
    p.add_argument("--user")
    p = leaf(ksub, "revoke", cmd_key_revoke, "revoke an API key")
    p.add_argument("key_id", metavar="ID")
