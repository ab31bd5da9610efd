"""Guarantee 4's allowance: what counts as an interruption of a file's upload."""

from __future__ import annotations

import hashlib
from collections import Counter
from types import SimpleNamespace
from typing import TYPE_CHECKING

from sim.checker import Checker
from sim.trace import Trace

if TYPE_CHECKING:
    from pathlib import Path


def _content(path: Path) -> tuple[int, bytes]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).digest()


async def test_a_power_cut_interrupts_each_finished_file_not_yet_deleted(tmp_path: Path) -> None:
    """Confirmed by the cloud, then the power went before the delete: one chunk more is allowed.

    An ``UploadFiles`` batch sends such a small file whole again after the restart.
    A file already deleted is not interrupted by a later power cut.
    """
    deleted, pending = tmp_path / "deleted.capture", tmp_path / "pending.capture"
    deleted.write_bytes(b"d" * 10)
    pending.write_bytes(b"p" * 20)
    net = SimpleNamespace(finished={_content(deleted), _content(pending)}, interruptions=Counter())
    checker = Checker(Trace(lambda: 0.0), net, 8192)  # type: ignore[arg-type] # the two fields used
    checker.removing(deleted)
    deleted.unlink()
    checker.power_lost()
    assert net.interruptions == Counter({_content(pending): 1})


async def test_a_delete_the_power_cut_undoes_interrupts_the_file_it_brings_back(
    tmp_path: Path,
) -> None:
    """Deleted after the cloud confirmed it, but the delete was not durable: the cut
    brings the file back, to be sent whole again in a batch, which this cut allows.

    (``power_lost`` runs before the undo, when the file still counts as deleted.)
    """
    path = tmp_path / "note.txt"
    path.write_bytes(b"n" * 30)
    net = SimpleNamespace(finished={_content(path)}, interruptions=Counter())
    checker = Checker(Trace(lambda: 0.0), net, 8192)  # type: ignore[arg-type] # the two fields used
    checker.removing(path)
    checker.power_lost()
    assert net.interruptions == Counter()
    checker.resurrected(path)
    assert net.interruptions == Counter({_content(path): 1})
