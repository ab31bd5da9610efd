"""What is true of the simulated world right now: the fault windows in force.

The world's scheduler opens and closes windows as the fault schedule says; the
network, disk and components ask here, in O(1), instead of scanning the schedule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from sim.faults import Fault, FaultKind


@final
class Conditions:
    """The open fault windows, by kind."""

    def __init__(self) -> None:
        self._open: dict[FaultKind, list[Fault]] = {}

    def open(self, fault: Fault) -> None:
        """A window starts."""
        self._open.setdefault(fault.kind, []).append(fault)

    def close(self, fault: Fault) -> None:
        """A window ends."""
        self._open[fault.kind].remove(fault)

    def get(self, kind: FaultKind) -> Fault | None:
        """The strongest open window of ``kind``, or None."""
        faults = self._open.get(kind)
        if not faults:
            return None
        return max(faults, key=lambda f: f.magnitude)

    def clear(self) -> None:
        """Every window closes (the heal phase)."""
        self._open.clear()
