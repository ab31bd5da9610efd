"""The runtime's view of a config: effective values, paths and merged tags.

``RobotConfig`` holds what the file says; this module decides what it means,
once, into frozen dataclasses the actors are given:

- zeros that mean "default" become the default (Viam's rules, spec §1.1-1.2),
  except that ``maximum_num_sync_threads`` is never 0 (spec §8);
- paths are expanded (``~``), made absolute against the config file's folder,
  and the default capture dir is ``$FERRY_HOME/capture`` or ``~/.ferry/capture``;
- per-method ``tags``, ``capture_directory``, ``capture_queue_size`` and
  ``capture_buffer_size`` are honoured, where Viam ignores them (spec §1.2).

The environment and CPU count are parameters (defaulting to the process's),
so resolution is a pure function in tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, final

from actors.config._warnings import MIN_CAPTURE_FREQUENCY_HZ, SYNC_INTERVAL_EPSILON_MINS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import JsonValue as PydanticJsonValue

    from actors.codec import JsonValue
    from actors.config._model import (
        CaptureMethodConfig,
        CloudConfig,
        ComponentConfig,
        DataManagerAttributes,
        DataManagerServiceConfig,
        RobotConfig,
    )
    from actors.config._types import JsonObject

DEFAULT_CAPTURE_QUEUE_SIZE = 250
DEFAULT_CAPTURE_BUFFER_SIZE = 4096
DEFAULT_SYNC_INTERVAL_MINS = 0.1
DEFAULT_FILE_LAST_MODIFIED_MILLIS = 10_000
DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL = 5
DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES = 262_144
DEFAULT_FSYNC_INTERVAL_S = 1.0
DEFAULT_MAXIMUM_CAPTURE_FILE_AGE_S = 300.0
DEFAULT_SYNC_CHUNK_BYTES = 2_097_152
DEFAULT_SYNC_RPC_TIMEOUT_S = 60.0
DEFAULT_RETENTION_CHECK_INTERVAL_S = 30.0
FERRY_HOME_ENV = "FERRY_HOME"

CaptureKey = tuple[str, str, str]


@final
@dataclass(frozen=True, slots=True)
class CaptureMethodSpec:
    """One method of one resource to capture, with every value resolved.

    ``disabled`` is true when the config disables the method or its frequency
    is at most 1e-6 Hz. ``key`` identifies the collector across reloads.

    Example::

        spec.key  # ("rdk:component:sensor", "thermo", "Readings")
    """

    api: str
    name: str
    model: str
    method: str
    capture_frequency_hz: float
    additional_params: Mapping[str, JsonValue] = field(hash=False)
    disabled: bool
    tags: tuple[str, ...]
    capture_directory: Path
    capture_queue_size: int
    capture_buffer_size: int

    @property
    def key(self) -> CaptureKey:
        """``(api, name, method)``: stable across reloads, unique within a config."""
        return (self.api, self.name, self.method)

    @property
    def interval_s(self) -> float | None:
        """Seconds between captures, or ``None`` when disabled."""
        return None if self.disabled else 1.0 / self.capture_frequency_hz


@final
@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """A component to construct: identity, driver model, attributes, dependencies."""

    api: str
    name: str
    model: str
    attributes: Mapping[str, JsonValue] = field(hash=False)
    depends_on: tuple[str, ...]


@final
@dataclass(frozen=True, slots=True)
class MongoCaptureSettings:
    """Viam's MongoDB capture target (parsed; Ferry does not write to it)."""

    uri: str
    database: str
    collection: str


@final
@dataclass(frozen=True, slots=True)
class DataManagerSettings:
    """The data manager's service-level settings, each at its effective value.

    ``retention_max_capture_dir_bytes`` and ``retention_max_age_hours`` are
    ``None`` when there is no cap; ``min_free_bytes`` is 0 when there is no floor.
    """

    service_name: str
    capture_dir: Path
    tags: tuple[str, ...]
    capture_disabled: bool
    sync_disabled: bool
    sync_interval_mins: float
    additional_sync_paths: tuple[Path, ...]
    file_last_modified_millis: int
    maximum_num_sync_threads: int
    delete_every_nth_when_disk_full: int
    disk_usage_deletion_threshold: float
    capture_dir_deletion_threshold: float
    maximum_capture_file_size_bytes: int
    selective_syncer_name: str | None
    mongo_capture: MongoCaptureSettings | None
    retention_max_capture_dir_bytes: int | None
    retention_max_age_hours: float | None
    min_free_bytes: int
    capture_fsync_interval_s: float = 1.0
    maximum_capture_file_age_s: float = 300.0
    sync_chunk_bytes: int = DEFAULT_SYNC_CHUNK_BYTES
    sync_max_bytes_per_sec: int = 0
    sync_rpc_timeout_s: float = DEFAULT_SYNC_RPC_TIMEOUT_S
    retention_check_interval_s: float = DEFAULT_RETENTION_CHECK_INTERVAL_S

    @property
    def sync_interval_ms(self) -> int:
        """The interval in whole milliseconds, truncated as Viam does."""
        return int(60_000 * self.sync_interval_mins)

    @property
    def sync_interval_s(self) -> float:
        """The interval in seconds (of whole milliseconds)."""
        return self.sync_interval_ms / 1000


