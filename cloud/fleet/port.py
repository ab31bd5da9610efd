"""The ``FleetStore`` port: what the config service and ``ferry cloud config`` need stored.

Synchronous, like ``Store``; every write is durable when it returns and checked
before it is stored: a fragment or part config that would give any part an
invalid merged config is refused (``ConfigError``, every problem by path) and
nothing changes. Everything is scoped to one organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, final

if TYPE_CHECKING:
    from actors.codec import JsonObject
    from cloud.fleet.merge import Fragment, Merged


@final
@dataclass(frozen=True, slots=True)
class FragmentInfo:
    """A fragment's latest version and the parts whose config lists it."""

    name: str
    version: int
    created_ns: int
    used_by: tuple[str, ...]
    """Parts that follow its latest version (a change reaches them)."""
    pinned_by: tuple[str, ...] = ()
    """Parts pinned to one version of it (a change does not reach them)."""


@final
@dataclass(frozen=True, slots=True)
class PartConfigRecord:
    """One stored version of a part's config document."""

    part_id: str
    version: int
    document: JsonObject
    created_ns: int


@final
@dataclass(frozen=True, slots=True)
class PartReport:
    """What a robot says in ``ReportStatus``."""

    applied_revision: str = ""
    applied_label: str = ""
    rejected_revision: str = ""
    error: str = ""
    pending_files: int = 0
    pending_bytes: int = 0


@final
@dataclass(frozen=True, slots=True)
class PartStatus:
    """A part as ``ferry cloud parts`` shows it: its config, what it runs, when last seen."""

    part_id: str
    config_version: int | None
    current_revision: str
    last_seen_ns: int | None
    applied_revision: str
    applied_label: str
    applied_ns: int | None
    rejected_revision: str
    error: str
    pending_files: int
    pending_bytes: int


class FleetStore(Protocol):
    """Durable fragments, part configs, and what each robot reported."""

    def put_fragment(
        self, org_id: str, name: str, document: JsonObject, *, expected_version: int | None = None
    ) -> int:
        """Stores a new version of a fragment; returns it (``ConfigError`` if refused;
        ``FailedPrecondition`` if the latest version is not ``expected_version``)."""
        ...

    def get_fragment(self, org_id: str, name: str, version: int | None = None) -> Fragment | None:
        """A fragment at ``version`` (latest when ``None``), or ``None``."""
        ...

    def list_fragments(self, org_id: str) -> list[FragmentInfo]:
        """Every fragment of the organization, by name."""
        ...

    def put_part_config(
        self, org_id: str, part_id: str, document: JsonObject
    ) -> tuple[int, Merged]:
        """Stores a new version of a part's config; returns the version and merged config."""
        ...

    def get_part_config(
        self, org_id: str, part_id: str, version: int | None = None
    ) -> PartConfigRecord | None:
        """A part's config document at ``version`` (latest when ``None``), or ``None``."""
        ...

    def merged_config(self, org_id: str, part_id: str) -> Merged | None:
        """The config the part should run now, or ``None`` when it has none."""
        ...

    def config_revisions(self) -> dict[str, int]:
        """Each organization's change counter (it grows with every config change)."""
        ...

    def report_part(self, org_id: str, part_id: str, report: PartReport | None) -> None:
        """Marks the part seen now and, with a report, records what it runs."""
        ...

    def part_statuses(self, org_id: str) -> list[PartStatus]:
        """Every part with a config or a report, by id."""
        ...
