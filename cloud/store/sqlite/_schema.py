"""The embedded store's SQLite schema (version 3) and connection settings.

Times are INTEGER nanoseconds since the Unix epoch (UTC). JSON columns hold
compact JSON text. Every row carries its organization so that scoping a query is
one indexed equality. Applied in one transaction by ``apply_schema``, which
also upgrades a database of an older version in place (``_MIGRATIONS``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

SCHEMA_VERSION = 3

# WAL for concurrent readers; synchronous=FULL so a commit is fsynced before it
# returns (the durability the RPCs acknowledge).
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    location_id TEXT NOT NULL,
    part_id     TEXT,
    secret_hash BLOB NOT NULL,
    salt        BLOB NOT NULL,
    created_ns  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS parts (
    part_id     TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    location_id TEXT NOT NULL,
    part_name   TEXT NOT NULL DEFAULT '',
    robot_id    TEXT NOT NULL DEFAULT '',
    robot_name  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS uploads (
    upload_id        TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL,
    part_id          TEXT NOT NULL,
    path             TEXT NOT NULL,
    size             INTEGER NOT NULL,
    sha256           BLOB NOT NULL,
    kind             INTEGER NOT NULL,
    metadata         BLOB NOT NULL,
    committed_offset INTEGER NOT NULL DEFAULT 0,
    status           INTEGER NOT NULL,
    created_ns       INTEGER NOT NULL,
    touched_ns       INTEGER NOT NULL DEFAULT 0,  -- last chunk committed (0: none yet)
    finished_ns      INTEGER,
    file_id          TEXT NOT NULL DEFAULT '',
    binary_data_ids  TEXT NOT NULL DEFAULT '[]',
    records          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org_id, part_id, path, size, sha256)
);

-- Capture context shared by many readings (one row per distinct context).
CREATE TABLE IF NOT EXISTS contexts (
    context_id        INTEGER PRIMARY KEY,
    org_id            TEXT NOT NULL,
    location_id       TEXT NOT NULL,
    part_id           TEXT NOT NULL,
    component_type    TEXT NOT NULL,
    component_name    TEXT NOT NULL,
    method_name       TEXT NOT NULL,
    method_parameters TEXT NOT NULL,  -- JSON {name: {"type_url": s, "value": base64}}
    tags              TEXT NOT NULL,  -- JSON list, sorted, distinct
    mime_type         TEXT NOT NULL,
    UNIQUE (org_id, location_id, part_id, component_type, component_name, method_name,
            method_parameters, tags, mime_type)
);

CREATE TABLE IF NOT EXISTS tabular (
    id             INTEGER PRIMARY KEY,
    org_id         TEXT NOT NULL,
    context_id     INTEGER NOT NULL REFERENCES contexts(context_id),
    time_requested INTEGER NOT NULL,
    time_received  INTEGER NOT NULL,
    time_synced    INTEGER NOT NULL,
    data           TEXT NOT NULL,  -- JSON object (the Struct)
    file_id        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tabular_by_org_time ON tabular (org_id, time_requested, id);
CREATE INDEX IF NOT EXISTS tabular_by_context_time ON tabular (context_id, time_requested, id);

CREATE TABLE IF NOT EXISTS binary (
    binary_data_id TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL,
    context_id     INTEGER NOT NULL REFERENCES contexts(context_id),
    sha256         TEXT NOT NULL,  -- the blob file holding the item
    size           INTEGER NOT NULL,
    blob_offset    INTEGER NOT NULL DEFAULT 0,  -- where the item starts in it
    time_requested INTEGER NOT NULL,
    time_received  INTEGER NOT NULL,
    time_synced    INTEGER NOT NULL,
    mime_type      TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    file_ext       TEXT NOT NULL,
    dataset_ids    TEXT NOT NULL,  -- JSON list
    annotations    TEXT,           -- JSON object or NULL
    file_id        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS binary_by_org_time ON binary (org_id, time_requested, binary_data_id);
CREATE INDEX IF NOT EXISTS binary_by_sha ON binary (sha256);

-- Fleet configuration (cloud/fleet): every version of every fragment and part
-- config is kept; the latest is the highest version.
CREATE TABLE IF NOT EXISTS config_fragments (
    org_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    document   TEXT NOT NULL,  -- JSON object
    created_ns INTEGER NOT NULL,
    PRIMARY KEY (org_id, name, version)
);

CREATE TABLE IF NOT EXISTS config_parts (
    org_id     TEXT NOT NULL,
    part_id    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    document   TEXT NOT NULL,  -- JSON object: fragments, fragment_mods, components, services
    created_ns INTEGER NOT NULL,
    PRIMARY KEY (org_id, part_id, version)
);

-- Bumped in the transaction of every config change, so a server learns that an
-- organization's configs changed (whoever changed them) with one small read.
CREATE TABLE IF NOT EXISTS config_revisions (
    org_id   TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);

-- Blob byte ranges whose rows a delete removed: written in the delete's
-- transaction, cleared once the range is freed (blob removed or hole punched).
-- A crash between the two leaves rows here, and the store frees them at open.
-- Additive: an older Ferry ignores the table and keeps those bytes, as it did.
CREATE TABLE IF NOT EXISTS pending_frees (
    sha256      TEXT NOT NULL,
    blob_offset INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    PRIMARY KEY (sha256, blob_offset, size)
);

-- What each robot last reported: the config it runs, one it refused, its backlog.
CREATE TABLE IF NOT EXISTS part_status (
    org_id            TEXT NOT NULL,
    part_id           TEXT NOT NULL,
    last_seen_ns      INTEGER NOT NULL,
    applied_revision  TEXT NOT NULL DEFAULT '',
    applied_label     TEXT NOT NULL DEFAULT '',
    applied_ns        INTEGER,
    rejected_revision TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    pending_files     INTEGER NOT NULL DEFAULT 0,
    pending_bytes     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, part_id)
);
"""


def apply_schema(conn: sqlite3.Connection) -> None:
    """Creates the tables if missing and records the schema version.

    Raises:
        RuntimeError: the database was written by a newer, unknown schema.
    """
    with conn:
        conn.executescript("BEGIN;" + SCHEMA + "COMMIT;")
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    if row is None:
        with conn:
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
    elif int(row[0]) > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {int(row[0])} is newer than this Ferry ({SCHEMA_VERSION})"
        )
    else:
        for version in range(int(row[0]) + 1, SCHEMA_VERSION + 1):
            with conn:
                conn.execute(_MIGRATIONS[version])
                conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (version,))


# The statement that brings a database of version N-1 to version N.
_MIGRATIONS = {
    # Binary items may be a byte range of their blob (images of a capture file).
    2: "ALTER TABLE binary ADD COLUMN blob_offset INTEGER NOT NULL DEFAULT 0",
    # Open uploads idle for long are expired (``expire_idle_uploads``).
    3: "ALTER TABLE uploads ADD COLUMN touched_ns INTEGER NOT NULL DEFAULT 0",
}
