"""The pprof ``profile.proto`` schema, built in Python at import time.

``go tool pprof`` reads profiles encoded with the schema published at
github.com/google/pprof/proto/profile.proto (package ``perftools.profiles``,
proto3).  Rather than depend on ``protoc`` (or ``grpcio-tools``) to generate
code from a ``.proto`` file, this module describes the same messages as a
:class:`google.protobuf.descriptor_pb2.FileDescriptorProto` and asks the
``protobuf`` runtime to build the message classes from it.  The wire encoding
is then entirely protobuf's; nothing here knows about varints or tags.

Only the messages a heap profile needs are declared (``Profile``,
``ValueType``, ``Sample``, ``Label``, ``Mapping``, ``Location``, ``Line``,
``Function``).  Their field names, numbers and types follow profile.proto
exactly, so a profile we write can be read by any pprof consumer, and a pprof
profile written elsewhere decodes here (fields we do not declare, such as
``tick_unit`` or ``Sample.breakdown``, are kept as unknown fields).

The descriptors live in a private :class:`~google.protobuf.descriptor_pool.
DescriptorPool`, so they cannot clash with another copy of profile.proto that
some other library registers in the default pool.

Exported message classes: :data:`Profile`, :data:`ValueType`, :data:`Sample`,
:data:`Label`, :data:`Mapping`, :data:`Location`, :data:`Line`,
:data:`Function`.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = [
    "FILE_NAME",
    "PACKAGE",
    "Function",
    "Label",
    "Line",
    "Location",
    "Mapping",
    "Profile",
    "Sample",
    "ValueType",
    "file_descriptor_proto",
]

PACKAGE = "perftools.profiles"
FILE_NAME = "goheap/report/profile.proto"

_F = descriptor_pb2.FieldDescriptorProto

# Short names for the field types and labels used below.
_INT64 = _F.TYPE_INT64
_UINT64 = _F.TYPE_UINT64
_BOOL = _F.TYPE_BOOL
_STRING = _F.TYPE_STRING
_MESSAGE = _F.TYPE_MESSAGE
_ONE = _F.LABEL_OPTIONAL  # proto3 singular field
_MANY = _F.LABEL_REPEATED  # proto3 repeated scalars are packed by default

# message name -> [(field name, number, type, label, message type or None)]
# Field numbers are those of github.com/google/pprof/proto/profile.proto.
_MESSAGES: dict[str, list[tuple[str, int, int, int, str | None]]] = {
    "Profile": [
        ("sample_type", 1, _MESSAGE, _MANY, "ValueType"),
        ("sample", 2, _MESSAGE, _MANY, "Sample"),
        ("mapping", 3, _MESSAGE, _MANY, "Mapping"),
        ("location", 4, _MESSAGE, _MANY, "Location"),
        ("function", 5, _MESSAGE, _MANY, "Function"),
        ("string_table", 6, _STRING, _MANY, None),
        ("drop_frames", 7, _INT64, _ONE, None),  # string table index
        ("keep_frames", 8, _INT64, _ONE, None),  # string table index
        ("time_nanos", 9, _INT64, _ONE, None),
        ("duration_nanos", 10, _INT64, _ONE, None),
        ("period_type", 11, _MESSAGE, _ONE, "ValueType"),
        ("period", 12, _INT64, _ONE, None),
        ("comment", 13, _INT64, _MANY, None),  # string table indices
        ("default_sample_type", 14, _INT64, _ONE, None),  # string table index
    ],
    "ValueType": [
        ("type", 1, _INT64, _ONE, None),  # string table index
        ("unit", 2, _INT64, _ONE, None),  # string table index
    ],
    "Sample": [
        ("location_id", 1, _UINT64, _MANY, None),  # leaf first
        ("value", 2, _INT64, _MANY, None),  # one per Profile.sample_type
        ("label", 3, _MESSAGE, _MANY, "Label"),
    ],
    "Label": [
        ("key", 1, _INT64, _ONE, None),  # string table index
        ("str", 2, _INT64, _ONE, None),  # string table index
        ("num", 3, _INT64, _ONE, None),
        ("num_unit", 4, _INT64, _ONE, None),  # string table index
    ],
    "Mapping": [
        ("id", 1, _UINT64, _ONE, None),
        ("memory_start", 2, _UINT64, _ONE, None),
        ("memory_limit", 3, _UINT64, _ONE, None),
        ("file_offset", 4, _UINT64, _ONE, None),
        ("filename", 5, _INT64, _ONE, None),  # string table index
        ("build_id", 6, _INT64, _ONE, None),  # string table index
        ("has_functions", 7, _BOOL, _ONE, None),
        ("has_filenames", 8, _BOOL, _ONE, None),
        ("has_line_numbers", 9, _BOOL, _ONE, None),
        ("has_inline_frames", 10, _BOOL, _ONE, None),
    ],
    "Location": [
        ("id", 1, _UINT64, _ONE, None),
        ("mapping_id", 2, _UINT64, _ONE, None),
        ("address", 3, _UINT64, _ONE, None),
        ("line", 4, _MESSAGE, _MANY, "Line"),  # inlined callees first
        ("is_folded", 5, _BOOL, _ONE, None),
    ],
    "Line": [
        ("function_id", 1, _UINT64, _ONE, None),
        ("line", 2, _INT64, _ONE, None),
    ],
    "Function": [
        ("id", 1, _UINT64, _ONE, None),
        ("name", 2, _INT64, _ONE, None),  # string table index
        ("system_name", 3, _INT64, _ONE, None),  # string table index
        ("filename", 4, _INT64, _ONE, None),  # string table index
        ("start_line", 5, _INT64, _ONE, None),
    ],
}


def file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """Return a fresh ``FileDescriptorProto`` equivalent to profile.proto."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name=FILE_NAME, package=PACKAGE, syntax="proto3"
    )
    for msg_name, fields in _MESSAGES.items():
        msg = fdp.message_type.add(name=msg_name)
        for name, number, ftype, label, type_name in fields:
            field = msg.field.add(
                name=name,
                number=number,
                type=ftype,
                label=label,
                json_name=_json_name(name),
            )
            if type_name is not None:
                field.type_name = f".{PACKAGE}.{type_name}"
    return fdp


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


_POOL = descriptor_pool.DescriptorPool()
# AddSerializedFile is the route protoc-generated ``_pb2`` modules take; it is
# available, with the same behaviour, in every protobuf backend (upb, C++,
# pure Python).
_POOL.AddSerializedFile(file_descriptor_proto().SerializeToString())


def _message_class(name: str) -> type:
    descriptor = _POOL.FindMessageTypeByName(f"{PACKAGE}.{name}")
    return message_factory.GetMessageClass(descriptor)


Profile = _message_class("Profile")
ValueType = _message_class("ValueType")
Sample = _message_class("Sample")
Label = _message_class("Label")
Mapping = _message_class("Mapping")
Location = _message_class("Location")
Line = _message_class("Line")
Function = _message_class("Function")
