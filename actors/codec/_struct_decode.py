"""``google.protobuf.Struct`` bytes to dicts: a fast decoder and the reference one it falls back on.

Decoding is the cloud's ingest hot path, with its own entry caches and exactness
rules, so it is kept apart from the encoder in ``_struct``.
"""

from __future__ import annotations

import struct as _binary
from typing import TYPE_CHECKING

from actors.codec._pbwire import (
    WIRE_FIXED64,
    WIRE_LEN,
    WIRE_VARINT,
    WireError,
    decode_varint,
    read_len_delimited,
    skip_field,
)

if TYPE_CHECKING:
    from actors.codec._struct import JsonValue

_unpack_double = _binary.Struct("<d").unpack_from


def decode_struct(
    buf: bytes | memoryview, start: int = 0, end: int | None = None
) -> dict[str, JsonValue]:
    """Decodes Struct bytes ``buf[start:end]`` into a dict.

    Unknown fields are skipped; a map entry without a value decodes as ``None``.

    Raises:
        WireError: the bytes are not a valid Struct.
    """
    stop = len(buf) if end is None else end
    data = fast_input(buf, start, stop)
    if data is not None:
        try:
            if data is buf:
                return fast_struct(data, start, stop)
            return fast_struct(data, 0, len(data))
        except FALLBACK:
            pass  # the reference decoder below gives the result or the exact error
    return _decode_struct(buf, start, stop)


# --- The fast decoder -------------------------------------------------------------------------
#
# Decoding is the cloud's ingest hot path: every tabular reading goes through it,
# and the reference decoder below (about 50 ``decode_varint`` calls and a dozen
# tuple-returning helper calls per reading) manages only ~25k readings/s. The fast
# functions handle the bytes every encoder writes (Ferry's, protoc's, Go's):
# fields in schema order, one-byte tags, each map entry a key then a value, each
# Value holding one kind. They read bytes by index, inline one-byte varints
# (``n = buf[pos]``: a length under 128 is nearly every length), and build no
# (value, pos) tuples on the common paths.
#
# On top of that, ``fast_struct`` remembers entries it has decoded (the same field
# names repeat in every reading) and recognises them again with one slice and one
# dict lookup, in three "lanes": number entries by their bytes up to the double,
# short string/bool/null entries whole, and Struct-valued entries (``"readings"``)
# by their bytes up to the nested Struct. A remembered byte string pins down every
# tag and length it covers, so a hit needs no further checks but the message's end.
#
# Anything else (unknown fields, repeated fields, multi-byte tags, truncation,
# invalid UTF-8, wrong wire types) makes them give up by raising one of
# ``FALLBACK``, and the caller decodes the message again with the reference
# decoder (``_decode_struct`` and the functions after it, the straightforward
# field-by-field loop). So the fast path never has to produce an error itself,
# and the result, or the ``WireError`` with its message and offset, is exactly the
# reference decoder's. Re-decoding costs time only for malformed or unusual input.
# tests/codec/test_fast_decode.py checks both halves of this: the fast path takes
# everything Ferry writes, and mutated or random bytes decode (or fail) as the
# reference decoder decodes them.
#
# The rule that keeps this exact: a fast function returns only when it has checked
# that every byte it used lies inside its message and that the message holds nothing
# it skipped. Reads past a message's end (into its parent, or past the buffer:
# IndexError) happen only on a path whose next check then fails.


class Bail(Exception):
    """The fast decoder met bytes it leaves to the reference decoder."""


# What the fast decoder raises when it gives up: its own ``Bail``, a multi-byte
# varint that does not end in time (``WireError`` from ``decode_varint``), bytes
# not UTF-8, a read past the buffer, a double cut short, or nesting too deep.
FALLBACK = (Bail, WireError, UnicodeDecodeError, IndexError, _binary.error, RecursionError)

