"""Config: Viam-shaped JSON validated into frozen objects, then resolved for the runtime.

- ``load_config(path)`` / ``parse_config(document)`` return a ``LoadedConfig``:
  the validated ``RobotConfig`` plus its warnings (unknown keys, disabled
  methods, ...), or raise ``ConfigError`` listing every problem by JSON path.
- ``LoadedConfig.resolve()`` / ``resolve_config(config)`` give a
  ``ResolvedConfig``: ``CaptureMethodSpec`` per method, ``DataManagerSettings``,
  ``ComponentSpec`` per component and ``CloudSettings``, all at effective values.
- ``config_json_schema()`` is the JSON Schema in ``config/ferry.schema.json``.

See docs/configuration.md for every key and how Ferry differs from Viam.
"""

from actors.config._issues import ConfigError, ConfigIssue, format_path
from actors.config._load import LoadedConfig, load_config, parse_cloud_file, parse_config
from actors.config._model import (
    AssociatedServiceConfig,
    CaptureAttributes,
    CaptureControlSensorConfig,
    CaptureMethodConfig,
    CloudConfig,
    ComponentConfig,
    DataManagerAttributes,
    DataManagerServiceConfig,
    MongoCaptureConfig,
    OtherServiceConfig,
    RobotConfig,
    ServiceConfig,
)
from actors.config._resolve import (
    DEFAULT_CAPTURE_BUFFER_SIZE,
    DEFAULT_CAPTURE_QUEUE_SIZE,
    DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL,
    DEFAULT_FILE_LAST_MODIFIED_MILLIS,
    DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES,
    DEFAULT_SYNC_CHUNK_BYTES,
    DEFAULT_SYNC_INTERVAL_MINS,
    FERRY_HOME_ENV,
    CaptureKey,
    CaptureMethodSpec,
    CloudSettings,
    ComponentSpec,
    DataManagerSettings,
    MongoCaptureSettings,
    ResolvedConfig,
    default_ferry_home,
    resolve_config,
)
from actors.config._schema import config_json_schema, render_config_schema
from actors.config._types import DATA_MANAGER_API
from actors.config._warnings import config_warnings

__all__ = [
    "DATA_MANAGER_API",
    "DEFAULT_CAPTURE_BUFFER_SIZE",
    "DEFAULT_CAPTURE_QUEUE_SIZE",
    "DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL",
    "DEFAULT_FILE_LAST_MODIFIED_MILLIS",
    "DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES",
    "DEFAULT_SYNC_CHUNK_BYTES",
    "DEFAULT_SYNC_INTERVAL_MINS",
    "FERRY_HOME_ENV",
    "AssociatedServiceConfig",
    "CaptureAttributes",
    "CaptureControlSensorConfig",
    "CaptureKey",
    "CaptureMethodConfig",
    "CaptureMethodSpec",
    "CloudConfig",
    "CloudSettings",
    "ComponentConfig",
    "ComponentSpec",
    "ConfigError",
    "ConfigIssue",
    "DataManagerAttributes",
    "DataManagerServiceConfig",
    "DataManagerSettings",
    "LoadedConfig",
    "MongoCaptureConfig",
    "MongoCaptureSettings",
    "OtherServiceConfig",
    "ResolvedConfig",
    "RobotConfig",
    "ServiceConfig",
    "config_json_schema",
    "config_warnings",
    "default_ferry_home",
    "format_path",
    "load_config",
    "parse_cloud_file",
    "parse_config",
    "render_config_schema",
    "resolve_config",
]
