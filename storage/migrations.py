"""The PostgreSQL gallery's schema as an ordered list of migrations, and the code that applies them.

The pending migrations run in one transaction together with the rows that record them in
`schema_version` (PostgreSQL's DDL is transactional), so a database is always at exactly
one recorded version: a crash in the middle leaves the previous version, never half of
the next. Migrations only
ever get appended to `MIGRATIONS`; a released one is never edited (a database that already
applied it would never see the change).

Concurrent starts (several cameras booting at once, each opening the gallery) are safe:
the whole check-and-apply runs under a transaction-scoped advisory lock, so one process
migrates and the others wait, then find nothing left to do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Any fixed 64-bit number; it only has to be the same for every facebot process.
ADVISORY_LOCK_ID = 0x66616365626F74  # "facebot"


@dataclass(frozen=True)
class Migration:
    """One schema step: `version` (1, 2, ...), a short `name`, and the SQL that makes it."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "gallery tables", """
        -- One row per person; `key` is storage.names.name_key(name) (case and spacing folded),
        -- so the primary key is what forbids two people with the same name, even when two
        -- hosts enroll them at the same instant.
        CREATE TABLE people (
            key         text PRIMARY KEY,
            name        text NOT NULL,
            created     timestamptz NOT NULL,
            created_by  text NOT NULL
        );
        -- One row per embedding, float32 little-endian bytes (2,048 bytes for 512-d); never a
        -- photo. `features` is what made the embedding (Gallery.features). `version` is the
        -- change counter of the transaction that added it: readers fetch only newer rows.
        CREATE TABLE samples (
            id          bigserial PRIMARY KEY,
            person_key  text NOT NULL REFERENCES people (key) ON DELETE CASCADE,
            features    text NOT NULL,
            embedding   bytea NOT NULL CHECK (octet_length(embedding) > 0 AND octet_length(embedding) % 4 = 0),
            created     timestamptz NOT NULL,
            created_by  text NOT NULL,
            version     bigint NOT NULL
        );
        CREATE TABLE settings (
            key    text PRIMARY KEY,
            value  jsonb NOT NULL
        );
        CREATE TABLE audit (
            id       bigserial PRIMARY KEY,
            time     timestamptz NOT NULL DEFAULT now(),
            action   text NOT NULL,
            actor    text NOT NULL,
            details  jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        -- The change counter: one row, bumped first thing in every transaction that changes
        -- people, samples or settings. Its row lock makes writers take turns, so samples get
        -- versions (and ids) in commit order. `gallery_id` tells a reader that the database
        -- was replaced (a copy, a restore), where counters alone could coincide.
        CREATE TABLE gallery_version (
            id          integer PRIMARY KEY CHECK (id = 1),
            gallery_id  text NOT NULL,
            version     bigint NOT NULL
        );
        INSERT INTO gallery_version VALUES (1, md5(random()::text || clock_timestamp()::text), 0);
        -- Who was deleted at which version, so that a reader holding the gallery in memory
        -- drops exactly those rows instead of reloading everything. Deletions are rare
        -- (a person at a time, by HR), so the table stays small.
        CREATE TABLE deletions (
            version     bigint NOT NULL,
            person_key  text NOT NULL
        );
    """),
    Migration(2, "indexes for refresh, counts and audit", """
        -- A reader's refresh asks for "samples of these features newer than my version".
        CREATE INDEX samples_features_version ON samples (features, version);
        -- Counting and deleting a person's samples (and the foreign key's cascade).
        CREATE INDEX samples_person_key ON samples (person_key);
        CREATE INDEX deletions_version ON deletions (version);
        -- "The newest N entries of this actor" (a camera's history).
        CREATE INDEX audit_actor ON audit (actor, id);
    """),
    Migration(3, "consent with each sample", """
        -- HR's note of who consented, when and for what (GDPR Art. 9, BIPA), stored with the
        -- sample it covers; NULL for samples enrolled before it was recorded.
        ALTER TABLE samples ADD COLUMN consent text;
    """),
    Migration(4, "deletions name samples, not people", """
        -- Erasure leaves the name nowhere: a deletion records the ids of the samples it
        -- removed (what a reader drops from memory) instead of the person's key (their
        -- folded name). The rows before this step name people who are gone: they go, and
        -- a new gallery id makes every reader reload once instead of needing them.
        DELETE FROM deletions;
        ALTER TABLE deletions DROP COLUMN person_key;
        ALTER TABLE deletions ADD COLUMN sample_ids bigint[] NOT NULL;
        UPDATE gallery_version SET gallery_id = md5(random()::text || clock_timestamp()::text);
    """),
    Migration(5, "audit kept by age", """
        -- Entries expire FACEBOT_RETENTION_DAYS after their time; every audit write deletes
        -- the expired ones, found by this index (an empty range almost every time).
        CREATE INDEX audit_time ON audit (time);
    """),
)

LATEST = MIGRATIONS[-1].version


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer facebot than this one."""


def current_version(conn) -> int:
    """The highest applied migration (0 for an empty database). `conn` is a psycopg connection."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(conn, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Bring the database up to the last of `migrations`; return the versions applied now.

    `conn` is a psycopg connection in autocommit mode. Idempotent: on an up-to-date
    database it applies nothing (and needs no CREATE privilege). Raises SchemaTooNew when
    the database is ahead of this code.
    """
    _check_order(migrations)
    latest = migrations[-1].version if migrations else 0
    # Cheap path first, without the lock: every process opening the gallery comes here.
    if current_version(conn) == latest:
        return []
    applied = []
    with conn.transaction():
        # Held until this transaction ends; other processes migrating wait here.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_ID,))
        conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                            version     integer PRIMARY KEY,
                            name        text NOT NULL,
                            applied_at  timestamptz NOT NULL DEFAULT now())""")
        done = current_version(conn)
        if done > latest:
            raise SchemaTooNew(f"the database schema is at version {done}, newer than this facebot knows "
                               f"({latest}); upgrade facebot")
        for step in migrations:
            if step.version <= done:
                continue
            conn.execute(step.sql)
            conn.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (step.version, step.name))
            applied.append(step)
    for step in applied:  # logged once committed, so the log never claims a rolled-back step
        log.info("applied schema migration %d (%s)", step.version, step.name)
    return [step.version for step in applied]


def _check_order(migrations: tuple[Migration, ...]) -> None:
    """Versions must be 1, 2, 3, ... in order: a gap or a swap is a programming error."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3, ... in order; got {versions}")
