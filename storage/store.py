"""What every gallery store offers, the factory that picks one, and moving a gallery between stores.

Two implementations:

- `storage.gallery.Gallery` — TinyDB files in a folder (the default; one machine).
- `storage.postgres.PostgresGallery` — a PostgreSQL database shared by processes on many
  hosts (`FACEBOT_DATABASE_URL=postgresql://...`).

Both hold the same things: people, samples (each tagged with the features id that made
it), settings and the audit log. `open_gallery` returns one or the other; everything
above `storage` (the service, and through it the command line, the bot and the camera)
talks to the `Store` protocol only.

`copy_gallery` moves a whole gallery — every sample of every features id, every setting
and every audit entry — from one store to an empty other one and verifies the result.
"""
from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Hashable, NamedTuple, Protocol, runtime_checkable

import numpy as np
from tinydb.table import Table

from facebot.storage.audit import AuditFor, Erasure
from facebot.storage.gallery import Gallery, Person, SampleInfo, SampleRemoval, SettingUpdate

log = logging.getLogger(__name__)

# What made the embeddings when the caller does not say: the TinyDB Gallery's own default,
# read from its signature so that the two stores can never disagree about it.
DEFAULT_FEATURES: str = inspect.signature(Gallery.__init__).parameters["features"].default

URL_SCHEMES = ("postgresql://", "postgres://")


