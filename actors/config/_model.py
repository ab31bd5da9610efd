"""The config document as frozen pydantic models, in Viam's JSON shape (spec §1).

``RobotConfig`` is the whole file: ``components[]`` (each may carry
``service_configs[{type: "data_manager", attributes: {capture_methods: [...]}}]``),
``services[]`` (the data manager's attributes, spec §1.1), ``cloud`` and
``config_source``. The models hold the document as written; ``_resolve.py``
turns it into runtime values (defaults for zeros, paths, merged tags).

Unknown keys are kept (``extra="allow"``) rather than rejected, as in Viam, and
``_warnings.py`` reports each one with its path. Checks that span fields or
resources raise ``check_error`` from model validators, so every error still
names the exact path.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

from actors.config._checks import (
    api_issues,
    dependency_issues,
    name_issues,
    required_param_issues,
    service_issues,
)
from actors.config._issues import Loc, check_error
from actors.config._types import (
    DATA_MANAGER_API,
    DATA_MANAGER_TYPE,
    MAX_SYNC_CHUNK_BYTES,
    ApiPartStr,
    ApiStr,
    ConfigModel,
    Fraction,
    HostPortStr,
    JsonObject,
    MethodStr,
    NonEmptyStr,
    NonNegFloat,
    NonNegInt,
    Paths,
    ResourceNameStr,
    Tags,
    resource_api,
)

# ---------------------------------------------------------------- capture methods


class CaptureMethodConfig(ConfigModel):
    """One entry of ``capture_methods``: a method of the resource to capture periodically."""

    viam_only_keys: ClassVar[frozenset[str]] = frozenset(
        {"retention_policy", "recent_data_store", "cache_size_kb"}
    )

    name: StrictStr | None = None
    """The resource, as 'rdk:component:camera/cam' or 'cam'; filled in when omitted."""
    method: MethodStr
    """The method to capture, e.g. 'Readings', 'ReadImage', 'JointPositions'."""
    capture_frequency_hz: StrictFloat = 0.0
    """Captures per second. <= 0 or below 1e-6 disables the method (with a warning)."""
    capture_queue_size: NonNegInt = 250
    """Readings buffered between capture and disk; 0 means 250."""
    capture_buffer_size: NonNegInt = 4096
    """Write buffer in bytes for this method's capture files; 0 means 4096."""
    additional_params: JsonObject = Field(default_factory=dict)
    """Method parameters, passed to the method and recorded in the file header."""
    disabled: StrictBool = False
    """Skip this method."""
    tags: Tags = ()
    """Tags for this method's data, added to the data manager's tags (Ferry honours these)."""
    capture_directory: StrictStr | None = None
    """Where this method's files go instead of the data manager's capture_dir."""

    @model_validator(mode="after")
    def _check_params(self) -> Self:
        issues = list(required_param_issues(self.method, self.additional_params))
        if issues:
            raise check_error(issues, title=type(self).__name__)
        return self


class CaptureAttributes(ConfigModel):
    """The ``attributes`` of a data_manager service config on a resource."""

    capture_methods: tuple[CaptureMethodConfig, ...] = ()
    """The methods of this resource to capture."""


class AssociatedServiceConfig(ConfigModel):
    """An entry of a resource's ``service_configs``: its data capture settings."""

    type: Literal["data_manager"] | None = None
    """The service this configures: 'data_manager' (or give api)."""
    api: Literal["rdk:service:data_manager"] | None = None
    """The service API: 'rdk:service:data_manager' (or give type)."""
    attributes: CaptureAttributes = Field(default_factory=CaptureAttributes)
    """The capture methods."""

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        if self.type is None and self.api is None:
            raise check_error([(("type",), "required: 'data_manager'")], title="service_configs")
        return self


# ---------------------------------------------------------------- components


