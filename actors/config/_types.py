"""Field types of the config models: strict scalars with Ferry's messages.

Each ``Annotated`` type here is a JSON value with one rule (non-empty, a
resource name, an API triplet, host:port, ...). Scalars are strict: JSON
``"5"`` is not the integer 5 and ``5.0`` is not an integer (as in Viam's Go
decoder), and ``true`` is not a number. ``ConfigModel`` is the base of every
model: frozen, and keeping unknown keys so they can be warned about.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from actors.config._issues import describe_value

DATA_MANAGER_API = "rdk:service:data_manager"
DATA_MANAGER_TYPE = "data_manager"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_API_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

# ---------------------------------------------------------------- field types


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _resource_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "must start with a letter or digit and contain only letters, digits, '-' and '_'"
            f" (got {describe_value(value)})"
        )
    return value


def _api(value: str) -> str:
    parts = value.split(":")
    if len(parts) != 3 or not all(_API_PART.match(p) for p in parts):
        raise ValueError(
            f"must be 'namespace:type:subtype', e.g. 'rdk:component:sensor'"
            f" (got {describe_value(value)})"
        )
    return value


def _api_part(value: str) -> str:
    if not _API_PART.match(value):
        raise ValueError(
            f"must contain only letters, digits, '-' and '_' (got {describe_value(value)})"
        )
    return value


def _method(value: str) -> str:
    _non_empty(value)
    if not _METHOD.match(value):
        raise ValueError(
            f"must be a method name such as 'Readings' (letters, digits, '_')"
            f" (got {describe_value(value)})"
        )
    return value


def _host_port(value: str) -> str:
    example = "e.g. 'app.example.com:443' or '127.0.0.1:8443'"
    if "://" in value or "/" in value:
        raise ValueError(
            f"must be host:port without a scheme or path, {example} (got {describe_value(value)})"
        )
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port:
        raise ValueError(f"must be host:port, {example} (got {describe_value(value)})")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be 1-65535 (got {describe_value(port)})")
    if not _valid_host(host):
        raise ValueError(f"{describe_value(host)} is not a host name or IP address")
    return value


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_HOSTNAME_LABEL.match(label) for label in labels)


NonEmptyStr = Annotated[StrictStr, AfterValidator(_non_empty)]
ResourceNameStr = Annotated[StrictStr, AfterValidator(_resource_name)]
ApiStr = Annotated[StrictStr, AfterValidator(_api)]
ApiPartStr = Annotated[StrictStr, AfterValidator(_api_part)]
MethodStr = Annotated[StrictStr, AfterValidator(_method)]
HostPortStr = Annotated[StrictStr, AfterValidator(_host_port)]
Tags = tuple[NonEmptyStr, ...]
Paths = tuple[NonEmptyStr, ...]
NonNegInt = Annotated[StrictInt, Field(ge=0)]
MAX_SYNC_CHUNK_BYTES = 2 * 1024 * 1024
"""The largest sync chunk (issue 5): bounds the memory of each upload worker."""
NonNegFloat = Annotated[StrictFloat, Field(ge=0)]
Fraction = Annotated[StrictFloat, Field(gt=0, le=1)]
JsonObject = dict[str, JsonValue]


class ConfigModel(BaseModel):
    """Shared settings: frozen, strict scalars, unknown keys kept for warnings."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        allow_inf_nan=False,
        use_attribute_docstrings=True,
        # Editors flag unknown keys; the loader only warns about them (as Viam does).
        json_schema_extra={"additionalProperties": False},
    )

    # Keys Viam defines that Ferry reads but does not act on; their warning says so.
    viam_only_keys: ClassVar[frozenset[str]] = frozenset()
    # Whether unknown keys are reported one by one (off for ignored objects).
    report_unknown_keys: ClassVar[bool] = True


# Viam's Go package names, accepted as types for the API names (as the registry does).
TYPE_ALIASES = {"movementsensor": "movement_sensor", "powersensor": "power_sensor"}


def resource_api(api: str | None, type_: str | None, namespace: str, *, kind: str) -> str:
    """A resource's API: ``api`` if given, else ``<namespace>:<kind>:<type>``.

    Example::

        resource_api(None, "sensor", "rdk", kind="component")  # "rdk:component:sensor"
    """
    if api is not None:
        return api
    return f"{namespace}:{kind}:{TYPE_ALIASES.get(type_ or '', type_)}"
