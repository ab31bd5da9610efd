"""The capture plan: what should be running, derived from a validated config.

Frozen and comparable, so reconfiguring is a diff of two plans: a collector
whose plan (or whose component's plan) changed is restarted, the others keep
running untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

from actors.codec import (
    StructEncoder,
    collector_dir,
    data_type_for,
    encode_header,
    file_extension_for,
    is_binary_method,
)
from actors.messages import StreamSpec
from protos.gen.google.protobuf import Any as PbAny
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from actors.codec import JsonValue
    from actors.components import ResourceName
    from actors.messages import StreamKey

_VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"


@final
@dataclass(frozen=True)
class ComponentPlan:
    """One component to construct."""

    resource: ResourceName
    attributes: Mapping[str, JsonValue] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()


@final
@dataclass(frozen=True)
class CollectorPlan:
    """One (resource, method) to capture, with everything that shapes its files."""

    resource: ResourceName
    method: str
    frequency_hz: float
    capture_dir: Path
    params: Mapping[str, JsonValue] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    queue_size: int = 250
    buffer_bytes: int = 4096
    max_file_bytes: int = 262_144
    max_file_age_s: float = 300.0
    timeout_s: float = 0.0

    @property
    def key(self) -> StreamKey:
        """(api, name, method)."""
        return (self.resource.api, self.resource.name, self.method)

    def stream(self) -> StreamSpec:
        """The writer's view: directory, header and rotation limits."""
        return StreamSpec(
            key=self.key,
            directory=collector_dir(self.capture_dir, *self.key),
            header=encode_header(self.header()),
            binary=is_binary_method(self.method),
            max_file_bytes=self.max_file_bytes,
            max_file_age_s=self.max_file_age_s,
            buffer_bytes=self.buffer_bytes,
        )

    def header(self) -> datasync.DataCaptureMetadata:
        """The ``DataCaptureMetadata`` every file of this collector starts with."""
        encoder = StructEncoder()
        params = {
            name: PbAny(type_url=_VALUE_TYPE_URL, value=encoder.encode_value(value))
            for name, value in self.params.items()
        }
        mime = self.params.get("mime_type", "")
        return datasync.DataCaptureMetadata(
            component_type=self.resource.api,
            component_name=self.resource.name,
            method_name=self.method,
            type=data_type_for(self.method),
            method_parameters=params,
            file_extension=file_extension_for(self.method, dict(self.params)),
            tags=list(self.tags),
            mime_type=mime if isinstance(mime, str) and is_binary_method(self.method) else "",
        )


@final
@dataclass(frozen=True)
class CapturePlan:
    """Everything capture should be doing."""

    components: Mapping[str, ComponentPlan] = field(default_factory=dict)
    collectors: Mapping[StreamKey, CollectorPlan] = field(default_factory=dict)
    capture_dirs: frozenset[Path] = frozenset()
    fsync_interval_s: float = 1.0