class ComponentConfig(ConfigModel):
    """A robot component: its identity, driver model and attributes, and what to capture."""

    viam_only_keys: ClassVar[frozenset[str]] = frozenset({"frame", "log_configuration"})

    name: ResourceNameStr
    """Unique name, used in capture paths (letters, digits, '-', '_')."""
    api: ApiStr | None = None
    """Resource API, e.g. 'rdk:component:camera'. Or give type (and namespace)."""
    type: ApiPartStr | None = None
    """Component type, e.g. 'camera'; the API is '<namespace>:component:<type>'."""
    namespace: ApiPartStr = "rdk"
    """API namespace used with type."""
    model: NonEmptyStr
    """Driver: 'fake', 'system', 'file', or a plugin 'python:package.module:Class'."""
    attributes: JsonObject = Field(default_factory=dict)
    """Free-form settings passed to the component's driver."""
    depends_on: tuple[ResourceNameStr, ...] = ()
    """Names of resources this one needs started first."""
    service_configs: tuple[AssociatedServiceConfig, ...] = ()
    """Data capture settings for this component."""

    @property
    def resolved_api(self) -> str:
        """The resource API, from ``api`` or from ``namespace`` and ``type``."""
        return resource_api(self.api, self.type, self.namespace, kind="component")

    @property
    def capture_methods(self) -> tuple[tuple[Loc, CaptureMethodConfig], ...]:
        """Every capture method with its location relative to this component."""
        return tuple(
            (("service_configs", i, "attributes", "capture_methods", j), method)
            for i, sc in enumerate(self.service_configs)
            for j, method in enumerate(sc.attributes.capture_methods)
        )

    @model_validator(mode="after")
    def _check(self) -> Self:
        issues = api_issues(self.api, self.type, self.namespace, kind="component")
        issues += self._method_issues()
        issues += [
            (("depends_on", i), "a resource cannot depend on itself")
            for i, dep in enumerate(self.depends_on)
            if dep == self.name
        ]
        if issues:
            raise check_error(issues, title=type(self).__name__)
        return self

    def _method_issues(self) -> list[tuple[Loc, str]]:
        issues: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        full_name = f"{self.resolved_api}/{self.name}"
        for loc, method in self.capture_methods:
            if method.name is not None and method.name not in (self.name, full_name):
                issues.append(
                    ((*loc, "name"), f"names {method.name!r} but belongs to {full_name!r}")
                )
            if method.method in seen:
                issues.append(
                    ((*loc, "method"), f"{method.method!r} is already captured for {self.name!r}")
                )
            seen.add(method.method)
        return issues


# ---------------------------------------------------------------- services


class MongoCaptureConfig(ConfigModel):
    """Viam's direct-to-MongoDB capture (spec §6); parsed, but Ferry does not write to MongoDB."""

    uri: StrictStr = ""
    """Connection URI; empty turns it off."""
    database: NonEmptyStr = "sensorData"
    """Database name."""
    collection: NonEmptyStr = "readings"
    """Collection name."""


class CaptureControlSensorConfig(ConfigModel):
    """Viam's capture control sensor (spec §2.8); parsed, but not supported by Ferry."""

    name: ResourceNameStr
    """The sensor polled for capture overrides."""
    key: StrictStr = ""
    """The readings key holding the overrides."""


