"""BSON in and out of ``TabularDataByMQL``: pipeline stages in, result documents out.

Both directions use :data:`CODEC_OPTIONS`: datetimes decode as aware UTC
values (comparable with the store's documents) and plain ``dict`` documents.
BSON datetimes have millisecond precision, so sub-millisecond parts of result
datetimes are truncated, as with any MongoDB driver.
"""

from __future__ import annotations

import math
import re
from datetime import UTC
from typing import TYPE_CHECKING

import bson
from bson.codec_options import CodecOptions
from bson.errors import BSONError

from cloud.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from cloud.model import Document

CODEC_OPTIONS: CodecOptions[dict[str, object]] = CodecOptions(
    document_class=dict, tz_aware=True, tzinfo=UTC
)
"""Plain dicts; datetimes aware, in UTC."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def decode_stages(raw: Sequence[bytes]) -> list[dict[str, object]]:
    """Decodes ``mql_binary``: each element must be one BSON document with one ``$`` key.

    Only the shape is checked here; :func:`cloud.query.mql.compile_pipeline`
    validates each stage's operator and arguments.

    Raises:
        InvalidArgument: an element is not exactly one valid BSON document, or
            does not have exactly one key starting with ``$``; the message names
            the element, e.g. ``mql_binary[2]: not a BSON document (...)``.
    """
    stages: list[dict[str, object]] = []
    for i, data in enumerate(raw):
        try:
            stage = bson.decode(bytes(data), codec_options=CODEC_OPTIONS)
        except (BSONError, ValueError, TypeError, OverflowError) as exc:
            raise InvalidArgument(f"mql_binary[{i}]: not a BSON document ({exc})") from None
        keys = list(stage)
        if len(keys) != 1 or not keys[0].startswith("$"):
            raise InvalidArgument(
                f"mql_binary[{i}]: stage must have exactly one operator, got {keys}"
            )
        stages.append(stage)
    return stages


def encode_documents(docs: Iterable[Document]) -> list[bytes]:
    """Encodes result documents, one BSON document each (``raw_data``).

    Python values BSON cannot hold are converted explicitly first (see
    :func:`to_bson_value`): integers outside int64 become doubles, tuples become
    arrays, and strings that are not valid Unicode get U+FFFD replacements.

    Raises:
        InvalidArgument: a result has a field name containing a NUL byte, which
            BSON cannot represent (the client should project it away).
        bson.errors.InvalidDocument: a value of a type BSON cannot encode (a bug:
            the pipeline only produces values decoded from BSON or the store).
    """
    out: list[bytes] = []
    for i, doc in enumerate(docs):
        converted = to_bson_value(doc, f"result {i}")
        assert isinstance(converted, dict)
        try:
            out.append(bson.encode(converted, codec_options=CODEC_OPTIONS))
        except UnicodeEncodeError:  # rare, so only then pay for a second pass
            repaired = to_bson_value(doc, f"result {i}", repair_text=True)
            assert isinstance(repaired, dict)
            out.append(bson.encode(repaired, codec_options=CODEC_OPTIONS))
    return out


def to_bson_value(value: object, where: str = "value", *, repair_text: bool = False) -> object:
    """``value`` with everything BSON cannot hold converted, recursively.

    - ``int`` outside the int64 range → the nearest ``float`` (±infinity beyond
      the double range): MongoDB itself promotes overflowing sums to double.
    - ``tuple`` → ``list`` (BSON has one sequence type).
    - With ``repair_text``, unpaired surrogates in strings and field names
      (JSON's ``"\\ud800"`` escapes decode to them; UTF-8 cannot hold them)
      → U+FFFD.
    - Everything else is returned as is; ``bool`` stays ``bool``.

    Raises:
        InvalidArgument: a field name contains a NUL byte.
    """
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                raise InvalidArgument(
                    f"{where}: field name {key!r} contains a NUL byte, which BSON cannot hold"
                )
            name = _repair(key) if repair_text and isinstance(key, str) else key
            out[name] = to_bson_value(item, where, repair_text=repair_text)
        return out
    if isinstance(value, list | tuple):
        return [to_bson_value(item, where, repair_text=repair_text) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if repair_text and isinstance(value, str):
        return _repair(value)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _repair(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)