# Map entries seen before, for the fast lanes of ``fast_struct``: a number entry's
# bytes up to the double -> its key; a short string, bool or null entry's bytes ->
# its key and value (values often repeat too: states, flags, frame names); a
# Struct-valued entry's bytes up to the nested Struct -> its key. Sharing one str
# per field name also keeps ingested dicts small. Only immutable values are shared.
# Module-level, so every reader benefits; each is emptied when full, so that
# adversarial input cannot grow them without limit.
_NUMBER_ENTRIES: dict[bytes, str] = {}
_CONSTANT_ENTRIES: dict[bytes, tuple[str, JsonValue]] = {}
_STRUCT_ENTRIES: dict[bytes, str] = {}
_ENTRIES_LIMIT = 4096
_CONSTANT_ENTRY_BYTES = 64  # whole entries up to this size (longer strings seldom repeat)
_CONSTANT_TYPES = frozenset((str, bool, type(None)))


def fast_input(buf: bytes | memoryview, start: int, stop: int) -> bytes | None:
    """The bytes the fast decoder should read, or None to use the reference decoder.

    ``bytes`` is read in place (``buf`` itself is returned); a byte-format memoryview
    or a bytearray is copied from ``start`` to ``stop`` (so offsets then start at 0).
    Out-of-range bounds go to the reference decoder, which reports them as it always did.
    """
    if not 0 <= start <= stop <= len(buf):
        return None
    if type(buf) is bytes:
        return buf
    if isinstance(buf, bytearray) or (
        isinstance(buf, memoryview) and buf.ndim == 1 and buf.format == "B"
    ):
        return bytes(buf[start:stop])
    return None


def fast_struct(buf: bytes, pos: int, end: int) -> dict[str, JsonValue]:
    """Decodes the Struct ``buf[pos:end]``; raises one of ``FALLBACK`` if it cannot."""
    out: dict[str, JsonValue] = {}
    numbers = _NUMBER_ENTRIES
    constants = _CONSTANT_ENTRIES
    structs = _STRUCT_ENTRIES
    while pos < end:
        # Fast lane 1: a number entry seen before. Its bytes up to the double are
        # 0x0A L 0x0A K <key> 0x12 0x09 0x11 with L = K + 13; K is at pos + 3. A hit
        # proves the whole shape (both lengths and every tag), so only the double
        # is left to read. A miss (any other entry) costs one lookup.
        start = pos + buf[pos + 3] + 7
        key = numbers.get(buf[pos:start])
        if key is not None:
            pos = start + 8
            if pos > end:
                raise Bail
            out[key] = _unpack_double(buf, start)[0]
            continue
        # Fast lane 2: a short entry seen before, whole, holding a string, bool or
        # null (immutable, so the decoded value can be shared): 0x0A L, L bytes.
        entry_end = pos + 2 + buf[pos + 1]
        if entry_end - pos <= _CONSTANT_ENTRY_BYTES:
            found = constants.get(buf[pos:entry_end])
            if found is not None:
                if entry_end > end:
                    raise Bail
                out[found[0]] = found[1]
                pos = entry_end
                continue
        # Fast lane 3: an entry holding a Struct, whose bytes up to the nested
        # Struct's own were seen before: 0x0A L 0x0A K <key> 0x12 M 0x2A N, with
        # one-byte lengths L = K + M + 4 and M = N + 2. Every Viam reading has one,
        # {"readings": {...}}.
        key = structs.get(buf[pos : start + 1])
        if key is not None:
            entry_end = start + 1 + buf[start]
            if entry_end > end:
                raise Bail
            out[key] = fast_struct(buf, start + 1, entry_end)
            pos = entry_end
            continue
        # Map entry: tag 0x0A (fields=1, LEN), then its length.
        entry_start = pos
        if buf[pos] != 0x0A:
            raise Bail  # an unknown field (the reference skips it) or a multi-byte tag
        n = buf[pos + 1]
        if n < 0x80:
            pos += 2
        else:
            n, pos = decode_varint(buf, pos + 1, end)
        entry_end = pos + n
        if entry_end > end:
            raise Bail
        # The key: tag 0x0A, length, UTF-8.
        if buf[pos] != 0x0A:
            raise Bail  # an empty entry, or the value first
        n = buf[pos + 1]
        if n < 0x80:
            pos += 2
        else:
            n, pos = decode_varint(buf, pos + 1, entry_end)
        key_start = pos
        key_end = pos + n
        if key_end > entry_end:
            raise Bail
        key = buf[pos:key_end].decode()
        pos = entry_end
        if key_end == entry_end:
            out[key] = None  # an entry without a value
            continue
        # The value: tag 0x12, length, then a Value. Most are numbers, a Value of
        # exactly tag 0x11 and a double (9 bytes), so the entry ends 11 bytes on.
        if buf[key_end] != 0x12:
            raise Bail
        n = buf[key_end + 1]
        if n == 9 and buf[key_end + 2] == 0x11 and key_end + 11 == entry_end:
            out[key] = _unpack_double(buf, key_end + 3)[0]
            if key_start == entry_start + 4:  # one-byte lengths: remember it for lane 1
                if len(numbers) >= _ENTRIES_LIMIT:
                    numbers.clear()
                numbers[buf[entry_start : key_end + 3]] = key
            continue
        if n < 0x80:
            start = key_end + 2
        else:
            n, start = decode_varint(buf, key_end + 1, entry_end)
        if start + n != entry_end:
            raise Bail  # the value is not the entry's last field
        if n and buf[start] == 0x2A:
            # A struct_value, inline (one call fewer): every Viam reading is one,
            # {"readings": {...}}.
            n = buf[start + 1]
            if n < 0x80:
                start += 2
            else:
                n, start = decode_varint(buf, start + 1, entry_end)
            if start + n != entry_end:
                raise Bail
            out[key] = fast_struct(buf, start, entry_end)
            if start == key_end + 4 and key_start == entry_start + 4:  # one-byte lengths
                if len(structs) >= _ENTRIES_LIMIT:
                    structs.clear()
                structs[buf[entry_start:start]] = key
            continue
        value = out[key] = fast_value(buf, start, entry_end)
        if (
            value.__class__ in _CONSTANT_TYPES
            and entry_end - entry_start <= _CONSTANT_ENTRY_BYTES
            and key_start == entry_start + 4  # lane 2 reads the length as one byte
        ):
            if len(constants) >= _ENTRIES_LIMIT:
                constants.clear()
            constants[buf[entry_start:entry_end]] = (key, value)
    return out