class DataManagerAttributes(ConfigModel):
    """The data manager's settings (spec §1.1), plus Ferry's retention keys."""

    viam_only_keys: ClassVar[frozenset[str]] = frozenset(
        {"delete_data_on_part_deletion", "cache_size_kb"}
    )

    capture_dir: StrictStr = ""
    """Where capture files go; empty means $FERRY_HOME/capture, else ~/.ferry/capture."""
    tags: Tags = ()
    """Tags added to every reading and uploaded file."""
    capture_disabled: StrictBool = False
    """Stop all capture (and the disk-full deletion that runs with it)."""
    sync_disabled: StrictBool = False
    """Stop scheduled sync; a manual Sync still uploads."""
    sync_interval_mins: NonNegFloat = 0.1
    """Minutes between scheduled syncs; within 1e-4 of 0 means 0.1."""
    additional_sync_paths: Paths = ()
    """More directories whose files are synced, then deleted."""
    file_last_modified_millis: NonNegInt = 10000
    """How long an arbitrary file must be unmodified before upload; 0 means 10000."""
    maximum_num_sync_threads: NonNegInt = 0
    """Upload workers; 0 means half the CPUs, at least 1."""
    delete_every_nth_when_disk_full: NonNegInt = 5
    """When the disk is full, delete every Nth finished file; 0 means 5."""
    disk_usage_deletion_threshold: Fraction = 0.9
    """Disk-full deletion starts when this fraction of the disk is used."""
    capture_dir_deletion_threshold: Fraction = 0.5
    """Disk-full deletion also needs the capture directory to fill this fraction of the disk."""
    maximum_capture_file_size_bytes: NonNegInt = 262144
    """A tabular capture file is finished at this size; 0 means 262144."""
    selective_syncer_name: StrictStr = ""
    """A sensor whose Readings must return {"should_sync": true} before scheduled sync runs."""
    mongo_capture_config: MongoCaptureConfig | None = None
    """Viam's MongoDB capture; not supported by Ferry."""
    capture_control_sensor: CaptureControlSensorConfig | None = None
    """Viam's capture control sensor; not supported by Ferry."""
    retention_max_capture_dir_bytes: NonNegInt = 0
    """Ferry: cap on the capture directory's size; 0 means no cap."""
    retention_max_age_hours: NonNegFloat = 0.0
    """Ferry: delete finished files older than this; 0 means keep them."""
    min_free_bytes: NonNegInt = 0
    """Ferry: keep at least this much disk free; 0 means no minimum."""
    retention_check_interval_secs: NonNegFloat = 30.0
    """Ferry: how often the disk-full and retention rules are checked; 0 means 30."""
    capture_fsync_interval_secs: NonNegFloat = 1.0
    """Ferry: fsync open capture files this often (what a power cut can lose); 0 means 1."""
    maximum_capture_file_age_secs: NonNegFloat = 300.0
    """Ferry: a tabular capture file is finished at this age even if not full; 0 means 300."""
    sync_chunk_size_bytes: Annotated[StrictInt, Field(ge=0, le=MAX_SYNC_CHUNK_BYTES)] = 2_097_152
    """Ferry: bytes per resumable-upload chunk, at most 2 MiB; 0 means 2 MiB."""
    sync_max_bytes_per_sec: NonNegInt = 0
    """Ferry: cap on upload bandwidth in bytes per second; 0 means no cap."""
    sync_rpc_timeout_secs: NonNegFloat = 60.0
    """Ferry: an upload call without an answer this long counts as offline; 0 means 60."""


class DataManagerServiceConfig(ConfigModel):
    """The data manager service (``rdk:service:data_manager``, model builtin)."""

    model_config = ConfigDict(
        json_schema_extra={
            "additionalProperties": False,
            "anyOf": [{"required": ["type"]}, {"required": ["api"]}],
        }
    )

    name: ResourceNameStr
    """The service's name, e.g. 'data_manager-1'."""
    api: Literal["rdk:service:data_manager"] | None = None
    """'rdk:service:data_manager' (or give type)."""
    type: Literal["data_manager"] | None = None
    """'data_manager' (or give api)."""
    namespace: Literal["rdk"] = "rdk"
    """Always 'rdk'."""
    model: Literal["builtin", "rdk:builtin:builtin"] = "builtin"
    """Always the builtin model."""
    attributes: DataManagerAttributes = Field(default_factory=DataManagerAttributes)
    """The data manager's settings."""
    depends_on: tuple[ResourceNameStr, ...] = ()
    """Names of resources this one needs (e.g. the selective syncer)."""


class OtherServiceConfig(ConfigModel):
    """A service Ferry does not run (vision, motion, ...); accepted and ignored with a warning."""

    model_config = ConfigDict(
        json_schema_extra={
            "additionalProperties": True,
            "not": {
                "anyOf": [
                    {"required": ["type"], "properties": {"type": {"const": DATA_MANAGER_TYPE}}},
                    {"required": ["api"], "properties": {"api": {"const": DATA_MANAGER_API}}},
                ]
            },
        }
    )
    report_unknown_keys: ClassVar[bool] = False

    name: ResourceNameStr
    """The service's name."""
    api: ApiStr | None = None
    """Service API, e.g. 'rdk:service:vision'."""
    type: ApiPartStr | None = None
    """Service type, e.g. 'vision'."""
    namespace: ApiPartStr = "rdk"
    """API namespace used with type."""
    depends_on: tuple[ResourceNameStr, ...] = ()
    """Names of resources this one needs."""

    @property
    def resolved_api(self) -> str:
        """The service API, from ``api`` or from ``namespace`` and ``type``."""
        return resource_api(self.api, self.type, self.namespace, kind="service")

    @model_validator(mode="after")
    def _check(self) -> Self:
        issues = api_issues(self.api, self.type, self.namespace, kind="service")
        if issues:
            raise check_error(issues, title=type(self).__name__)
        return self


