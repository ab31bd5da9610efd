"""Helpers for the component tests: a hand-driven wall clock, an inline runner, contexts."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import trio

from actors.components import ComponentContext, ResourceName, Tabular, api_for_type

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actors.codec import JsonValue

T = TypeVar("T")

# config/plugins, where the example plugin package ``my_robot`` lives.
PLUGINS_DIR = Path(__file__).resolve().parents[2] / "config" / "plugins"
EPOCH_2026_NS = 1_767_225_600_000_000_000


@dataclass
class ManualClock:
    """A ``WallClock`` that moves only when told to."""

    now: int = EPOCH_2026_NS

    def now_ns(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)


class InlineRunner:
    """A ``BlockingRunner`` that runs the call on the event loop, like the simulator's."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, fn: Callable[[], T]) -> T:
        self.calls += 1
        result = fn()
        await trio.lowlevel.checkpoint()
        return result


def make_ctx(
    type_or_api: str,
    model: str,
    attributes: Mapping[str, JsonValue] | None = None,
    *,
    seed: int | str = 0,
    clock: ManualClock | None = None,
    name: str = "c",
    runner: InlineRunner | None = None,
) -> ComponentContext:
    """A context for ``model`` of ``type_or_api`` (``"sensor"`` or a full API)."""
    return ComponentContext(
        resource=ResourceName(api_for_type(type_or_api), name, model),
        attributes=dict(attributes or {}),
        rng=random.Random(seed),
        clock=clock or ManualClock(),
        runner=runner,
    )


def tabular(result: object) -> Mapping[str, JsonValue]:
    """The data of a ``Tabular`` capture result (fails the test otherwise)."""
    assert isinstance(result, Tabular), result
    return result.data
