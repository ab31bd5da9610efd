"""Refuses decoded requests whose fields arrived with the wrong protobuf wire type.

betterproto2 trusts the wire type it reads: a message or string field sent as
a varint decodes to an ``int``, a varint field sent length-delimited to
``bytes``, and a repeated string may hold an ``int`` among its items. A handler
that then calls ``msg.filter.interval`` fails with ``AttributeError`` —
INTERNAL for what is really a malformed request. ``check_wire_types`` walks a
decoded message against its field metadata and raises ``InvalidArgument``
naming the first field whose value has the wrong Python type.

Any service can use it (it knows nothing of DataService); it is cheap for the
small request messages handlers receive.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import betterproto2

from cloud.errors import InvalidArgument
from protos.gen.google.protobuf import Timestamp

if TYPE_CHECKING:
    from betterproto2 import FieldMetadata

_INTS = frozenset(
    {
        betterproto2.TYPE_INT32,
        betterproto2.TYPE_INT64,
        betterproto2.TYPE_UINT32,
        betterproto2.TYPE_UINT64,
        betterproto2.TYPE_SINT32,
        betterproto2.TYPE_SINT64,
        betterproto2.TYPE_FIXED32,
        betterproto2.TYPE_FIXED64,
        betterproto2.TYPE_SFIXED32,
        betterproto2.TYPE_SFIXED64,
        betterproto2.TYPE_ENUM,
    }
)
_FLOATS = frozenset({betterproto2.TYPE_FLOAT, betterproto2.TYPE_DOUBLE})


def check_wire_types(msg: betterproto2.Message, where: str = "") -> None:
    """Checks every field of ``msg`` (recursively) holds a value of its declared type.

    Args:
        msg: a decoded message.
        where: the path of ``msg`` in the request, for error messages ("" at the top).

    Raises:
        InvalidArgument: a field was sent with the wrong wire type; the message
            names the field, e.g. ``filter.location_ids[1]: malformed ...``.
    """
    # betterproto2's classproperty is mistyped (its owner type resolves to Never).
    meta_table = type(msg)._betterproto  # type: ignore[arg-type]
    fields: dict[str, FieldMetadata] = meta_table.meta_by_field_name
    for name, meta in fields.items():
        value = getattr(msg, name)
        path = f"{where}.{name}" if where else name
        if meta.proto_type == betterproto2.TYPE_MAP:
            _check_map(value, meta, path)
        elif meta.repeated:
            if not isinstance(value, list):
                _refuse(path)
            for i, item in enumerate(value):
                _check_single(item, meta, f"{path}[{i}]")
        elif value is not None or not meta.optional:
            _check_single(value, meta, path)


def _check_map(value: object, meta: FieldMetadata, path: str) -> None:
    if not isinstance(value, dict) or meta.map_meta is None:
        _refuse(path)
        return
    key_meta, value_meta = meta.map_meta
    for key, item in value.items():
        _check_single(key, key_meta, f"{path}[{key!r}]")
        _check_single(item, value_meta, f"{path}[{key!r}]")


def _check_single(value: object, meta: FieldMetadata, path: str) -> None:
    kind = meta.proto_type
    if kind == betterproto2.TYPE_MESSAGE:
        if meta.unwrap is not None:
            if meta.unwrap() is Timestamp and not isinstance(value, dt.datetime):
                _refuse(path)
        elif isinstance(value, betterproto2.Message):
            check_wire_types(value, path)
        else:
            _refuse(path)
    elif not _scalar_ok(kind, value):
        _refuse(path)


def _scalar_ok(kind: str, value: object) -> bool:
    if kind == betterproto2.TYPE_STRING:
        return isinstance(value, str)
    if kind == betterproto2.TYPE_BYTES:
        return isinstance(value, bytes)
    if kind == betterproto2.TYPE_BOOL:
        return isinstance(value, bool)
    if kind in _INTS:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in _FLOATS:  # an int is harmless here (and what from_dict builds)
        return isinstance(value, float | int) and not isinstance(value, bool)
    return True


def _refuse(path: str) -> None:
    raise InvalidArgument(f"{path}: malformed (sent with the wrong protobuf wire type)")
