"""Plugins for the registry tests: good, broken, and not components at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.components import Tabular, UnknownMethod

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actors.codec import JsonValue
    from actors.components import Captured, ComponentContext


class Counter:
    """A minimal valid component: ``Count`` returns how often it was called."""

    def __init__(self, ctx: ComponentContext) -> None:
        self.ctx = ctx
        self.count = 0
        self.closed = False

    def capture_methods(self) -> frozenset[str]:
        return frozenset({"Count"})

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        if method != "Count":
            raise UnknownMethod(method)
        self.count += 1
        return Tabular({"count": self.count})

    async def aclose(self) -> None:
        self.closed = True


class SyncCapture:
    """Wrong: ``capture`` is not ``async def``."""

    def __init__(self, ctx: ComponentContext) -> None:
        pass

    def capture_methods(self) -> frozenset[str]:
        return frozenset()

    def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


class NoContext:
    """Wrong: the constructor takes no context."""

    def __init__(self) -> None:
        pass

    def capture_methods(self) -> frozenset[str]:
        return frozenset()

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


class DeviceMissing:
    """A plugin whose constructor fails the way real drivers do."""

    def __init__(self, ctx: ComponentContext) -> None:
        raise FileNotFoundError(2, "No such device", "/dev/ttyUSB7")

    def capture_methods(self) -> frozenset[str]:
        return frozenset()

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def make_counter(ctx: ComponentContext) -> Counter:
    """A factory function is a valid plugin too."""
    return Counter(ctx)


def make_nothing(ctx: ComponentContext) -> object:
    """Wrong: a factory that returns something that is not a component."""
    return object()


NOT_CALLABLE = 42
