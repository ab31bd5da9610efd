"""``FleetMixin``: fragments, part configs and robot reports in the embedded store.

A change is checked inside its write transaction, against the configs it
affects as they are at that moment: a new fragment version is merged into
every part that uses it unpinned, a new part config is merged with its
fragments; the first invalid merge refuses the change. The organization's
change counter is bumped in the same transaction, which is how servers (in
this process or another) learn that configs changed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from actors.config import ConfigError, ConfigIssue
from cloud.errors import FailedPrecondition, PermissionDenied
from cloud.fleet.merge import (
    Fragment,
    FragmentRef,
    Merged,
    PartConfig,
    canonical_json,
    check_fragment,
    merge,
    parse_part_config,
)
from cloud.fleet.port import FragmentInfo, PartConfigRecord, PartReport, PartStatus

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from actors.codec import JsonObject
    from cloud.store.sqlite._db import Database


class FleetMixin:
    """The ``FleetStore`` methods of ``SqliteStore``; needs ``_db`` and ``_wall_ns``."""

    _db: Database
    _wall_ns: Callable[[], int]

    # -- fragments -----------------------------------------------------------------

    def put_fragment(
        self, org_id: str, name: str, document: JsonObject, *, expected_version: int | None = None
    ) -> int:
        """Stores a new version of a fragment, if every part using it still merges.

        ``expected_version`` makes it compare-and-set: the write happens only if
        the latest version is still that one (a read-modify-write never loses
        someone else's change).

        Raises:
            ConfigError: the fragment is invalid, or it would make a part's merged
                config invalid (the message names the part and each problem).
            FailedPrecondition: the latest version is not ``expected_version``.
        """
        check_fragment(name, document)
        with self._db.write() as conn:
            version = _next_version(conn, "config_fragments", "name", org_id, name)
            if expected_version is not None and version - 1 != expected_version:
                raise FailedPrecondition(
                    f"fragment {name!r} changed since it was read: now v{version - 1}, "
                    f"read v{expected_version}; try again"
                )
            new = Fragment(name, version, document)
            for part_id, part_version, part in _latest_parts(conn, org_id):
                if any(r.name == name and r.version is None for r in part.fragments):
                    fragments = _fragments_of(conn, org_id, part, override=new)
                    merge(part_id, part_version, part, fragments)
            conn.execute(
                "INSERT INTO config_fragments (org_id, name, version, document, created_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                (org_id, name, version, canonical_json(document), self._wall_ns()),
            )
            _bump(conn, org_id)
        return version

    def get_fragment(self, org_id: str, name: str, version: int | None = None) -> Fragment | None:
        """A fragment at ``version`` (latest when ``None``), or ``None``."""
        with self._db.read() as conn:
            return _fragment(conn, org_id, name, version)

    def list_fragments(self, org_id: str) -> list[FragmentInfo]:
        """Every fragment of the organization with its latest version and its users."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT name, MAX(version), MAX(created_ns) FROM config_fragments "
                "WHERE org_id = ? GROUP BY name ORDER BY name",
                (org_id,),
            ).fetchall()
            parts = _latest_parts(conn, org_id)
        return [
            FragmentInfo(
                name=name,
                version=int(version),
                created_ns=int(created),
                used_by=tuple(p for p, _, part in parts if _uses(part, name, pinned=False)),
                pinned_by=tuple(p for p, _, part in parts if _uses(part, name, pinned=True)),
            )
            for name, version, created in rows
        ]

    # -- part configs --------------------------------------------------------------

    def put_part_config(
        self, org_id: str, part_id: str, document: JsonObject
    ) -> tuple[int, Merged]:
        """Stores a new version of a part's config, if it merges into a valid config;
        returns the version stored and the merged config.

        Raises:
            ConfigError: the document or its merged config is invalid.
            PermissionDenied: the part belongs to another organization.
        """
        part = parse_part_config(part_id, document)
        with self._db.write() as conn:
            _check_owner(conn, org_id, part_id)
            version = _next_version(conn, "config_parts", "part_id", org_id, part_id)
            merged = merge(part_id, version, part, _fragments_of(conn, org_id, part))
            conn.execute(
                "INSERT INTO config_parts (org_id, part_id, version, document, created_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                (org_id, part_id, version, canonical_json(document), self._wall_ns()),
            )
            _bump(conn, org_id)
        return version, merged

    def get_part_config(
        self, org_id: str, part_id: str, version: int | None = None
    ) -> PartConfigRecord | None:
        """A part's config document at ``version`` (latest when ``None``), or ``None``."""
        with self._db.read() as conn:
            row = _versioned_row(conn, "config_parts", "part_id", org_id, part_id, version)
        if row is None:
            return None
        return PartConfigRecord(part_id, int(row[0]), json.loads(row[1]), int(row[2]))

    def merged_config(self, org_id: str, part_id: str) -> Merged | None:
        """The config the part should run now, or ``None`` when it has none.

        Raises:
            ConfigError: the stored config no longer merges (it was valid when
                stored; a pinned fragment version cannot vanish, so this means a
                newer Ferry validates more strictly).
        """
        with self._db.read() as conn:
            row = _versioned_row(conn, "config_parts", "part_id", org_id, part_id, None)
            if row is None:
                return None
            part = parse_part_config(part_id, json.loads(row[1]))
            fragments = _fragments_of(conn, org_id, part)
        return merge(part_id, int(row[0]), part, fragments)

    def config_revisions(self) -> dict[str, int]:
        """Each organization's change counter."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT org_id, revision FROM config_revisions").fetchall()
        return {str(org): int(rev) for org, rev in rows}

    # -- what robots report --------------------------------------------------------

    def report_part(self, org_id: str, part_id: str, report: PartReport | None) -> None:
        """Marks the part seen now and, with a report, records what it runs."""
        now = self._wall_ns()
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO part_status (org_id, part_id, last_seen_ns) VALUES (?, ?, ?) "
                "ON CONFLICT (org_id, part_id) DO UPDATE SET last_seen_ns = excluded.last_seen_ns",
                (org_id, part_id, now),
            )
            if report is None:
                return
            old = conn.execute(
                "SELECT applied_revision, applied_ns FROM part_status "
                "WHERE org_id = ? AND part_id = ?",
                (org_id, part_id),
            ).fetchone()
            applied_ns = old[1] if old[0] == report.applied_revision else now
            conn.execute(
                "UPDATE part_status SET applied_revision = ?, applied_label = ?, applied_ns = ?, "
                "rejected_revision = ?, error = ?, pending_files = ?, pending_bytes = ? "
                "WHERE org_id = ? AND part_id = ?",
                (
                    report.applied_revision,
                    report.applied_label,
                    applied_ns if report.applied_revision else None,
                    report.rejected_revision,
                    report.error,
                    report.pending_files,
                    report.pending_bytes,
                    org_id,
                    part_id,
                ),
            )

    def part_statuses(self, org_id: str) -> list[PartStatus]:
        """Every part with a config or a report, by id, with its current revision."""
        with self._db.read() as conn:
            reports = {
                str(row[0]): row
                for row in conn.execute(
                    "SELECT part_id, last_seen_ns, applied_revision, applied_label, applied_ns, "
                    "rejected_revision, error, pending_files, pending_bytes "
                    "FROM part_status WHERE org_id = ?",
                    (org_id,),
                )
            }
            versions = {
                str(part): int(version)
                for part, version in conn.execute(
                    "SELECT part_id, MAX(version) FROM config_parts WHERE org_id = ? "
                    "GROUP BY part_id",
                    (org_id,),
                )
            }
        out = []
        for part_id in sorted(set(reports) | set(versions)):
            try:
                merged = self.merged_config(org_id, part_id)
            except ConfigError:
                merged = None
            row = reports.get(part_id)
            out.append(
                PartStatus(
                    part_id=part_id,
                    config_version=versions.get(part_id),
                    current_revision=merged.revision if merged is not None else "",
                    last_seen_ns=int(row[1]) if row else None,
                    applied_revision=str(row[2]) if row else "",
                    applied_label=str(row[3]) if row else "",
                    applied_ns=int(row[4]) if row and row[4] is not None else None,
                    rejected_revision=str(row[5]) if row else "",
                    error=str(row[6]) if row else "",
                    pending_files=int(row[7]) if row else 0,
                    pending_bytes=int(row[8]) if row else 0,
                )
            )
        return out


# --------------------------------------------------------------------- helpers


def _next_version(conn: sqlite3.Connection, table: str, key: str, org_id: str, name: str) -> int:
    row = conn.execute(
        f"SELECT COALESCE(MAX(version), 0) FROM {table} WHERE org_id = ? AND {key} = ?",
        (org_id, name),
    ).fetchone()
    return int(row[0]) + 1


def _versioned_row(
    conn: sqlite3.Connection, table: str, key: str, org_id: str, name: str, version: int | None
) -> tuple[int, str, int] | None:
    if version is None:
        query = (
            f"SELECT version, document, created_ns FROM {table} "
            f"WHERE org_id = ? AND {key} = ? ORDER BY version DESC LIMIT 1"
        )
        row = conn.execute(query, (org_id, name)).fetchone()
    else:
        query = (
            f"SELECT version, document, created_ns FROM {table} "
            f"WHERE org_id = ? AND {key} = ? AND version = ?"
        )
        row = conn.execute(query, (org_id, name, version)).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), int(row[2]))


def _fragment(
    conn: sqlite3.Connection, org_id: str, name: str, version: int | None
) -> Fragment | None:
    row = _versioned_row(conn, "config_fragments", "name", org_id, name, version)
    return None if row is None else Fragment(name, row[0], json.loads(row[1]))


def _fragments_of(
    conn: sqlite3.Connection, org_id: str, part: PartConfig, *, override: Fragment | None = None
) -> dict[str, Fragment]:
    """The fragments a part uses, each at its pinned version or the latest."""
    out: dict[str, Fragment] = {}
    for ref in part.fragments:
        if override is not None and ref.name == override.name and ref.version is None:
            out[ref.name] = override
            continue
        found = _fragment(conn, org_id, ref.name, ref.version)
        if found is None and ref.version is not None:
            raise _missing_version(part, ref)
        if found is not None:
            out[ref.name] = found
    return out


def _missing_version(part: PartConfig, ref: FragmentRef) -> ConfigError:
    return ConfigError(
        f"config of part {part.part_id!r}",
        [ConfigIssue("fragments", f"fragment {ref.name!r} has no version {ref.version}")],
    )


def _uses(part: PartConfig, name: str, *, pinned: bool) -> bool:
    """Whether ``part`` lists fragment ``name`` pinned to a version (or following the latest)."""
    return any(r.name == name and (r.version is not None) == pinned for r in part.fragments)


def _latest_parts(conn: sqlite3.Connection, org_id: str) -> list[tuple[str, int, PartConfig]]:
    rows = conn.execute(
        "SELECT p.part_id, p.version, p.document FROM config_parts p "
        "JOIN (SELECT part_id, MAX(version) AS v FROM config_parts WHERE org_id = ? "
        "GROUP BY part_id) latest ON latest.part_id = p.part_id AND latest.v = p.version "
        "WHERE p.org_id = ? ORDER BY p.part_id",
        (org_id, org_id),
    ).fetchall()
    return [
        (str(part_id), int(version), parse_part_config(str(part_id), json.loads(document)))
        for part_id, version, document in rows
    ]


def _check_owner(conn: sqlite3.Connection, org_id: str, part_id: str) -> None:
    """A part id belongs to one organization: the one its uploads or its config name."""
    owners = {
        str(row[0])
        for row in conn.execute(
            "SELECT org_id FROM parts WHERE part_id = ? "
            "UNION SELECT org_id FROM config_parts WHERE part_id = ?",
            (part_id, part_id),
        )
    }
    if owners - {org_id}:
        raise PermissionDenied(f"part {part_id!r} belongs to another organization")


def _bump(conn: sqlite3.Connection, org_id: str) -> None:
    conn.execute(
        "INSERT INTO config_revisions (org_id, revision) VALUES (?, 1) "
        "ON CONFLICT (org_id) DO UPDATE SET revision = revision + 1",
        (org_id,),
    )
