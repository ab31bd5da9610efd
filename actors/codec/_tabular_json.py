"""Tabular records straight to ``(requested, received, JSON)`` rows, for the cloud's ingest.

Decoding a reading's Struct into dicts and then encoding those as JSON is most
of what a tabular reading costs the cloud (``python -m bench.ingest_stages``).
But a collector writes the same shape every time: the same keys, the same
structure, only the numbers change. So the transcoder learns a shape once and
then only fills in numbers. For a Struct of a given length it keeps the bytes
between its doubles and a JSON template with a slot for each double, and it
checks the template against the general path (decode, then ``encode``) on the
record it learns from. A later Struct of that length whose bytes between the
doubles are the same bytes is the same value but for the numbers, so its JSON
is one ``struct.unpack_from`` and one ``%`` format away.

Anything else takes the general path: a shape not seen yet, one that changed
(strings of another length), a non-finite number (which ``encode`` spells as it
chooses), or bytes the fast decoders leave to the reference decoder. So the
output is always exactly the general path's.
"""

from __future__ import annotations

import json
import struct as _binary
from typing import TYPE_CHECKING, NamedTuple, final

from actors.codec._pbwire import WireError, decode_varint
from actors.codec._records_decode import STRUCT, _fast_metadata, decode_sensor_data, fast_fields
from actors.codec._struct_decode import FALLBACK, Bail

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.codec._struct import JsonObject

# A learned shape costs its bytes (and about as much again in template), so
# only Structs up to this size are learned, and only this many shapes are kept
# (emptied when full, so input with ever-new shapes cannot grow it).
_LEARN_BYTES = 16 * 1024
_PLANS_LIMIT = 512
# A length whose learned shape no longer matches (or that had none to learn)
# is learned again after this many misses: a collector whose shape changed
# gets its fast path back, and shapes that alternate at one length pay the
# learning walk on one record in this many.
_RELEARN_AFTER = 8


class _Plan(NamedTuple):
    """A learned Struct shape: how to split its bytes, what they must be, the JSON to fill."""

    unpack: Callable[[bytes, int], tuple[bytes | float, ...]]  # gap, double, gap, ..., gap
    gaps: tuple[bytes | float, ...]  # the bytes around the doubles
    template: str  # the JSON, with a %r slot per double


class _Unlearnable(Exception):
    """The Struct holds something a template cannot stand for (left to the general path)."""


@final
class TabularTranscoder:
    """Turns tabular ``SensorData`` records into rows of their times and JSON text.

    ``encode`` is the general path's JSON encoder for a decoded Struct; it must
    spell a finite float as ``repr`` does (as ``json.dumps`` does), since learned
    templates do. One transcoder may be shared by threads: a plan is immutable
    and replaced whole, and a lost update to a miss count only delays learning.

    Example::

        rows = TabularTranscoder(json.dumps)
        requested_ns, received_ns, text = rows.row(body)
    """

    def __init__(self, encode: Callable[[JsonObject], str]) -> None:
        self._encode = encode
        self._plans: dict[int, _Plan | None] = {}  # Struct length -> its shape (None: none)
        self._misses: dict[int, int] = {}

    def row(self, body: bytes) -> tuple[int, int, str] | None:
        """``(time_requested_ns, time_received_ns, JSON of the struct)`` of one record.

        Returns None if the record holds no struct (binary data).

        Raises:
            WireError: ``body`` is not a valid SensorData.
        """
        try:
            requested, received, start, end = _split(body)
        except FALLBACK:
            return self._general(body)
        length = end - start
        plan = self._plans.get(length)
        if plan is not None:
            parts = plan.unpack(body, start)
            if parts[0::2] == plan.gaps:
                numbers = parts[1::2]
                total = sum(numbers)  # type: ignore[arg-type]
                if total - total == 0:  # every number finite (or an overflow: general path)
                    return requested, received, plan.template % numbers
                return self._general(body)
        found = self._general(body)
        if found is not None:
            self._miss(body, start, end, found[2])
        return found

    def _general(self, body: bytes) -> tuple[int, int, str] | None:
        record = decode_sensor_data(body)
        if record.struct is None:
            return None
        return record.time_requested_ns, record.time_received_ns, self._encode(record.struct)

    def _miss(self, body: bytes, start: int, end: int, text: str) -> None:
        """Learns the Struct's shape if its length has none yet, or again after misses."""
        length = end - start
        plans = self._plans
        if length in plans:
            misses = self._misses.get(length, 0) + 1
            if misses < _RELEARN_AFTER:
                self._misses[length] = misses
                return
            self._misses.pop(length, None)
        elif len(plans) >= _PLANS_LIMIT:
            plans.clear()
            self._misses.clear()
        plans[length] = _learn(body, start, end, text) if length <= _LEARN_BYTES else None


