"""The export's progress bar (one line on stderr, redrawn with ``\\r``) and its summary.

Live drawing is for people: it is off with ``--no-progress`` and when stderr is
not a terminal, and then only the summary line is printed. Redraws are
throttled (``min_interval``) so a fast export does not spend its time on the
terminal. The clock is injected, so tests assert exact rates.

Example::

    progress = Progress(sys.stderr, live=sys.stderr.isatty())
    progress.begin("tabular", total=5000, items=0, nbytes=0)
    progress.advance(1000, 81_920)
    progress.end()
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO, final

if TYPE_CHECKING:
    from collections.abc import Callable

BAR_WIDTH = 20
_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_bytes(n: float) -> str:
    """``n`` bytes in decimal units with three significant digits (``1.23 MB``)."""
    for unit in _UNITS:
        if abs(n) < 1000 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns on its last unit


@final
class Progress:
    """Counts items and bytes of the kind being exported; draws them when ``live``.

    Args:
        stream: where to draw (stderr).
        live: draw the bar; otherwise stay silent until ``summary``.
        clock: monotonic seconds (injected for tests).
        min_interval: the least time between two redraws, in seconds.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.1,
    ) -> None:
        self._stream = stream
        self._live = live
        self._clock = clock
        self._min_interval = min_interval
        self._kind = ""
        self._total = self.items = self.nbytes = 0
        self._run_items = 0  # items this run (the rate ignores what earlier runs did)
        self._started = self._drawn_at = 0.0
        self._width = 0

    def begin(self, kind: str, *, total: int, items: int, nbytes: int) -> None:
        """Starts counting ``kind``; ``items``/``nbytes`` were done by an earlier run."""
        self._kind, self._total, self.items, self.nbytes = kind, total, items, nbytes
        self._run_items = 0
        self._started = self._clock()
        self._draw(force=True)

    def advance(self, items: int, nbytes: int) -> None:
        """Counts one more page."""
        self.items += items
        self.nbytes += nbytes
        self._run_items += items
        self._draw(force=False)

    def end(self) -> None:
        """Draws the kind's final state and moves to a new line."""
        if self._live:
            self._draw(force=True)
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0

    def line(self) -> str:
        """The bar's text for the current counts."""
        total = max(self._total, self.items)  # data added meanwhile: never over 100%
        share = self.items / total if total else 1.0
        filled = round(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        elapsed = self._clock() - self._started
        rate = f"{self._run_items / elapsed:.0f}/s" if elapsed > 0 else "-/s"
        return (
            f"{self._kind:<7} [{bar}] {self.items}/{total} {share:4.0%} "
            f"{human_bytes(self.nbytes)} {rate}"
        )

    def _draw(self, *, force: bool) -> None:
        if not self._live:
            return
        now = self._clock()
        if not force and now - self._drawn_at < self._min_interval:
            return
        self._drawn_at = now
        text = self.line()
        pad = " " * max(0, self._width - len(text))  # erase a longer previous line
        self._width = len(text)
        self._stream.write(f"\r{text}{pad}")
        self._stream.flush()

    def summary(self, text: str) -> None:
        """Prints the final one-line summary (always, live or not)."""
        self._stream.write(text + "\n")
        self._stream.flush()