def fast_value(buf: bytes, pos: int, end: int) -> JsonValue:
    """Decodes the Value ``buf[pos:end]``, one field; raises one of ``FALLBACK`` if it cannot."""
    if pos == end:
        return None  # no kind set
    tag = buf[pos]
    if tag == 0x11:  # number_value: a double
        if pos + 9 == end:
            number: float = _unpack_double(buf, pos + 1)[0]
            return number
    elif tag == 0x1A:  # string_value
        n = buf[pos + 1]
        if n < 0x80:
            pos += 2
        else:
            n, pos = decode_varint(buf, pos + 1, end)
        if pos + n == end:
            return buf[pos:end].decode()
    elif tag == 0x20:  # bool_value: a one-byte varint
        n = buf[pos + 1]
        if pos + 2 == end and n < 0x80:
            return n != 0
    elif tag in (0x2A, 0x32):  # struct_value, list_value
        n = buf[pos + 1]
        start = pos + 2
        if n >= 0x80:
            n, start = decode_varint(buf, pos + 1, end)
        if start + n == end:
            if tag == 0x2A:
                return fast_struct(buf, start, end)
            return _fast_list(buf, start, end)
    elif tag == 0x08 and pos + 2 == end and buf[pos + 1] < 0x80:  # null_value
        return None
    raise Bail  # another field, more than one field, or a varint past one byte