@final
@dataclass(frozen=True, slots=True)
class CloudSettings:
    """The cloud connection, with ``tls_ca_file`` resolved to a path."""

    address: str
    host: str
    port: int
    part_id: str
    api_key_id: str
    api_key: str = field(repr=False)
    tls_ca_file: Path | None
    insecure: bool


@final
@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """What the runtime needs from a config, with no defaults left to apply.

    ``data_manager`` is ``None`` when no data manager service is configured;
    then ``capture_methods`` is empty and nothing is captured or synced.
    """

    config_source: Literal["local", "cloud"]
    components: tuple[ComponentSpec, ...]
    capture_methods: tuple[CaptureMethodSpec, ...]
    data_manager: DataManagerSettings | None
    cloud: CloudSettings | None

    @property
    def active_capture_methods(self) -> tuple[CaptureMethodSpec, ...]:
        """The methods a collector should run for now: enabled, with capture on."""
        if self.data_manager is None or self.data_manager.capture_disabled:
            return ()
        return tuple(spec for spec in self.capture_methods if not spec.disabled)


def resolve_config(
    config: RobotConfig,
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cpu_count: int | None = None,
) -> ResolvedConfig:
    """Resolves a validated config into runtime settings.

    Args:
        config: the validated document.
        base_dir: folder that relative paths are relative to (the config
            file's); the current directory when ``None``.
        environ: environment for ``FERRY_HOME`` and ``HOME``; ``os.environ``
            when ``None``.
        cpu_count: CPUs for the default sync thread count; ``os.cpu_count()``
            when ``None``.

    Returns:
        The resolved config.

    Example::

        resolved = resolve_config(config, environ={"FERRY_HOME": "/data/ferry"})
        resolved.data_manager.capture_dir  # Path("/data/ferry/capture")
    """
    paths = _PathResolver(
        environ=os.environ if environ is None else environ,
        base_dir=base_dir if base_dir is not None else Path.cwd(),
    )
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    found = config.data_manager
    settings = None if found is None else _settings(found[1], paths, cpus)
    methods: tuple[CaptureMethodSpec, ...] = ()
    if settings is not None:
        methods = tuple(
            _method_spec(component, method, settings, paths)
            for component in config.components
            for _, method in component.capture_methods
        )
    return ResolvedConfig(
        config_source=config.config_source,
        components=tuple(_component_spec(c) for c in config.components),
        capture_methods=methods,
        data_manager=settings,
        cloud=None if config.cloud is None else _cloud(config.cloud, paths),
    )


@final
@dataclass(frozen=True, slots=True)
class _PathResolver:
    environ: Mapping[str, str]
    base_dir: Path

    def resolve(self, raw: str) -> Path:
        """``~`` expanded (from ``HOME`` in ``environ``), then made absolute."""
        if raw == "~" or raw.startswith("~/"):
            path = self.home() / raw[2:]
        else:
            path = Path(raw).expanduser()  # ~user comes from the password database
        return path if path.is_absolute() else self.base_dir / path

    def home(self) -> Path:
        home = self.environ.get("HOME")
        return Path(home) if home else Path.home()

    def ferry_home(self) -> Path:
        """``$FERRY_HOME``, else ``~/.ferry`` (Viam: ``$VIAM_HOME``, else ``~/.viam``)."""
        ferry_home = self.environ.get(FERRY_HOME_ENV)
        return self.resolve(ferry_home) if ferry_home else self.home() / ".ferry"

    def default_capture_dir(self) -> Path:
        """``$FERRY_HOME/capture``, else ``~/.ferry/capture``."""
        return self.ferry_home() / "capture"


def default_ferry_home(environ: Mapping[str, str] | None = None) -> Path:
    """Where Ferry keeps its data on a robot: ``$FERRY_HOME``, else ``~/.ferry``."""
    environ = os.environ if environ is None else environ
    return _PathResolver(environ=environ, base_dir=Path.cwd()).ferry_home()


