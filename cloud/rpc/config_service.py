"""``ferry.config.v1.ConfigService``: each robot fetches and watches its own merged config.

The part comes from the request and is checked against the caller's key
(``resolve_part``: same organization and location, and the key's part if it is
part-scoped), so a robot only ever receives its own organization's config.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, final

from actors.config import ConfigError
from cloud.errors import FailedPrecondition, NotFound
from cloud.fleet.merge import canonical_json
from cloud.fleet.port import PartReport
from cloud.rpc._edge import caller
from protos.gen.ferry.config import v1 as config_pb

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from cloud.fleet.hub import ConfigHub
    from cloud.fleet.merge import Merged
    from cloud.fleet.port import FleetStore
    from cloud.model import Principal
    from cloud.rpc._edge import Edge
    from cloud.store.port import Store

HEARTBEAT_S = 10.0
"""A watch sends a heartbeat after this long without a change; robots give up after 3."""
MAX_STREAM_S = 600.0
"""A watch ends after this long (the robot watches again), so no stream lives forever."""


@final
class ConfigService(config_pb.ConfigServiceBase):
    """GetConfig, WatchConfig (server stream) and ReportStatus."""

    def __init__(
        self,
        edge: Edge,
        store: Store,
        fleet: FleetStore,
        hub: ConfigHub,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        max_stream_s: float = MAX_STREAM_S,
    ) -> None:
        self._edge = edge
        self._store = store
        self._fleet = fleet
        self._hub = hub
        self._heartbeat_s = heartbeat_s
        self._max_stream_s = max_stream_s

    async def get_config(self, message: config_pb.GetConfigRequest) -> config_pb.GetConfigResponse:
        """The part's merged config now; NOT_FOUND when it has none."""
        who, part_id = caller(), message.part_id
        await self._edge.blocking(self._seen, who, part_id, None)
        merged = await self._merged(who, part_id)
        if merged is None:
            raise NotFound(
                f"part {part_id!r} has no config in the cloud; "
                f"set one with `ferry cloud config set --part {part_id} FILE`"
            )
        return config_pb.GetConfigResponse(config_json=_text(merged), version=_version(merged))

    async def watch_config(
        self, message: config_pb.WatchConfigRequest
    ) -> AsyncIterator[config_pb.WatchConfigResponse]:
        """The merged config whenever its revision differs from the robot's, and heartbeats."""
        who, part_id = caller(), message.part_id
        await self._edge.blocking(self._seen, who, part_id, None)
        known = message.known_revision
        loop = asyncio.get_running_loop()
        end = loop.time() + self._max_stream_s
        while not self._hub.closing.is_set() and loop.time() < end:
            merged = await self._merged(who, part_id)
            if merged is not None and merged.revision != known:
                known = merged.revision
                yield config_pb.WatchConfigResponse(
                    config_json=_text(merged), version=_version(merged)
                )
            elif not await self._hub.wait_change(who.org_id, timeout_s=self._heartbeat_s):
                if self._hub.closing.is_set():
                    return
                yield config_pb.WatchConfigResponse(heartbeat=True)

    async def report_status(
        self, message: config_pb.ReportStatusRequest
    ) -> config_pb.ReportStatusResponse:
        """Records what the robot runs (or refused, and why) and its sync backlog."""
        applied = message.applied or config_pb.ConfigVersion()
        report = PartReport(
            applied_revision=applied.revision,
            applied_label=applied.label,
            rejected_revision=message.rejected_revision,
            error=message.error[:8192],
            pending_files=message.pending_files,
            pending_bytes=message.pending_bytes,
        )
        await self._edge.blocking(self._seen, caller(), message.part_id, report)
        return config_pb.ReportStatusResponse()

    async def _merged(self, who: Principal, part_id: str) -> Merged | None:
        try:
            return await self._edge.blocking(self._fleet.merged_config, who.org_id, part_id)
        except ConfigError as exc:
            raise FailedPrecondition(f"the stored config no longer merges: {exc}") from None

    def _seen(self, who: Principal, part_id: str, report: PartReport | None) -> None:
        part = self._store.resolve_part(who, part_id)
        self._fleet.report_part(part.org_id, part.part_id, report)


def _text(merged: Merged) -> str:
    return canonical_json(merged.document)


def _version(merged: Merged) -> config_pb.ConfigVersion:
    return config_pb.ConfigVersion(revision=merged.revision, label=merged.label)
