"""Stops h2 from hex-dumping every received DATA frame in full.

h2 logs each received frame with ``logger.trace("Received frame: %s", repr(frame))``
even when its logger is the no-op ``DummyLogger``, so ``repr`` runs for every
frame. hyperframe's ``_raw_data_repr`` hexlifies the *whole* body and then keeps
only its first 20 hex digits. For a 1 MiB chunk that is 2 MiB of hex text per
chunk, thrown away: 10 % of the cloud server's CPU in the binary-sync profile
(docs/performance.md). The replacement hexlifies only the bytes the result can
show, so every repr string is the same as before.

Both sides of Ferry's gRPC use it: the sync client (``cloud_link``) and the
cloud server (``cloud.server``). ``install`` is idempotent.
"""

from __future__ import annotations

import binascii

import hyperframe.frame

# 11 bytes are 22 hex digits: more than the 20 kept, so the "..." rule still sees
# a long string exactly when the full body would have given one.
_SHOWN_BYTES = 11


def raw_data_repr(data: bytes | memoryview | None) -> str:
    """hyperframe's frame-body repr, computed from the body's first 11 bytes only."""
    if not data:
        return "None"
    r = binascii.hexlify(data[:_SHOWN_BYTES]).decode("ascii")
    if len(r) > 20:
        r = r[:20] + "..."
    return "<hex:" + r + ">"


def install() -> None:
    """Replaces ``hyperframe.frame._raw_data_repr`` with ``raw_data_repr`` (idempotent)."""
    hyperframe.frame._raw_data_repr = raw_data_repr
