"""What a component is to Ferry: something with capture methods that return readings.

Built-in models (``fake``, ``system``, ``file``) and user plugins implement the
same protocol. A plugin is named in the config by its model string
``python:package.module:Class`` or registered under the ``ferry.components``
entry-point group; see docs/components.md.

A capture method returns the *response* of the method, as Viam shapes it:

- tabular methods return ``Tabular(data)``, with ``data`` the JSON-like response
  (e.g. ``{"positions": {"values": [...]}}`` for an arm's ``JointPositions``).
  The collector wraps sensor ``Readings`` as ``{"readings": data}`` and
  ``DoCommand`` as ``{"docommand_output": data}`` (spec §2.3), so components
  return the bare readings;
- binary methods return one ``Binary`` per payload (``GetImages`` may return
  several, each becoming its own file).

Components may raise ``SkipReading`` to skip one capture quietly (Viam's "no
capture from filter module"); any other exception is a failed capture, counted
and logged by the collector, which keeps going.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, final, runtime_checkable

if TYPE_CHECKING:
    import random

    from actors.codec import JsonObject, JsonValue
    from actors.ports import BlockingRunner, WallClock


class SkipReading(Exception):
    """Raised by a capture method to skip this reading without it counting as an error."""


@final
@dataclass(frozen=True, slots=True)
class Tabular:
    """A tabular capture result; ``time_received_ns`` overrides the collector's stamp."""

    data: JsonObject
    time_received_ns: int | None = None


@final
@dataclass(frozen=True, slots=True)
class Binary:
    """A binary capture result: payload bytes and their MIME type.

    ``annotations`` is a serialized ``viam.app.data.v1.Annotations`` (bounding
    boxes, classifications); ``time_received_ns`` overrides the collector's
    stamp (cameras report when the frame was captured).
    """

    payload: bytes
    mime_type: str
    annotations: bytes = b""
    time_received_ns: int | None = None


Captured = Tabular | Sequence[Binary]


@final
@dataclass(frozen=True, slots=True)
class ResourceName:
    """A component's identity: API (``rdk:component:sensor``), short name and model."""

    api: str
    name: str
    model: str

    @property
    def subtype(self) -> str:
        """The last part of the API, e.g. ``sensor``."""
        return self.api.rsplit(":", 1)[-1]


@final
@dataclass(frozen=True)
class ComponentContext:
    """What a component is given at construction: its identity, config and seams.

    ``rng`` is the component's own ``random.Random`` (seeded from the agent's
    seed and the component's name), so fakes are deterministic and the
    simulator reproducible. ``clock`` is the wall clock for timestamps.
    ``runner``, when given, is where blocking work (image encoding, file reads,
    psutil) runs: worker threads in production, inline in the simulator; without
    it the built-in models use ``trio.to_thread.run_sync``.
    """

    resource: ResourceName
    attributes: Mapping[str, JsonValue]
    rng: random.Random
    clock: WallClock
    depends_on: Sequence[str] = field(default=())
    runner: BlockingRunner | None = None


class Component(Protocol):
    """A robot part whose methods can be captured.

    Constructed as ``Model(ctx: ComponentContext)``; may fail with
    ``ComponentConfigError`` when its attributes are wrong.
    """

    def capture_methods(self) -> frozenset[str]:
        """The method names this component can capture (e.g. ``{"Readings"}``)."""
        ...

    async def capture(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        """Performs one capture of ``method`` with ``additional_params``.

        Raises:
            SkipReading: to skip this capture quietly.
            UnknownMethod: ``method`` is not one of ``capture_methods()``.
        """
        ...

    async def aclose(self) -> None:
        """Releases what the component holds (devices, files)."""
        ...


@runtime_checkable
class NowaitCapture(Protocol):
    """Optional, beside ``Component``: methods that answer at once, without waiting.

    Ferry captures the methods in ``nowait_methods()`` from one timer task per
    capture period, calling ``capture_nowait`` inline: no task switch and no
    timeout scope per reading, which is what makes hundreds of collectors at
    100 Hz cheap. The call runs on the event loop, so it must never block: no
    I/O, no locks, no sleeping. A method that might block belongs in
    ``capture`` only, where each call has its own task and timeout.
    """

    def nowait_methods(self) -> frozenset[str]:
        """The methods ``capture_nowait`` answers (a subset of ``capture_methods()``)."""
        ...

    def capture_nowait(self, method: str, params: Mapping[str, JsonValue]) -> Captured:
        """Performs one capture of ``method`` at once; raises like ``capture``."""
        ...


class ComponentConfigError(ValueError):
    """A component's attributes are invalid; the message names the attribute."""


class UnknownMethod(LookupError):
    """A capture method the component does not have."""