@runtime_checkable
class Store(Protocol):
    """A gallery of enrolled people, shared safely between processes.

    Every method is one transaction: it happens completely or not at all, and a change made
    by one process (on any host, for PostgreSQL) is visible to every other open store as
    soon as it returns.

    Attributes:
        features: what made the embeddings this store compares (FaceNet's weights, or a
            Siamese network's); `embeddings()` returns only samples made by these features,
            and `add_samples` tags new samples with them.
        data_dir: the gallery folder (TinyDB), or None where there is no folder (PostgreSQL).
        retention_days: how long audit entries are kept ($FACEBOT_RETENTION_DAYS, default 365).
    """

    features: str
    data_dir: Path | None
    retention_days: float

    @property
    def version(self) -> Hashable:
        """A cheap token that changes whenever people, samples or settings change, by this or
        any other process. Compare it with an earlier value to know whether to rebuild a
        search matrix; its type is the store's business."""

    def people(self) -> list[Person]:
        """Every enrolled person with their number of samples (all features), sorted by name
        ignoring case and spacing."""

    def find(self, name: str) -> Person | None:
        """The person whose name matches `name` ignoring case and spacing, or None."""

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """(names, matrix): one display name and one float32 row per sample of `features`.

        Cached until `version` changes, so callers may ask before every search. The matrix
        is (0, 0) when there is no sample."""

    def samples_of(self, name: str, embeddings: bool = False) -> list[SampleInfo]:
        """Every sample of the person called `name` (all features), oldest first: id, when,
        who added it, the consent recorded, the features id, and the float32 bytes if
        `embeddings`. Raises UnknownPerson if nobody has that name."""

    def add_samples(self, samples: list[tuple[str, np.ndarray]], actor: str = "cli", consent: str | None = None,
                    audit: AuditFor[dict[str, int]] | None = None) -> dict[str, int]:
        """Enroll (name, embedding) pairs in one transaction; a new name creates a person, an
        existing one (ignoring case and spacing) gets more samples under its stored name.
        Each new sample records `consent`: who consented, when and for what (free text).

        Returns each touched person's stored name mapped to their sample count afterwards.
        `audit(counts)` gives the (action, details) of the audit entry stored in the same
        transaction as the samples: both are saved or neither (storage.audit).
        Raises InvalidName before writing anything if any name is invalid, GalleryBusy when
        the store stayed locked by other writers for too long, GalleryWriteError when it
        cannot be written (nothing changed)."""

    def delete(self, name: str, actor: str = "cli", audit: AuditFor[Erasure] | None = None) -> int:
        """Erase a person: remove them and every sample of theirs, and replace their name in
        every audit entry with a random pseudonym (storage.audit), in one transaction;
        return how many samples went. `audit(erasure)` gives the audit entry stored in the
        same transaction (it should name `erasure.pseudonym`, not the person).
        Raises UnknownPerson if nobody has that name."""

    def delete_sample(self, name: str, sample_id: int, actor: str = "cli",
                      audit: AuditFor[SampleRemoval] | None = None) -> SampleRemoval:
        """Remove one sample (its id from `samples_of`) of the person called `name`, in one
        transaction with the audit entry `audit(removal)` gives; the person stays, even with
        no sample left (`delete` erases them). Raises UnknownPerson, or UnknownSample when
        that person has no such sample (nothing changes then)."""

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A saved setting (any JSON value), or `default`."""

    def set_setting(self, key: str, value: Any, actor: str = "cli", audit: AuditFor[Any] | None = None) -> None:
        """Save a setting (any JSON value), replacing the old one; `audit(value)` gives the
        audit entry stored in the same transaction."""

    def update_setting(self, key: str, change: Callable[[Any], Any], actor: str = "cli",
                       audit: AuditFor[SettingUpdate] | None = None) -> Any:
        """Read a setting and replace it with `change(old)` in one transaction, atomic across
        processes and hosts: `old` is the stored value (None where there is none), and no
        other writer can change the setting between that read and the write, so two updates
        at once never lose one (as a `get_setting` then `set_setting` can). Returns the new
        value; `audit(SettingUpdate(old, new))` gives the audit entry stored in the same
        transaction. `change` may raise to refuse: the exception propagates and nothing is
        written. It runs inside the transaction (under the store's lock): keep it quick, and
        it must not use the store itself."""

    def audit(self, action: str, actor: str, **details: Any) -> None:
        """Append an audit entry {time, action, actor, **details} (JSON values; never a photo
        or a token). Every audit write, this one or a change's, deletes the entries older than
        `retention_days` (storage.audit); none is deleted for being one too many."""

    def audit_log(self, last: int = 20) -> list[dict]:
        """The newest `last` audit entries, oldest first, each {time, action, actor, **details}
        with `time` an ISO 8601 string in UTC, to the second."""

    def audit_about(self, name: str) -> list[dict]:
        """Every audit entry that names the person called `name` (a name field, or the name
        as whole words in free text), oldest first: what an erasure would rewrite."""


def is_database_url(location: str | Path | None) -> bool:
    """Whether `location` names a PostgreSQL database rather than a folder."""
    return isinstance(location, str) and location.strip().lower().startswith(URL_SCHEMES)


def open_gallery(data_dir: str | Path | None = None, database_url: str | None = None,
                 features: str = DEFAULT_FEATURES, retention_days: float | None = None) -> Store:
    """The gallery named by the configuration: PostgreSQL when `database_url` is set (it wins
    over `data_dir`), else TinyDB files in `data_dir`.

    `features` is what made the embeddings to compare (Recognizer.features_id);
    `retention_days` how long audit entries are kept (None: $FACEBOT_RETENTION_DAYS, else
    365). Opening a PostgreSQL gallery creates or upgrades its schema when needed (see
    storage.migrations). Raises ValueError when neither is given, the URL is not
    postgresql://, or the retention is not a number of days above 0.
    """
    if database_url and database_url.strip():
        if not is_database_url(database_url):
            raise ValueError("the database URL must start with postgresql:// (FACEBOT_DATABASE_URL, --database-url)")
        from facebot.storage.postgres import PostgresGallery  # psycopg is needed only here

        return PostgresGallery(database_url.strip(), features=features, retention_days=retention_days)
    if data_dir is None or str(data_dir) == "":
        raise ValueError("no gallery: give a data folder or a postgresql:// database URL")
    return Gallery(data_dir, features=features, retention_days=retention_days)


def open_location(location: str | Path, features: str = DEFAULT_FEATURES) -> Store:
    """`open_gallery` for one string that is either a postgresql:// URL or a folder."""
    if is_database_url(location):
        return open_gallery(database_url=str(location), features=features)
    return open_gallery(data_dir=location, features=features)


def describe(store: Store) -> str:
    """Where a store lives, for messages: the folder, or the URL without its password."""
    if store.data_dir is not None:
        return str(store.data_dir)
    return getattr(store, "url", "a database")


# -- moving a gallery -------------------------------------------------------------------------
class PersonRecord(NamedTuple):
    """A person as both stores keep them; `created` is an ISO 8601 string."""

    key: str
    name: str
    created: str
    created_by: str


class SampleRecord(NamedTuple):
    """A sample: the person's key, the features id, float32 little-endian bytes, who and
    when, and the consent recorded with it (None where none was)."""

    key: str
    features: str
    embedding: bytes
    created: str
    created_by: str
    consent: str | None = None


@dataclass
class GalleryDump:
    """Everything a gallery holds, in insertion order: what `copy_gallery` moves."""

    people: list[PersonRecord] = field(default_factory=list)
    samples: list[SampleRecord] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    audit: list[dict] = field(default_factory=list)  # {time, action, actor, **details}, oldest first
    skipped: int = 0  # samples of nobody (a TinyDB file edited by hand); not copied

    def summary(self) -> GallerySummary:
        """Counts per table and features, and one digest over every sample and audit entry."""
        per_features: dict[str, int] = {}
        for s in self.samples:
            per_features[s.features] = per_features.get(s.features, 0) + 1
        samples = hashlib.sha256()
        # Sorted, so that the digest says "the same samples", whatever order a store returns
        # (None sorts as ""; a tuple holding None cannot be compared with one holding text).
        for s in sorted(self.samples, key=lambda s: s._replace(consent=s.consent or "")):
            # The consent is part of what a sample is: a copy that lost it must not verify.
            consent = "\x01" if s.consent is None else json.dumps(s.consent)
            samples.update(f"{s.key}\x00{s.features}\x00{len(s.embedding)}\x00{consent}\x00".encode())
            samples.update(s.embedding)
        return GallerySummary(people=len(self.people), samples=len(self.samples), per_features=per_features,
                              settings=len(self.settings), audit=len(self.audit),
                              samples_sha256=samples.hexdigest())

    def is_empty(self) -> bool:
        return not (self.people or self.samples or self.settings or self.audit)


@dataclass(frozen=True)
class GallerySummary:
    """What `db copy` compares between source and target."""

    people: int
    samples: int
    per_features: dict[str, int]
    settings: int
    audit: int
    samples_sha256: str

    def counts(self) -> dict[str, Any]:
        return {"people": self.people, "samples": self.samples, "per_features": self.per_features,
                "settings": self.settings, "audit": self.audit}


@dataclass(frozen=True)
class CopyReport:
    """What `copy_gallery` did: both summaries, whether they agree, and how long it took."""

    source: GallerySummary
    target: GallerySummary
    seconds: float
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return self.source == self.target


class TargetNotEmpty(ValueError):
    """`copy_gallery` refuses to merge into a store that already holds something."""


def dump_gallery(store: Store) -> GalleryDump:
    """Read everything `store` holds (all features, not only its own)."""
    if isinstance(store, Gallery):
        return _dump_tinydb(store)
    return store.dump()  # PostgresGallery


def load_gallery(store: Store, dump: GalleryDump) -> None:
    """Write a dump into an empty `store`, keeping names, times, actors and order."""
    if isinstance(store, Gallery):
        _load_tinydb(store, dump)
    else:
        store.load(dump)


def copy_gallery(source: Store | str | Path, target: Store | str | Path) -> CopyReport:
    """Copy every person, sample, setting and audit entry from `source` into an empty `target`,
    then read the target back and compare counts and the samples' digest.

    Either side is a Store, a postgresql:// URL or a folder. Raises TargetNotEmpty when the
    target holds anything, ValueError when the source folder is not there (nothing is written
    then). Check `report.ok`.
    """
    started = time.perf_counter()
    source = source if isinstance(source, Store) else open_location(source)
    if _folder_missing(source):  # a mistyped folder would otherwise read as an empty gallery: "copied 0 people"
        raise ValueError(f"no gallery at {describe(source)}: there is no such folder; nothing was copied")
    target = target if isinstance(target, Store) else open_location(target)
    if not dump_gallery(target).is_empty():
        raise TargetNotEmpty(f"{describe(target)} already holds a gallery; copy into an empty one")
    dump = dump_gallery(source)
    if dump.skipped:
        log.warning("%d sample(s) in %s belong to nobody and were not copied", dump.skipped, describe(source))
    log.info("copying %d people, %d samples, %d audit entries from %s to %s", len(dump.people),
             len(dump.samples), len(dump.audit), describe(source), describe(target))
    load_gallery(target, dump)
    report = CopyReport(dump.summary(), dump_gallery(target).summary(), time.perf_counter() - started, dump.skipped)
    if not report.ok:
        log.error("copy check failed: source %s, target %s", report.source.counts(), report.target.counts())
    return report


def _folder_missing(store: Store) -> bool:
    """Whether `store` is a TinyDB gallery whose folder is not there: opening one makes
    nothing (the first change makes the folder), while a database is made by `db init`."""
    return isinstance(store, Gallery) and not store.data_dir.is_dir()


def summarize(location: Store | str | Path) -> GallerySummary:
    """Counts and digest of a gallery (for checks)."""
    store = location if isinstance(location, Store) else open_location(location)
    return dump_gallery(store).summary()


def gallery_status(location: str | Path) -> dict[str, Any]:
    """What `facebot db status` shows: the kind of store, where (no password), whether it
    exists yet, its schema version (PostgreSQL), and counts of people, samples per features,
    settings and audit."""
    store = open_location(location)
    status: dict[str, Any] = {"store": "tinydb" if isinstance(store, Gallery) else "postgresql",
                              "where": describe(store),
                              "exists": not _folder_missing(store)}
    if hasattr(store, "schema_version"):
        status["schema_version"] = store.schema_version()
    status.update(dump_gallery(store).summary().counts())
    return status


# -- TinyDB side of a copy: through the Gallery's own transactions ---------------------------
def _dump_tinydb(gallery: Gallery) -> GalleryDump:
    """Everything in a TinyDB gallery, people and samples in document order."""
    people = [PersonRecord(d["key"], d["name"], d["created"], d.get("created_by", ""))
              for d in gallery._table("people").all()]
    known = {p.key: p for p in people}
    dump = GalleryDump(people=people)
    for d in gallery._table("samples").all():
        if d["key"] not in known:
            dump.skipped += 1
            continue
        # A sample without its own time or author (hand-edited files) takes its person's.
        person = known[d["key"]]
        dump.samples.append(SampleRecord(d["key"], d.get("model") or "", base64.b64decode(d["embedding"]),
                                         d.get("created") or person.created,
                                         d.get("created_by", person.created_by), d.get("consent")))
    dump.settings = {d["key"]: d["value"] for d in gallery._table("settings").all() if "key" in d}
    dump.audit = gallery.audit_entries()
    return dump


def _load_tinydb(gallery: Gallery, dump: GalleryDump) -> None:
    """Write a dump into a TinyDB gallery: gallery.json in one atomic replace, then audit.json."""
    with gallery._transaction():
        gallery._table("people").insert_multiple(
            {"name": p.name, "key": p.key, "created": p.created, "created_by": p.created_by} for p in dump.people)
        gallery._table("samples").insert_multiple(
            {"key": s.key, "embedding": base64.b64encode(s.embedding).decode("ascii"), "model": s.features,
             "created": s.created, "created_by": s.created_by, "consent": s.consent} for s in dump.samples)
        gallery._table("settings").insert_multiple({"key": k, "value": v} for k, v in dump.settings.items())
    if dump.audit:
        with gallery._transaction(gallery._audit_storage):
            Table(gallery._audit_storage, "audit", cache_size=0).insert_multiple(dump.audit)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as stored by either gallery; naive times are taken as UTC."""
    from datetime import timezone

    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