def _settings(
    service: DataManagerServiceConfig, paths: _PathResolver, cpus: int
) -> DataManagerSettings:
    a: DataManagerAttributes = service.attributes
    mins = a.sync_interval_mins
    return DataManagerSettings(
        service_name=service.name,
        capture_dir=paths.resolve(a.capture_dir) if a.capture_dir else paths.default_capture_dir(),
        tags=_dedupe(a.tags),
        capture_disabled=a.capture_disabled,
        sync_disabled=a.sync_disabled,
        sync_interval_mins=DEFAULT_SYNC_INTERVAL_MINS
        if mins < SYNC_INTERVAL_EPSILON_MINS
        else mins,
        additional_sync_paths=tuple(paths.resolve(p) for p in a.additional_sync_paths),
        file_last_modified_millis=a.file_last_modified_millis or DEFAULT_FILE_LAST_MODIFIED_MILLIS,
        # Viam's NumCPU/2 is 0 on a one-CPU board, which blocks sync forever (spec §8).
        maximum_num_sync_threads=a.maximum_num_sync_threads or max(1, cpus // 2),
        delete_every_nth_when_disk_full=(
            a.delete_every_nth_when_disk_full or DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL
        ),
        disk_usage_deletion_threshold=a.disk_usage_deletion_threshold,
        capture_dir_deletion_threshold=a.capture_dir_deletion_threshold,
        maximum_capture_file_size_bytes=(
            a.maximum_capture_file_size_bytes or DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES
        ),
        selective_syncer_name=a.selective_syncer_name or None,
        mongo_capture=(
            MongoCaptureSettings(m.uri, m.database, m.collection)
            if (m := a.mongo_capture_config) is not None and m.uri
            else None
        ),
        retention_max_capture_dir_bytes=a.retention_max_capture_dir_bytes or None,
        retention_max_age_hours=a.retention_max_age_hours or None,
        min_free_bytes=a.min_free_bytes,
        capture_fsync_interval_s=a.capture_fsync_interval_secs or DEFAULT_FSYNC_INTERVAL_S,
        maximum_capture_file_age_s=(
            a.maximum_capture_file_age_secs or DEFAULT_MAXIMUM_CAPTURE_FILE_AGE_S
        ),
        sync_chunk_bytes=a.sync_chunk_size_bytes or DEFAULT_SYNC_CHUNK_BYTES,
        sync_max_bytes_per_sec=a.sync_max_bytes_per_sec,
        sync_rpc_timeout_s=a.sync_rpc_timeout_secs or DEFAULT_SYNC_RPC_TIMEOUT_S,
        retention_check_interval_s=(
            a.retention_check_interval_secs or DEFAULT_RETENTION_CHECK_INTERVAL_S
        ),
    )


def _method_spec(
    component: ComponentConfig,
    method: CaptureMethodConfig,
    settings: DataManagerSettings,
    paths: _PathResolver,
) -> CaptureMethodSpec:
    hz = method.capture_frequency_hz
    directory = method.capture_directory
    return CaptureMethodSpec(
        api=component.resolved_api,
        name=component.name,
        model=component.model,
        method=method.method,
        capture_frequency_hz=hz,
        additional_params=_freeze_object(method.additional_params),
        disabled=method.disabled or hz < MIN_CAPTURE_FREQUENCY_HZ,
        # Service tags first, then the method's own; Viam drops the latter (spec §1.2).
        tags=_dedupe((*settings.tags, *method.tags)),
        capture_directory=paths.resolve(directory) if directory else settings.capture_dir,
        capture_queue_size=method.capture_queue_size or DEFAULT_CAPTURE_QUEUE_SIZE,
        capture_buffer_size=method.capture_buffer_size or DEFAULT_CAPTURE_BUFFER_SIZE,
    )


def _component_spec(component: ComponentConfig) -> ComponentSpec:
    return ComponentSpec(
        api=component.resolved_api,
        name=component.name,
        model=component.model,
        attributes=_freeze_object(component.attributes),
        depends_on=component.depends_on,
    )


def _cloud(cloud: CloudConfig, paths: _PathResolver) -> CloudSettings:
    return CloudSettings(
        address=cloud.address,
        host=cloud.host,
        port=cloud.port,
        part_id=cloud.part_id,
        api_key_id=cloud.api_key_id,
        api_key=cloud.api_key,
        tls_ca_file=None if not cloud.tls_ca_file else paths.resolve(cloud.tls_ca_file),
        insecure=cloud.insecure,
    )


def _dedupe(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _freeze_object(obj: JsonObject) -> Mapping[str, JsonValue]:
    return MappingProxyType({k: _freeze(v) for k, v in obj.items()})


def _freeze(value: PydanticJsonValue) -> JsonValue:
    """A read-only copy: objects become mapping proxies, lists become tuples."""
    if isinstance(value, dict):
        return _freeze_object(value)
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def resolve_cloud(cloud: CloudConfig, *, base_dir: Path) -> CloudSettings:
    """A validated ``cloud`` section (e.g. from ``ferry run --cloud FILE``) at runtime values."""
    return _cloud(cloud, _PathResolver(environ=os.environ, base_dir=base_dir))