def _fast_list(buf: bytes, pos: int, end: int) -> list[JsonValue]:
    """Decodes the ListValue ``buf[pos:end]``; raises one of ``FALLBACK`` if it cannot."""
    items: list[JsonValue] = []
    append = items.append
    while pos < end:
        # values: tag 0x0A, length, Value. A number (tag 0x11, a double) is inline.
        if buf[pos] != 0x0A:
            raise Bail
        n = buf[pos + 1]
        if n == 9 and buf[pos + 2] == 0x11:
            pos += 11
            if pos > end:
                raise Bail
            append(_unpack_double(buf, pos - 8)[0])
            continue
        if n < 0x80:
            pos += 2
        else:
            n, pos = decode_varint(buf, pos + 1, end)
        item_end = pos + n
        if item_end > end:
            raise Bail
        append(fast_value(buf, pos, item_end))
        pos = item_end
    return items


# --- The reference decoder --------------------------------------------------------------------
#
# Field by field, as the protobuf spec reads: the behaviour the fast decoder must
# match, and what decodes (or rejects) whatever the fast decoder gives up on.


def _decode_struct(buf: bytes | memoryview, start: int, stop: int) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {}
    pos = start
    while pos < stop:
        tag, pos = decode_varint(buf, pos, stop)
        if tag == 0x0A:  # fields: map entry
            entry_start, entry_end = read_len_delimited(buf, pos, stop)
            key, value = _decode_entry(buf, entry_start, entry_end)
            out[key] = value
            pos = entry_end
        else:
            pos = skip_field(buf, pos, tag & 7, stop)
    return out


def _decode_entry(buf: bytes | memoryview, pos: int, end: int) -> tuple[str, JsonValue]:
    key = ""
    value: JsonValue = None
    while pos < end:
        tag, pos = decode_varint(buf, pos, end)
        if tag == 0x0A:
            s, e = read_len_delimited(buf, pos, end)
            key = _utf8(buf, s, e)
            pos = e
        elif tag == 0x12:
            s, e = read_len_delimited(buf, pos, end)
            value = _decode_value(buf, s, e)
            pos = e
        else:
            pos = skip_field(buf, pos, tag & 7, end)
    return key, value


def _decode_value(buf: bytes | memoryview, pos: int, end: int) -> JsonValue:
    value: JsonValue = None
    while pos < end:
        tag, pos = decode_varint(buf, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 2 and wire == WIRE_FIXED64:
            if pos + 8 > end:
                raise WireError("truncated number_value", pos)
            value = _unpack_double(buf, pos)[0]
            pos += 8
        elif field == 3 and wire == WIRE_LEN:
            s, pos = read_len_delimited(buf, pos, end)
            value = _utf8(buf, s, pos)
        elif field == 4 and wire == WIRE_VARINT:
            raw, pos = decode_varint(buf, pos, end)
            value = raw != 0
        elif field == 1 and wire == WIRE_VARINT:
            pos = decode_varint(buf, pos, end)[1]
            value = None
        elif field == 5 and wire == WIRE_LEN:
            s, pos = read_len_delimited(buf, pos, end)
            value = _decode_struct(buf, s, pos)
        elif field == 6 and wire == WIRE_LEN:
            s, pos = read_len_delimited(buf, pos, end)
            value = _decode_list(buf, s, pos)
        elif field in (1, 2, 3, 4, 5, 6):
            raise WireError(f"Value field {field} has wire type {wire}", pos)
        else:
            pos = skip_field(buf, pos, wire, end)
    return value


def _decode_list(buf: bytes | memoryview, pos: int, end: int) -> list[JsonValue]:
    items: list[JsonValue] = []
    while pos < end:
        tag, pos = decode_varint(buf, pos, end)
        if tag == 0x0A:
            s, pos = read_len_delimited(buf, pos, end)
            items.append(_decode_value(buf, s, pos))
        else:
            pos = skip_field(buf, pos, tag & 7, end)
    return items


def _utf8(buf: bytes | memoryview, start: int, end: int) -> str:
    try:
        return str(buf[start:end], "utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"string is not valid UTF-8: {exc.reason}", start) from None
