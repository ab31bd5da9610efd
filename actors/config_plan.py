"""From a validated config to the capture plan the runtime runs.

The only module that knows both the config's shape (``actors.config``) and the
runtime's (``actors.plan``); keeping them apart lets the simulator build plans
directly.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from actors.components import ResourceName
from actors.config import parse_config
from actors.plan import CapturePlan, CollectorPlan, ComponentPlan
from actors.retention import RetentionPlan
from actors.retention_policy import RetentionSettings
from actors.sync.plan import SyncPlan

if TYPE_CHECKING:
    from pathlib import Path

    from actors.config import CloudSettings, ResolvedConfig

LOGGER = logging.getLogger("ferry.config")


def plan_from_resolved(resolved: ResolvedConfig) -> CapturePlan:
    """The capture plan for a resolved config (nothing runs with capture disabled)."""
    settings = resolved.data_manager
    if settings is None or settings.capture_disabled:
        return CapturePlan(
            capture_dirs=frozenset({settings.capture_dir}) if settings is not None else frozenset()
        )
    components = {
        c.name: ComponentPlan(ResourceName(c.api, c.name, c.model), c.attributes, c.depends_on)
        for c in resolved.components
    }
    collectors: dict[tuple[str, str, str], CollectorPlan] = {}
    for m in resolved.active_capture_methods:
        if m.name not in components:
            continue
        plan = CollectorPlan(
            resource=components[m.name].resource,
            method=m.method,
            frequency_hz=m.capture_frequency_hz,
            capture_dir=m.capture_directory,
            params=m.additional_params,
            tags=m.tags,
            queue_size=m.capture_queue_size,
            buffer_bytes=m.capture_buffer_size,
            max_file_bytes=settings.maximum_capture_file_size_bytes,
            max_file_age_s=settings.maximum_capture_file_age_s,
        )
        collectors[plan.key] = plan
    used = {m.resource.name for m in collectors.values()}
    if settings.selective_syncer_name:
        # The selective syncer is read before each scheduled sync, captured or not.
        used.add(settings.selective_syncer_name)
    dirs = {settings.capture_dir} | {c.capture_dir for c in collectors.values()}
    return CapturePlan(
        components={name: c for name, c in components.items() if name in used},
        collectors=collectors,
        capture_dirs=frozenset(dirs),
        fsync_interval_s=settings.capture_fsync_interval_s,
    )


def sync_plan_from_resolved(resolved: ResolvedConfig) -> SyncPlan:
    """The sync plan for a resolved config (no data manager: nothing to sync)."""
    settings = resolved.data_manager
    if settings is None:
        return SyncPlan(cloud=resolved.cloud, sync_disabled=True)
    capture_dirs = dict.fromkeys(
        [settings.capture_dir, *(m.capture_directory for m in resolved.capture_methods)]
    )
    return SyncPlan(
        capture_dirs=tuple(capture_dirs),
        additional_sync_paths=settings.additional_sync_paths,
        tags=settings.tags,
        cloud=resolved.cloud,
        sync_disabled=settings.sync_disabled,
        interval_s=settings.sync_interval_s,
        file_last_modified_ms=settings.file_last_modified_millis,
        threads=settings.maximum_num_sync_threads,
        chunk_bytes=settings.sync_chunk_bytes,
        max_bytes_per_sec=settings.sync_max_bytes_per_sec,
        rpc_timeout_s=settings.sync_rpc_timeout_s,
        selective_syncer=settings.selective_syncer_name,
        capture_enabled=not settings.capture_disabled,
    )


def retention_plan_from_resolved(resolved: ResolvedConfig) -> RetentionPlan:
    """The retention plan: the data manager's disk rules, for every capture directory."""
    settings = resolved.data_manager
    if settings is None:
        return RetentionPlan(capture_enabled=False)
    dirs = dict.fromkeys(
        [settings.capture_dir, *(m.capture_directory for m in resolved.capture_methods)]
    )
    max_age = settings.retention_max_age_hours
    return RetentionPlan(
        dirs=tuple(
            RetentionSettings(
                capture_dir=d,
                disk_usage_threshold=settings.disk_usage_deletion_threshold,
                capture_dir_threshold=settings.capture_dir_deletion_threshold,
                every_nth=settings.delete_every_nth_when_disk_full,
                max_capture_dir_bytes=settings.retention_max_capture_dir_bytes,
                max_age_ns=None if max_age is None else int(max_age * 3600e9),
                min_free_bytes=settings.min_free_bytes,
            )
            for d in dirs
        ),
        capture_enabled=not settings.capture_disabled,
        interval_s=settings.retention_check_interval_s,
    )


@final
@dataclass(frozen=True)
class AgentPlan:
    """What the agent runs: capture, sync and retention, from one config."""

    capture: CapturePlan
    sync: SyncPlan
    retention: RetentionPlan


def load_plan(text: str, path: Path, *, cloud: CloudSettings | None = None) -> AgentPlan:
    """Validates config ``text`` (read from ``path``) and plans capture and sync.

    ``cloud``, when given (``ferry run --cloud FILE``), replaces the config's own
    ``cloud`` section, so credentials can live apart from a shared robot config.

    Raises:
        ConfigError: the config is invalid; the message names every problem.
    """
    loaded = parse_config(text, source=str(path), base_dir=path.parent)
    for warning in loaded.warnings:
        LOGGER.warning("config %s: %s", path, warning)
    resolved = loaded.resolve()
    if cloud is not None:
        resolved = dataclasses.replace(resolved, cloud=cloud)
    return AgentPlan(
        plan_from_resolved(resolved),
        sync_plan_from_resolved(resolved),
        retention_plan_from_resolved(resolved),
    )