def is_data_manager(value: object) -> bool:
    """Whether a raw ``services[]`` entry configures the data manager."""
    if isinstance(value, DataManagerServiceConfig):
        return True
    if not isinstance(value, dict):
        return False
    if value.get("api") is not None:
        return bool(value["api"] == DATA_MANAGER_API)
    return value.get("type") == DATA_MANAGER_TYPE and value.get("namespace", "rdk") == "rdk"


def _service_kind(value: object) -> str:
    return "data_manager_service" if is_data_manager(value) else "other_service"


ServiceConfig = Annotated[
    Annotated[DataManagerServiceConfig, Tag("data_manager_service")]
    | Annotated[OtherServiceConfig, Tag("other_service")],
    Discriminator(_service_kind),
]


# ---------------------------------------------------------------- cloud and root


class CloudConfig(ConfigModel):
    """How to reach the cloud that receives synced data (and may serve the config)."""

    address: HostPortStr
    """The ingestion server as host:port, e.g. 'data.example.com:443'."""
    part_id: NonEmptyStr
    """This robot part's id in the cloud."""
    api_key_id: NonEmptyStr
    """The API key's id."""
    api_key: NonEmptyStr = Field(repr=False)
    """The API key."""
    tls_ca_file: StrictStr | None = None
    """A PEM file of CA certificates to trust instead of the system's."""
    insecure: StrictBool = False
    """Connect without TLS (for a local test server only)."""

    @property
    def host(self) -> str:
        """The host part of ``address`` (IPv6 without brackets)."""
        return self.address.rpartition(":")[0].removeprefix("[").removesuffix("]")

    @property
    def port(self) -> int:
        """The port part of ``address``."""
        return int(self.address.rpartition(":")[2])


class RobotConfig(ConfigModel):
    """A Ferry config file: Viam's robot config shape, plus ``cloud`` and ``config_source``.

    Example::

        RobotConfig.model_validate(
            {"components": [{"name": "s", "type": "sensor", "model": "fake"}]}
        )
    """

    viam_only_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "modules", "remotes", "processes", "network", "auth", "agent", "fragments",
            "fragment_mods", "packages", "jobs", "debug", "disable_partial_start",
            "enable_web_profile", "log", "revision", "maintenance", "disable_log_deduplication",
        }
    )  # fmt: skip

    schema_: StrictStr | None = Field(default=None, alias="$schema")
    """The JSON Schema this file follows, for editors (e.g. 'ferry.schema.json')."""
    config_source: Literal["local", "cloud"] = "local"
    """'local': this file is the config. 'cloud': fetch it from the cloud section's server."""
    components: tuple[ComponentConfig, ...] = ()
    """The robot's components."""
    services: tuple[ServiceConfig, ...] = ()
    """Services; Ferry runs the data manager and ignores others."""
    cloud: CloudConfig | None = None
    """The cloud connection; needed for sync and for config_source 'cloud'."""

    @property
    def data_managers(self) -> tuple[tuple[int, DataManagerServiceConfig], ...]:
        """Every data manager service with its index in ``services`` (valid: at most one)."""
        return tuple(
            (i, s) for i, s in enumerate(self.services) if isinstance(s, DataManagerServiceConfig)
        )

    @property
    def data_manager(self) -> tuple[int, DataManagerServiceConfig] | None:
        """The data manager service and its index in ``services``, if configured."""
        managers = self.data_managers
        return managers[0] if managers else None

    @model_validator(mode="after")
    def _check(self) -> Self:
        issues = name_issues(self) + dependency_issues(self) + service_issues(self)
        if self.config_source == "cloud" and self.cloud is None:
            issues.append((("cloud",), "required when config_source is 'cloud'"))
        if issues:
            raise check_error(issues, title=type(self).__name__)
        return self
