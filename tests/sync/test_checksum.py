"""Chunk CRC-32: the same values as ``zlib.crc32``, from the faster implementation."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from actors import checksum


@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=2**32 - 1))
def test_crc32_equals_zlibs_so_either_end_may_use_either(data: bytes, start: int) -> None:
    assert checksum.crc32(data) == zlib.crc32(data)
    assert checksum.crc32(memoryview(data), start) == zlib.crc32(data, start)


def test_a_megabyte_chunk_checks_the_same() -> None:
    chunk = bytes(range(256)) * 4096
    assert checksum.crc32(chunk) == zlib.crc32(chunk) == 0x04D0_E435


def test_uses_zlib_ng_where_installed() -> None:
    # zlib-ng is a dependency (pyproject.toml): the fallback is for platforms without a wheel.
    assert checksum._crc32 is not zlib.crc32
