"""JSON-like Python values to ``google.protobuf.Struct`` bytes, fast.

Struct is what every tabular reading is stored as, so this is the capture hot
path. Numbers become doubles (Struct has no integer type: integers beyond 2**53
lose precision, as in Viam); tuples encode as lists; ``None`` is ``null_value``.
Decoding is in ``_struct_decode``.
"""

from __future__ import annotations

import numbers
import struct as _binary
from collections.abc import Mapping, Sequence
from typing import TypeAlias, final

from actors.codec._pbwire import SMALL_LIMIT, SMALL_VARINTS, encode_varint

JsonValue: TypeAlias = (
    bool | int | float | str | Sequence["JsonValue"] | Mapping[str, "JsonValue"] | None
)
JsonObject: TypeAlias = Mapping[str, JsonValue]

_pack_double = _binary.Struct("<d").pack

_NULL = b"\x08\x00"  # Value.null_value = NULL_VALUE
_TRUE = b"\x20\x01"  # Value.bool_value = true
_FALSE = b"\x20\x00"
_KEY_CACHE_LIMIT = 4096
_varint = encode_varint
_SMALL = SMALL_VARINTS
_LIMIT = SMALL_LIMIT
# What encoding a non-JSON-like value raises; struct.error is an int beyond a double's range.
_ENCODE_ERRORS = (TypeError, AttributeError, OverflowError, UnicodeEncodeError, _binary.error)


class StructEncodeError(TypeError):
    """A value that a Struct cannot hold; the message names its path in the reading."""


@final
class StructEncoder:
    """Encodes JSON-like mappings as Struct message bytes.

    Keeps a bounded cache of encoded map keys, since a collector repeats the same
    keys on every reading. One encoder per writer; not shared between threads.

    Example::

        enc = StructEncoder()
        body = enc.encode({"readings": {"temp_c": 21.5}})
    """

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    def encode(self, obj: JsonObject) -> bytes:
        """Returns the serialized Struct for ``obj``.

        Raises:
            StructEncodeError: a key is not a string or a value is not JSON-like.
        """
        try:
            return self._struct(obj)
        except _ENCODE_ERRORS:
            if not isinstance(obj, Mapping):
                raise StructEncodeError(
                    f"$: {type(obj).__name__} is not a JSON object (a Struct needs a mapping)"
                ) from None
            raise StructEncodeError(_explain(obj)) from None

    def encode_value(self, value: JsonValue) -> bytes:
        """Returns the serialized ``google.protobuf.Value`` for one JSON-like value.

        Raises:
            StructEncodeError: the value is not JSON-like.
        """
        try:
            return self._value(value)
        except _ENCODE_ERRORS:
            raise StructEncodeError(_explain({"value": value})) from None

    def _key(self, key: str) -> bytes:
        if key.__class__ is not str:
            if not isinstance(key, str):
                raise TypeError
            key = str.__str__(key)  # a str subclass (StrEnum) as its plain characters
        raw = key.encode()
        encoded = b"\x0a" + _varint(len(raw)) + raw
        if len(self._keys) < _KEY_CACHE_LIMIT:
            self._keys[key] = encoded
        return encoded

    def _struct(self, obj: JsonObject) -> bytes:
        parts: list[bytes] = []
        append = parts.append
        keys = self._keys
        for key, value in obj.items():
            key_bytes = keys.get(key) or self._key(key)
            cls = value.__class__
            if cls is float or cls is int:
                # The common case, inlined: entry = key, then Value{number_value}: 11 bytes.
                n = len(key_bytes) + 11
                append(b"\x0a" + (_SMALL[n] if n < _LIMIT else _varint(n)) + key_bytes)
                append(b"\x12\x09\x11" + _pack_double(value))
                continue
            value_bytes = self._value(value)
            n = len(value_bytes)
            entry = key_bytes + b"\x12" + (_SMALL[n] if n < _LIMIT else _varint(n)) + value_bytes
            n = len(entry)
            append(b"\x0a" + (_SMALL[n] if n < _LIMIT else _varint(n)))
            append(entry)
        return b"".join(parts)

    def _value(self, value: JsonValue) -> bytes:
        cls = value.__class__
        if cls is float or cls is int:
            return b"\x11" + _pack_double(value)
        if cls is str:
            raw = value.encode()  # type: ignore[union-attr] # cls is str
            return b"\x1a" + _varint(len(raw)) + raw
        if cls is bool:
            return _TRUE if value else _FALSE
        if value is None:
            return _NULL
        if isinstance(value, dict) or isinstance(value, Mapping):  # noqa: SIM101 - dict first: ABC checks are slow
            body = self._struct(value)
            return b"\x2a" + _varint(len(body)) + body
        if isinstance(value, (list, tuple)):
            body = self._list(value)
            return b"\x32" + _varint(len(body)) + body
        if isinstance(value, numbers.Real):  # int/float subclasses, numpy scalars
            return b"\x11" + _pack_double(float(value))
        if isinstance(value, str):
            # str.encode, not str(): str() of a (str, Enum) member is "Cls.NAME".
            raw = str.encode(value)
            return b"\x1a" + _varint(len(raw)) + raw
        raise TypeError

    def _list(self, items: Sequence[JsonValue]) -> bytes:
        parts: list[bytes] = []
        for item in items:
            value_bytes = self._value(item)
            parts.append(b"\x0a" + _varint(len(value_bytes)) + value_bytes)
        return b"".join(parts)


def _explain(obj: JsonValue, path: str = "$") -> str:
    """Finds the first value under ``obj`` that a Struct cannot hold (slow path)."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                return f"{path}: map key {key!r} is {type(key).__name__}, not str"
            if not _is_unicode(key):
                return f"{path}: map key {key!r} is not valid Unicode (lone surrogate)"
            found = _explain(value, f"{path}.{key}")
            if found:
                return found
        return "" if path != "$" else "value cannot be encoded as a Struct"
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            found = _explain(item, f"{path}[{i}]")
            if found:
                return found
        return ""
    if obj is None or isinstance(obj, (bool, str)):
        if isinstance(obj, str) and not _is_unicode(obj):
            return f"{path}: string is not valid Unicode (lone surrogate)"
        return ""
    if isinstance(obj, numbers.Real):
        try:
            float(obj)
        except OverflowError:
            return f"{path}: integer {obj} is too large for a double"
        return ""
    return (
        f"{path}: {type(obj).__name__} is not JSON-like (use dict, list, str, number, bool, None)"
    )


def _is_unicode(text: str) -> bool:
    try:
        str.encode(text)
    except UnicodeEncodeError:
        return False
    return True
