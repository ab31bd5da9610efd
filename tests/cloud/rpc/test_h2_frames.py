"""HTTP/2 tuning of Ferry's gRPC (``cloud/rpc/_h2.py``, ``actors/adapters/h2_repr.py``).

- The server advertises large DATA frames, the client adopts the limit, and a
  3 MiB upload in 1 MiB chunks completes under it.
- The cheaper frame repr gives exactly hyperframe's string for every body.
"""

from __future__ import annotations

import binascii
import os

import hyperframe.frame
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.adapters import h2_repr
from cloud.aio_loop import run_asyncio
from cloud.rpc._h2 import MAX_FRAME_BYTES, LargeFrameServer
from protos.gen.ferry.sync import v1 as resumable_pb
from tests.cloud.rpc.conftest import authed_metadata, start_server
from tests.cloud.wire import upload

ARBITRARY = resumable_pb.UploadKind.ARBITRARY_FILE


def _hyperframe_6_1_repr(data: bytes | None) -> str:
    """hyperframe 6.1's ``_raw_data_repr``, the behaviour the replacement keeps."""
    if not data:
        return "None"
    r = binascii.hexlify(data).decode("ascii")
    if len(r) > 20:
        r = r[:20] + "..."
    return "<hex:" + r + ">"


@given(st.one_of(st.none(), st.binary(max_size=64)))
def test_frame_repr_is_hyperframes_string_from_a_prefix_only(data):
    assert h2_repr.raw_data_repr(data) == _hyperframe_6_1_repr(data)


def test_install_replaces_hyperframes_repr():
    h2_repr.install()
    frame = hyperframe.frame.DataFrame(1, data=b"\x01" * (1 << 20))
    assert hyperframe.frame._raw_data_repr is h2_repr.raw_data_repr
    assert "<hex:0101010101010101010101...>" not in repr(frame)  # cut at 20 digits
    assert "<hex:01010101010101010101...>" in repr(frame)


def test_the_client_adopts_the_servers_large_frame_limit_and_uploads_with_it(tmp_path):
    data = os.urandom(3 << 20)

    async def scenario() -> int:
        async with start_server(tmp_path) as srv:
            md = await authed_metadata(srv, "org-a", "loc-a")
            channel = srv.channel()
            done = await upload(channel, md, data, part_id="part-1", path="big.bin", kind=ARBITRARY)
            assert done.file_id
            h2 = channel._protocol.connection._connection
            return int(h2.max_outbound_frame_size)

    assert run_asyncio(scenario()) == MAX_FRAME_BYTES


@pytest.mark.parametrize("size", [(1 << 14) - 1, 1 << 24])
def test_a_frame_size_outside_rfc_9113_is_refused(size):
    with pytest.raises(ValueError, match="max_frame_bytes must be within"):
        LargeFrameServer([], max_frame_bytes=size)
