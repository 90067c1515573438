"""The gallery in PostgreSQL: one database shared by bots, cameras and the command line on many hosts.

Tables (see storage.migrations): `people` (key = the folded name, primary key), `samples`
(float32 bytes in bytea, the features id that made them, the change counter of the
transaction that added them), `settings` (jsonb), `audit` (jsonb details),
`gallery_version` (the change counter) and `deletions`.

What the TinyDB gallery does with a lock and an atomic rename, this does with the database:

- Every change is one transaction. It starts by bumping the single `gallery_version` row;
  that row lock makes writers take turns (so samples get counter values in commit order)
  and a failed transaction rolls the bump back with everything else.
- The primary key on `people.key` makes a duplicate person impossible, even when two
  hosts enroll the same name at once (`INSERT ... ON CONFLICT DO NOTHING`).
- `version` reads the counter: one tiny query. When it moved, `embeddings()` fetches only
  the samples added since and drops the samples deleted since (the `deletions` table, by
  sample id: it keeps no name), in one repeatable-read snapshot, instead of reloading the
  gallery.
- `update_setting` reads a setting FOR UPDATE and writes what the caller makes of it in one
  transaction (a missing row is inserted first, so there is always one to lock): two hosts
  changing the access list at once both get their change in.
- Deleting a person erases them in one transaction: samples, person, and their name in
  every audit row (replaced by a random pseudonym, storage.audit).
- A writer that waits longer than LOCK_TIMEOUT_S for the counter row gets GalleryBusy, like
  a TinyDB writer waiting for the flock; a lost connection is GalleryUnavailable (a kind
  of GalleryBusy, so every face already answers it with "busy, try again").

Connection URLs are never logged with their password (`redact_url`).
"""
from __future__ import annotations

import copy
import logging
import re
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from facebot.storage.audit import AuditFor, Erasure, like_patterns, mentions, new_pseudonym, retention_days, scrub
from facebot.storage.errors import GalleryWriteError
from facebot.storage.gallery import (LOCK_TIMEOUT_S, GalleryBusy, Person, SampleInfo, SampleRemoval, SettingUpdate,
                                     UnknownPerson, UnknownSample)
from facebot.storage.migrations import migrate
from facebot.storage.names import name_key, validate_name
from facebot.storage.store import DEFAULT_FEATURES, GalleryDump, PersonRecord, SampleRecord, parse_time

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10


class GalleryUnavailable(GalleryBusy):
    """The database cannot be reached (down, network, credentials); the message says which."""


def redact_url(url: str) -> str:
    """The URL (or key=value connection string) with its password replaced by ***."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.netloc.rsplit("@", 1)[-1]
            user = parts.username or ""
            parts = parts._replace(netloc=f"{user}:***@{host}")
        url = urlunsplit(parts)
    # A password may also hide in the query string (?password=...) or a key=value string.
    return re.sub(r"(password\s*=\s*)('[^']*'|[^&\s]+)", r"\1***", url, flags=re.IGNORECASE)


def _iso(moment: datetime) -> str:
    """The same text TinyDB stores: UTC, to the second, with +00:00."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _vector_bytes(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes, as the TinyDB gallery stores them (before base64)."""
    return np.asarray(vector, dtype="<f4").tobytes()


