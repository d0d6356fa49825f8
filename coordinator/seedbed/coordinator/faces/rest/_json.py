"""The REST face's JSON: the contract's messages in the protobuf JSON mapping, with the contract's
own (snake_case) field names, every field present, enums by name, 64-bit integers as strings, times
as RFC 3339. One shape per object, the same the gRPC contract documents, so a run read over REST and
over gRPC cannot differ.

The OpenAPI components are derived from the same descriptors (:func:`message_schemas`), so the
committed OpenAPI document changes exactly when the contract does.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# How the protobuf JSON mapping writes the well-known types the contract uses.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "description": "seconds with an 's' suffix, e.g. '1.5s'"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}


def to_json(message: Message) -> dict[str, Any]:
    """The message as the REST face answers it."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def ref(descriptor: Any) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{descriptor.full_name}"}


def message_response(message: Any) -> dict[str, Any]:
    """An OpenAPI response whose JSON body is ``message`` (a contract message class)."""
    return {"content": {"application/json": {"schema": ref(message.DESCRIPTOR)}}}


def page_response(field: str, message: Any) -> dict[str, Any]:
    """An OpenAPI response of a page: ``field`` (a list of ``message``) and ``next_page_token``."""
    schema = {
        "type": "object",
        "properties": {
            field: {"type": "array", "items": ref(message.DESCRIPTOR)},
            "next_page_token": {"type": "string"},
        },
    }
    return {"content": {"application/json": {"schema": schema}}}


def message_schemas(*roots: Any) -> dict[str, dict[str, Any]]:
    """JSON Schemas (OpenAPI 3.1) of the messages reachable from ``roots``, keyed by full name."""
    found: dict[str, dict[str, Any]] = {}

    def visit(desc: Any) -> None:
        if desc.full_name in found or desc.full_name in _WELL_KNOWN:
            return
        found[desc.full_name] = {}  # marks it: a message may reach itself
        properties = {field.name: _field(field, visit) for field in desc.fields}
        found[desc.full_name] = {"type": "object", "properties": properties}

    for root in roots:
        visit(root)
    return dict(sorted(found.items()))


def _field(field: Any, visit: Any) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value, visit)}
    single = _single(field, visit)
    if field.is_repeated:
        return {"type": "array", "items": single}
    return single


def _single(field: Any, visit: Any) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        known = _WELL_KNOWN.get(field.message_type.full_name)
        if known is not None:
            return dict(known)
        visit(field.message_type)
        return ref(field.message_type)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    return dict(_SCALARS[field.type])