def _split(body: bytes) -> tuple[int, int, int, int]:
    """The record's times and its Struct's span; raises one of ``FALLBACK`` if unsure."""
    meta_start, meta_end, kind, start, end = fast_fields(body, 0, len(body))
    if kind != STRUCT:
        raise Bail
    if meta_start == meta_end:
        return 0, 0, start, end
    requested, received, _, _ = _fast_metadata(body, meta_start, meta_end)
    return requested, received, start, end


def _learn(body: bytes, start: int, end: int, text: str) -> _Plan | None:
    """The shape of the Struct ``body[start:end]`` whose general-path JSON is ``text``.

    None if it cannot be learned, or if the template does not give ``text``
    back (the walk and the decoder disagree: the general path stays in charge).
    """
    gaps: list[bytes] = []
    pieces: list[str | None] = []
    try:
        gap_start = _walk_struct(body, start, end, gaps, pieces, start)
    except (_Unlearnable, WireError, IndexError, UnicodeDecodeError, RecursionError):
        return None
    gaps.append(body[gap_start:end])
    layout = "".join(f"{len(gap)}sd" for gap in gaps[:-1])
    unpack = _binary.Struct(f"<{layout}{len(gaps[-1])}s").unpack_from
    template = "".join("%r" if p is None else p.replace("%", "%%") for p in pieces)
    parts = unpack(body, start)
    if template % parts[1::2] != text:
        return None
    return _Plan(unpack, tuple(gaps), template)


def _walk_struct(
    buf: bytes, pos: int, end: int, gaps: list[bytes], pieces: list[str | None], gap_start: int
) -> int:
    """Walks a Struct's entries, appending JSON pieces (None: a double's slot) and the
    bytes before each double to ``gaps``; returns where the current gap starts."""
    pieces.append("{")
    keys: set[str] = set()
    while pos < end:
        if buf[pos] != 0x0A:
            raise _Unlearnable  # an unknown field
        n, pos = _length(buf, pos + 1)
        entry_end = pos + n
        if entry_end > end or buf[pos] != 0x0A:
            raise _Unlearnable  # cut short, or no key first
        n, pos = _length(buf, pos + 1)
        key = buf[pos : pos + n].decode()
        pos += n
        if key in keys or pos > entry_end:
            raise _Unlearnable  # a repeated key: the decoder keeps the last one
        keys.add(key)
        pieces.append(("," if len(keys) > 1 else "") + json.dumps(key) + ":")
        if pos == entry_end:
            pieces.append("null")  # an entry without a value
            continue
        if buf[pos] != 0x12:
            raise _Unlearnable
        n, pos = _length(buf, pos + 1)
        if pos + n != entry_end:
            raise _Unlearnable  # the value is not the entry's last field
        gap_start = _walk_value(buf, pos, entry_end, gaps, pieces, gap_start)
        pos = entry_end
    pieces.append("}")
    return gap_start


def _walk_value(
    buf: bytes, pos: int, end: int, gaps: list[bytes], pieces: list[str | None], gap_start: int
) -> int:
    """As ``_walk_struct``, for one Value holding exactly one field."""
    if pos == end:
        pieces.append("null")  # no kind set
        return gap_start
    tag = buf[pos]
    if tag == 0x11 and pos + 9 == end:  # number_value
        gaps.append(buf[gap_start : pos + 1])
        pieces.append(None)
        return end
    if tag == 0x1A:  # string_value
        n, start = _length(buf, pos + 1)
        if start + n == end:
            pieces.append(json.dumps(buf[start:end].decode()))
            return gap_start
    elif tag == 0x20 and pos + 2 == end and buf[pos + 1] < 0x80:  # bool_value
        pieces.append("true" if buf[pos + 1] else "false")
        return gap_start
    elif tag == 0x08 and pos + 2 == end and buf[pos + 1] < 0x80:  # null_value
        pieces.append("null")
        return gap_start
    elif tag == 0x2A:  # struct_value
        n, start = _length(buf, pos + 1)
        if start + n == end:
            return _walk_struct(buf, start, end, gaps, pieces, gap_start)
    elif tag == 0x32:  # list_value: repeated Value, field 1
        n, start = _length(buf, pos + 1)
        if start + n == end:
            return _walk_list(buf, start, end, gaps, pieces, gap_start)
    raise _Unlearnable


def _walk_list(
    buf: bytes, pos: int, end: int, gaps: list[bytes], pieces: list[str | None], gap_start: int
) -> int:
    pieces.append("[")
    first = True
    while pos < end:
        if buf[pos] != 0x0A:
            raise _Unlearnable
        n, pos = _length(buf, pos + 1)
        if pos + n > end:
            raise _Unlearnable
        if not first:
            pieces.append(",")
        first = False
        gap_start = _walk_value(buf, pos, pos + n, gaps, pieces, gap_start)
        pos += n
    pieces.append("]")
    return gap_start


def _length(buf: bytes, pos: int) -> tuple[int, int]:
    """A length varint at ``pos``: the length and where its field starts."""
    n = buf[pos]
    if n < 0x80:
        return n, pos + 1
    return decode_varint(buf, pos, len(buf))