class PostgresGallery:
    """People and their face embeddings in a PostgreSQL database at `url`, shared by every
    process that opens the same URL, on any host.

    `features` names what made the embeddings (see storage.store.Store); `retention_days`
    how long audit entries are kept (None: $FACEBOT_RETENTION_DAYS, default 365); `migrate`
    creates or upgrades the schema on first use. The connection opens lazily and reopens after a failure. One object may
    be used from several threads: calls take turns on its connection.
    """

    data_dir = None  # no folder: see `url`

    def __init__(self, url: str, features: str = DEFAULT_FEATURES, retention_days: float | None = None,
                 migrate: bool = True):
        self._url = url
        self.url = redact_url(url)  # for messages and logs
        self.features = features
        self.retention_days = _retention_days(retention_days)
        self._migrate = migrate
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()
        # The in-memory search rows: one label, one sample id, one float32 row per sample.
        self._cache_version: tuple[str, int] | None = None
        self._labels: list[str] = []
        self._ids: list[int] = []
        self._matrix = np.zeros((0, 0), np.float32)
        # `_matrix` is the first rows of `_buffer`; new samples are written after them, so a
        # refresh does not copy the whole matrix (200 MB at 100,000 samples). Rows already
        # handed out are never written again: a caller's matrix never changes under it.
        self._buffer = self._matrix
        self._cache: tuple[list[str], np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"PostgresGallery({self.url!r}, features={self.features!r})"

    # -- connection -------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        """The open connection, (re)connecting and migrating when needed."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name="facebot")
        except psycopg.Error as exc:  # unreachable, refused, bad credentials, malformed URL
            raise GalleryUnavailable(f"cannot reach the gallery database {self.url}: "
                                     f"{redact_url(_first_line(exc))}") from None
        try:
            # UTC, so times read back are the same text whatever the server's zone; and a writer
            # waits for the change counter at most as long as a TinyDB writer waits for its flock.
            conn.execute("SET TIME ZONE 'UTC'")
            conn.execute(f"SET lock_timeout = {int(LOCK_TIMEOUT_S * 1000)}")
            if self._migrate:
                migrate(conn)
                self._migrate = False  # once per object: the schema does not go back
        except BaseException:
            conn.close()  # a schema too new, no privilege to create it: no connection left open
            raise
        log.debug("connected to %s", self.url)
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PostgresGallery:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, work: Callable[[psycopg.Connection], T], retry: bool = False) -> T:
        """Run `work(conn)` under this object's lock, translating database failures.

        `retry` (reads only) reconnects and tries once more after a lost connection, e.g. a
        server restart; a write is never repeated, since its commit may have happened.
        """
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    return work(conn)
                except pg_errors.LockNotAvailable:
                    raise GalleryBusy("the gallery is busy (another process is writing); try again") from None
                except (pg_errors.ReadOnlySqlTransaction, pg_errors.DiskFull) as exc:
                    # A read-only database (a standby, default_transaction_read_only) or a full
                    # disk: changes are refused, reads go on.
                    raise GalleryWriteError(f"cannot write to the gallery database {self.url}: {_first_line(exc)}; "
                                            f"nothing was changed") from None
                except psycopg.OperationalError as exc:
                    if not conn.closed and not conn.broken:
                        raise  # a query problem, not the connection
                    self._conn = None
                    if not retry or attempt == 2:
                        raise GalleryUnavailable(f"lost the gallery database {self.url}: {_first_line(exc)}") from None
                    log.warning("lost the gallery database %s; reconnecting", self.url)
            raise AssertionError("unreachable")

    @contextmanager
    def _changing(self, conn: psycopg.Connection) -> Iterator[int]:
        """A write transaction: yields the new change-counter value, taken first so that
        writers take turns from here to commit."""
        with conn.transaction():
            version = conn.execute("UPDATE gallery_version SET version = version + 1 WHERE id = 1 "
                                   "RETURNING version").fetchone()[0]
            yield version

    # -- reading ----------------------------------------------------------------------------
    def people(self) -> list[Person]:
        """Every enrolled person with their number of samples (all features), sorted by name."""
        rows = self._run(lambda conn: conn.execute(
            "SELECT p.name, count(s.id), p.created FROM people p LEFT JOIN samples s ON s.person_key = p.key "
            "GROUP BY p.key").fetchall(), retry=True)
        return sorted((Person(name, count, _iso(created)) for name, count, created in rows),
                      key=lambda p: name_key(p.name))

    def find(self, name: str) -> Person | None:
        """The enrolled person whose name matches `name` ignoring case and spacing, or None."""
        row = self._run(lambda conn: conn.execute(
            "SELECT p.name, (SELECT count(*) FROM samples s WHERE s.person_key = p.key), p.created "
            "FROM people p WHERE p.key = %s", (name_key(name),)).fetchone(), retry=True)
        return Person(row[0], row[1], _iso(row[2])) if row else None

    @property
    def version(self) -> tuple[str, int]:
        """(gallery id, change counter): changes whenever any process changes people, samples
        or settings. One indexed single-row read."""
        row = self._run(lambda conn: conn.execute(
            "SELECT gallery_id, version FROM gallery_version WHERE id = 1").fetchone(), retry=True)
        return row[0], row[1]

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """(names, matrix): one display name and one float32 row per sample of `features`,
        in enrollment order.

        Kept in memory; when the counter moved, only the changes since are fetched (new
        samples, deleted people). A different gallery id, or a counter that went back (a
        restored database), reloads everything.
        """
        with self._lock:  # the pair must come from one refresh, whichever thread asks
            self._run(self._refresh, retry=True)
            if self._cache is None or self._cache[0] is not self._labels or self._cache[1] is not self._matrix:
                self._cache = (self._labels, self._matrix)  # one tuple per version, as TinyDB's Gallery returns
            return self._cache

    def _refresh(self, conn: psycopg.Connection) -> None:
        """Bring the in-memory rows up to date, reading in one consistent snapshot."""
        with conn.transaction():
            # One snapshot for the counter, the deletions and the new samples, so they agree.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            gallery_id, version = conn.execute("SELECT gallery_id, version FROM gallery_version WHERE id = 1").fetchone()
            cached = self._cache_version
            if cached == (gallery_id, version):
                return
            incremental = cached is not None and cached[0] == gallery_id and cached[1] < version
            since = cached[1] if incremental else -1
            if incremental:
                gone = {i for (ids,) in conn.execute("SELECT sample_ids FROM deletions WHERE version > %s", (since,))
                        for i in ids}
                if gone:
                    self._drop(gone)
            else:
                self._labels, self._ids = [], []
                self._matrix = self._buffer = np.zeros((0, 0), np.float32)
            # Binary results: bytea arrives as raw bytes, no hex decoding.
            with conn.cursor(binary=True) as cur:
                cur.execute("SELECT p.name, s.id, s.embedding FROM samples s JOIN people p ON p.key = s.person_key "
                            "WHERE s.features = %s AND s.version > %s ORDER BY s.id", (self.features, since))
                rows = cur.fetchall()
            if rows:
                self._append(rows)
            self._cache_version = (gallery_id, version)
            log.debug("gallery at version %d: %d new sample(s)%s", version, len(rows),
                      "" if incremental else " (full load)")

    def _drop(self, ids: set[int]) -> None:
        """Forget the in-memory rows of samples deleted elsewhere."""
        keep = [i for i, sample in enumerate(self._ids) if sample not in ids]
        self._labels = [self._labels[i] for i in keep]
        self._ids = [self._ids[i] for i in keep]
        self._matrix = self._buffer = self._matrix[keep] if keep else np.zeros((0, 0), np.float32)

    def _append(self, rows: list[tuple[str, int, bytes]]) -> None:
        """Add fetched (name, sample id, float32 bytes) rows after the ones in memory."""
        blobs = [bytes(r[2]) for r in rows]
        if len({len(b) for b in blobs}) == 1:  # the usual case: one bytes join, one reshape
            new = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)
        else:
            new = np.stack([np.frombuffer(b, dtype="<f4") for b in blobs])  # raises, as TinyDB's stack would
        count, dim = len(self._matrix), new.shape[1]
        if self._matrix.size and dim != self._matrix.shape[1]:
            raise ValueError(f"samples of {dim} and {self._matrix.shape[1]} values under one features id")
        if self._buffer.size == 0 or count + len(new) > len(self._buffer):
            # Grow by a quarter (at least 1,024 rows): a refresh copies the matrix rarely.
            grown = np.empty((max(count + len(new), count + count // 4, 1024), dim), np.float32)
            if count:
                grown[:count] = self._matrix
            self._buffer = grown
        self._buffer[count:count + len(new)] = new  # native float32
        self._matrix = self._buffer[:count + len(new)]
        self._labels = self._labels + [r[0] for r in rows]  # new lists: callers may hold the old ones
        self._ids = self._ids + [r[1] for r in rows]

    def samples_of(self, name: str, embeddings: bool = False) -> list[SampleInfo]:
        """Every sample of the person called `name` (all features), oldest first, with who
        added it, when, and the consent recorded; the embeddings too if asked.
        Raises UnknownPerson if nobody has that name."""
        key = name_key(name)

        def work(conn: psycopg.Connection) -> list[SampleInfo]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                if conn.execute("SELECT 1 FROM people WHERE key = %s", (key,)).fetchone() is None:
                    raise UnknownPerson(name)
                with conn.cursor(binary=True) as cur:
                    cur.execute("SELECT id, created, created_by, consent, features, "
                                + ("embedding" if embeddings else "NULL::bytea")
                                + " FROM samples WHERE person_key = %s ORDER BY id", (key,))
                    return [SampleInfo(i, _iso(c), by, consent, f, bytes(e) if e is not None else None)
                            for i, c, by, consent, f, e in cur]

        return self._run(work, retry=True)

    # -- writing ----------------------------------------------------------------------------
    def add_samples(self, samples: list[tuple[str, np.ndarray]], actor: str = "cli", consent: str | None = None,
                    audit: AuditFor[dict[str, int]] | None = None) -> dict[str, int]:
        """Enroll (name, embedding) pairs in one transaction; new names create people, every
        new sample records `consent` (who consented, when, for what).

        Returns each touched person's stored name mapped to their sample count afterwards,
        in the order first named; `audit(counts)` gives the audit entry inserted in the same
        transaction. Raises InvalidName before writing anything if any name is invalid;
        GalleryBusy if other writers held the gallery for LOCK_TIMEOUT_S.
        """
        cleaned = [(validate_name(name), _vector_bytes(vec)) for name, vec in samples]
        if not cleaned:
            return {}
        touched = list(dict.fromkeys(name_key(name) for name, _ in cleaned))

        def work(conn: psycopg.Connection) -> dict[str, int]:
            with self._changing(conn) as version:
                now = conn.execute("SELECT now()").fetchone()[0]
                firsts = {}
                for name, _ in cleaned:
                    firsts.setdefault(name_key(name), name)
                # An existing person keeps their stored name (and creation); the primary key
                # settles a race between two hosts enrolling the same new name.
                conn.execute("INSERT INTO people (key, name, created, created_by) "
                             "SELECT k, n, %s, %s FROM unnest(%s::text[], %s::text[]) AS new (k, n) "
                             "ON CONFLICT (key) DO NOTHING", (now, actor, list(firsts), list(firsts.values())))
                self._insert_samples(conn, [(name_key(n), self.features, b, now, actor, version, consent)
                                            for n, b in cleaned])
                rows = conn.execute(
                    "SELECT p.key, p.name, (SELECT count(*) FROM samples s WHERE s.person_key = p.key) "
                    "FROM people p WHERE p.key = ANY(%s)", (touched,)).fetchall()
                found = {key: (name, count) for key, name, count in rows}
                counts = dict(found[k] for k in touched)
                if audit is not None:
                    self._insert_audit(conn, actor, *audit(counts))
            return counts

        return self._run(work)

    @staticmethod
    def _insert_samples(conn: psycopg.Connection, rows: list[tuple]) -> None:
        """COPY (person_key, features, embedding, created, created_by, version, consent)
        rows: one round trip for one sample or a hundred thousand."""
        with conn.cursor().copy("COPY samples (person_key, features, embedding, created, created_by, version, consent) "
                                "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def delete(self, name: str, actor: str = "cli", audit: AuditFor[Erasure] | None = None) -> int:
        """Erase a person in one transaction: remove them and every sample of theirs, and
        replace their name in the audit log with a random pseudonym; return how many
        samples went.

        `audit(erasure)` gives the audit entry inserted in the same transaction (it should
        name the pseudonym, not the person). Raises UnknownPerson if nobody has that name
        (nothing changes then).
        """
        key = name_key(name)

        def work(conn: psycopg.Connection) -> int:
            with self._changing(conn) as version:
                stored = _lock_person(conn, key, name)
                # Readers drop these rows by id; the deletion keeps no trace of who it was.
                ids = [i for (i,) in conn.execute("DELETE FROM samples WHERE person_key = %s RETURNING id", (key,))]
                conn.execute("DELETE FROM people WHERE key = %s", (key,))
                conn.execute("INSERT INTO deletions (version, sample_ids) VALUES (%s, %s)", (version, ids))
                pseudonym = new_pseudonym()
                erasure = Erasure(stored, len(ids), pseudonym, self._pseudonymise(conn, stored, pseudonym))
                if audit is not None:
                    self._insert_audit(conn, actor, *audit(erasure))
            return erasure.samples

        return self._run(work)

    def delete_sample(self, name: str, sample_id: int, actor: str = "cli",
                      audit: AuditFor[SampleRemoval] | None = None) -> SampleRemoval:
        """Remove one sample (its id from `samples_of`) of the person called `name`, in one
        transaction with `audit(removal)`'s entry; the person stays, even with no sample
        left. Raises UnknownPerson, or UnknownSample when that person has no such sample
        (nothing changes then)."""
        key = name_key(name)

        def work(conn: psycopg.Connection) -> SampleRemoval:
            with self._changing(conn) as version:
                stored = _lock_person(conn, key, name)
                row = conn.execute("DELETE FROM samples WHERE id = %s AND person_key = %s "
                                   "RETURNING id, created, created_by, consent, features", (int(sample_id), key)).fetchone()
                if row is None:
                    raise UnknownSample(stored, sample_id)
                # Open readers drop the row by its id, as after an erasure.
                conn.execute("INSERT INTO deletions (version, sample_ids) VALUES (%s, %s)", (version, [row[0]]))
                left = conn.execute("SELECT count(*) FROM samples WHERE person_key = %s", (key,)).fetchone()[0]
                removal = SampleRemoval(stored, SampleInfo(row[0], _iso(row[1]), row[2], row[3], row[4]), left)
                if audit is not None:
                    self._insert_audit(conn, actor, *audit(removal))
            return removal

        return self._run(work)

    @staticmethod
    def _audit_rows_naming(conn: psycopg.Connection, name: str) -> list[tuple[int, Any, str, str, dict]]:
        """(id, time, action, actor, details) of the audit rows that name `name` (see
        storage.audit.mentions), oldest first: a cheap ILIKE pass on the details' text,
        then the exact test on the few rows it lets through."""
        rows = conn.execute("SELECT id, time, action, actor, details FROM audit WHERE details::text ILIKE ALL (%s) "
                            "ORDER BY id", (like_patterns(name),)).fetchall()
        return [row for row in rows if mentions(row[4], name)]

    def _pseudonymise(self, conn: psycopg.Connection, name: str, pseudonym: str) -> int:
        """Replace `name` with `pseudonym` in every audit row (in the caller's transaction);
        returns how many rows changed."""
        rows = [(Jsonb(scrub(details, name, pseudonym)), i) for i, _, _, _, details in self._audit_rows_naming(conn, name)]
        if rows:
            conn.cursor().executemany("UPDATE audit SET details = %s WHERE id = %s", rows)
        return len(rows)

    # -- settings ---------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        """A saved setting (any JSON value), or `default`."""
        row = self._run(lambda conn: conn.execute("SELECT value FROM settings WHERE key = %s", (key,)).fetchone(),
                        retry=True)
        return row[0] if row else default

    def set_setting(self, key: str, value: Any, actor: str = "cli", audit: AuditFor[Any] | None = None) -> None:
        """Save a setting (any JSON value), replacing the old one; bumps `version` like
        TinyDB, whose settings live in the gallery file. `audit(value)` gives the audit
        entry inserted in the same transaction."""
        def work(conn: psycopg.Connection) -> None:
            with self._changing(conn):
                conn.execute("INSERT INTO settings (key, value) VALUES (%s, %s) "
                             "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, Jsonb(value)))
                if audit is not None:
                    self._insert_audit(conn, actor, *audit(value))

        self._run(work)

    def update_setting(self, key: str, change: Callable[[Any], Any], actor: str = "cli",
                       audit: AuditFor[SettingUpdate] | None = None) -> Any:
        """Replace a setting with `change(old)` in one transaction: `old` is the value stored
        now (None when there is none) and what `change` returns is saved, with the audit
        entry `audit(SettingUpdate(old, new))`; returns the new value.

        The setting's row is read locked (FOR UPDATE) after the change counter, so writers on
        any host take turns from the read to the commit and none loses another's update.
        `change` may raise to refuse: the transaction rolls back, nothing is written (not even
        the row of a setting that did not exist). It runs while this object's connection is
        busy: it must not use this store.
        """
        def work(conn: psycopg.Connection) -> Any:
            with self._changing(conn):
                # A setting that does not exist yet has no row to lock: insert one first (JSON
                # null; rolled back with everything else if the change is refused). The primary
                # key makes a second process inserting at once wait for the first one's commit
                # and then find the row there; RETURNING says whether the row is ours.
                absent = conn.execute("INSERT INTO settings (key, value) VALUES (%s, 'null'::jsonb) "
                                      "ON CONFLICT (key) DO NOTHING RETURNING key", (key,)).fetchone() is not None
                # The counter above already makes writers that go through `_changing` take turns;
                # the row lock keeps the read and the write together whatever else writes it.
                stored = conn.execute("SELECT value FROM settings WHERE key = %s FOR UPDATE", (key,)).fetchone()[0]
                old = None if absent else stored
                # A copy, as on TinyDB: a `change` editing what it is given leaves `old` as read.
                update = SettingUpdate(old, change(copy.deepcopy(old)))
                conn.execute("UPDATE settings SET value = %s WHERE key = %s", (Jsonb(update.new), key))
                if audit is not None:
                    self._insert_audit(conn, actor, *audit(update))
            return update.new

        return self._run(work)

    # -- audit ------------------------------------------------------------------------------
    def audit(self, action: str, actor: str, **details: Any) -> None:
        """Append an audit entry (never a photo or a token); entries past the retention
        period go in the same statement.

        One autocommit INSERT: it does not take the change counter, so cameras recording
        sightings never wait for an enrollment, nor make readers refresh.
        """
        self._run(lambda conn: self._insert_audit(conn, actor, action, details))

    def _insert_audit(self, conn: psycopg.Connection, actor: str, action: str, details: dict[str, Any]) -> None:
        """Insert one audit entry on `conn` (in the caller's transaction, if any) and delete
        the entries older than the retention period, in one statement: an index range
        (audit_time) that is empty on all but the first write after an entry expires."""
        conn.execute("WITH expired AS (DELETE FROM audit WHERE time < now() - make_interval(secs => %s)) "
                     "INSERT INTO audit (action, actor, details) VALUES (%s, %s, %s)",
                     (self.retention_days * 86400.0, action, actor, Jsonb(details)))

    def audit_about(self, name: str) -> list[dict]:
        """Every audit entry that names the person called `name` (in a name field or in free
        text, as an erasure would find them), oldest first."""
        rows = self._run(lambda conn: self._audit_rows_naming(conn, name), retry=True)
        return [{"time": _iso(t), "action": a, "actor": who, **details} for _, t, a, who, details in rows]

    def audit_log(self, last: int = 20) -> list[dict]:
        """The newest `last` audit entries, oldest first: {time, action, actor, **details}."""
        if last <= 0:
            return []
        rows = self._run(lambda conn: conn.execute(
            "SELECT time, action, actor, details FROM audit ORDER BY id DESC LIMIT %s", (last,)).fetchall(),
            retry=True)
        return [{"time": _iso(t), "action": a, "actor": who, **details} for t, a, who, details in reversed(rows)]

    def schema_version(self) -> int:
        """The highest schema migration applied to the database (storage.migrations)."""
        from facebot.storage.migrations import current_version

        return self._run(current_version, retry=True)

    # -- moving a gallery (storage.store.copy_gallery) --------------------------------------
    def dump(self) -> GalleryDump:
        """Everything in the database (all features), in insertion order, one snapshot."""
        def work(conn: psycopg.Connection) -> GalleryDump:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                dump = GalleryDump()
                dump.people = [PersonRecord(k, n, _iso(c), by) for k, n, c, by in conn.execute(
                    "SELECT key, name, created, created_by FROM people ORDER BY created, key")]
                with conn.cursor(binary=True) as cur:
                    cur.execute("SELECT person_key, features, embedding, created, created_by, consent FROM samples "
                                "ORDER BY id")
                    dump.samples = [SampleRecord(k, f, bytes(e), _iso(c), by, consent)
                                    for k, f, e, c, by, consent in cur]
                dump.settings = dict(conn.execute("SELECT key, value FROM settings ORDER BY key").fetchall())
                dump.audit = [{"time": _iso(t), "action": a, "actor": who, **details} for t, a, who, details in
                              conn.execute("SELECT time, action, actor, details FROM audit ORDER BY id")]
            return dump

        return self._run(work, retry=True)

    def load(self, dump: GalleryDump) -> None:
        """Write a dump into this database in one transaction (all of it or nothing)."""
        def work(conn: psycopg.Connection) -> None:
            with self._changing(conn) as version:
                with conn.cursor().copy("COPY people (key, name, created, created_by) FROM STDIN") as copy:
                    for p in dump.people:
                        copy.write_row((p.key, p.name, parse_time(p.created), p.created_by))
                self._insert_samples(conn, [(s.key, s.features, s.embedding, parse_time(s.created), s.created_by,
                                             version, s.consent) for s in dump.samples])
                conn.cursor().executemany("INSERT INTO settings (key, value) VALUES (%s, %s)",
                                          [(k, Jsonb(v)) for k, v in dump.settings.items()])
                with conn.cursor().copy("COPY audit (time, action, actor, details) FROM STDIN") as copy:
                    for entry in dump.audit:
                        entry = dict(entry)
                        when = parse_time(entry.pop("time"))
                        copy.write_row((when, entry.pop("action"), entry.pop("actor"), Jsonb(entry)))

        self._run(work)


def _lock_person(conn: psycopg.Connection, key: str, name: str) -> str:
    """The stored name of the person with `key`, their row locked until the transaction ends
    (no other change to them in between); UnknownPerson, which rolls the transaction and its
    change counter back, when nobody has it."""
    row = conn.execute("SELECT name FROM people WHERE key = %s FOR UPDATE", (key,)).fetchone()
    if row is None:
        raise UnknownPerson(name)
    return row[0]


def _retention_days(value: float | None) -> float:
    """storage.audit.retention_days(value): the parameter of the same name shadows it."""
    return retention_days(value)


def init_database(url: str) -> tuple[list[int], int]:
    """Create or upgrade the gallery schema at `url`; return (versions applied now, version
    the database is at). Idempotent."""
    with PostgresGallery(url, migrate=False) as gallery:
        applied = gallery._run(migrate)
        return applied, gallery.schema_version()


def _first_line(exc: BaseException) -> str:
    """libpq's message without its hint lines; it never contains the password."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
