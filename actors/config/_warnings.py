"""Warnings: what a valid config says that Ferry will ignore or treat specially.

Viam decodes its config with a plain JSON unmarshal, so an unknown key is
silently dropped (spec §1.1). Ferry keeps the same leniency — a config that
Viam accepts still loads — but says so: every ignored key, every disabled
capture method and every setting with no effect becomes a ``ConfigIssue``
with its path, returned next to the config for the caller to log.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel

from actors.config._issues import ConfigIssue, Loc, format_path
from actors.config._model import (
    CloudConfig,
    DataManagerServiceConfig,
    OtherServiceConfig,
    RobotConfig,
)
from actors.config._types import ConfigModel

# Below this a frequency disables its method, instead of a near-zero interval
# becoming a busy loop (rdk #5977, spec §1.2).
MIN_CAPTURE_FREQUENCY_HZ = 1e-6
# Sync intervals within this of zero mean "use the default" (spec §1.1).
SYNC_INTERVAL_EPSILON_MINS = 1e-4


def config_warnings(config: RobotConfig) -> list[ConfigIssue]:
    """Every warning for a validated config, in document order per kind.

    Example::

        for warning in config_warnings(config):
            LOGGER.warning("%s", warning)
    """
    return [
        *_unknown_keys(config, ()),
        *_capture_warnings(config),
        *_service_warnings(config),
        *_cloud_warnings(config.cloud),
    ]


def _unknown_keys(model: BaseModel, loc: Loc) -> list[ConfigIssue]:
    if isinstance(model, ConfigModel) and not model.report_unknown_keys:
        return []
    viam_only = model.viam_only_keys if isinstance(model, ConfigModel) else frozenset()
    out: list[ConfigIssue] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name
        if isinstance(value, BaseModel):
            out += _unknown_keys(value, (*loc, key))
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    out += _unknown_keys(item, (*loc, key, i))
    for key in model.model_extra or {}:
        message = (
            "Viam setting that Ferry does not use; ignored"
            if key in viam_only
            else "unknown key; ignored"
        )
        out.append(ConfigIssue(format_path((*loc, key)), message))
    return out


def _capture_warnings(config: RobotConfig) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    count = 0
    for i, component in enumerate(config.components):
        for loc, method in component.capture_methods:
            count += 1
            if method.disabled:
                continue
            path = format_path(("components", i, *loc, "capture_frequency_hz"))
            hz = method.capture_frequency_hz
            if "capture_frequency_hz" not in method.model_fields_set:
                out.append(ConfigIssue(path, "not set, so this method is disabled"))
            elif hz <= 0:
                out.append(ConfigIssue(path, f"<= 0 disables this method (got {hz:g})"))
            elif hz < MIN_CAPTURE_FREQUENCY_HZ:
                out.append(ConfigIssue(path, f"below 1e-06 Hz disables this method (got {hz:g})"))
    if count and config.data_manager is None:
        out.append(
            ConfigIssue(
                "services",
                f"no data_manager service, so the {count} capture method(s) are not captured",
            )
        )
    return out


def _service_warnings(config: RobotConfig) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    for i, service in enumerate(config.services):
        if isinstance(service, OtherServiceConfig):
            out.append(
                ConfigIssue(
                    f"services[{i}]", f"{service.resolved_api} is not run by Ferry; ignored"
                )
            )
        elif isinstance(service, DataManagerServiceConfig):
            out += _data_manager_warnings(service, ("services", i, "attributes"))
    return out


def _data_manager_warnings(service: DataManagerServiceConfig, loc: Loc) -> list[ConfigIssue]:
    attrs = service.attributes
    out: list[ConfigIssue] = []
    mins = attrs.sync_interval_mins
    if 0 < mins < SYNC_INTERVAL_EPSILON_MINS:
        out.append(
            ConfigIssue(
                format_path((*loc, "sync_interval_mins")),
                f"within 1e-4 of 0, so the default 0.1 is used (got {mins:g})",
            )
        )
    if attrs.mongo_capture_config is not None and attrs.mongo_capture_config.uri:
        out.append(
            ConfigIssue(
                format_path((*loc, "mongo_capture_config")), "not supported by Ferry; ignored"
            )
        )
    if attrs.capture_control_sensor is not None:
        out.append(
            ConfigIssue(
                format_path((*loc, "capture_control_sensor")), "not supported by Ferry; ignored"
            )
        )
    return out


def _cloud_warnings(cloud: CloudConfig | None) -> list[ConfigIssue]:
    if cloud is None or not cloud.insecure:
        return []
    out: list[ConfigIssue] = []
    if cloud.tls_ca_file is not None:
        out.append(ConfigIssue("cloud.tls_ca_file", "ignored because insecure is true"))
    if not _is_loopback(cloud.host):
        out.append(
            ConfigIssue(
                "cloud.insecure",
                f"the API key is sent unencrypted to {cloud.host!r}, which is not loopback",
            )
        )
    return out


def _is_loopback(host: str) -> bool:
    if host.lower().removesuffix(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
