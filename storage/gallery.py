"""The gallery of enrolled people on TinyDB: people, embedding samples, settings, audit log.

Layout in the data folder:
- `gallery.json` — tables `people` ({name, key, created, created_by}), `samples`
  ({key, embedding: base64 float32, model, created, created_by, consent}), `settings`, and
  `journal`: the audit entries of the latest change (see below).
- `audit.json` — table `audit`: who did what, when (kept FACEBOT_RETENTION_DAYS days,
  storage.audit), and `journal_settled`: which journal entries it already holds.
- `.lock` — an flock so that one process writes at a time.

Photos are never stored, only embeddings. Every change is a transaction: taken under the
lock, applied to the latest file content, written once, atomically.

A change and its audit entry are one write although they live in two files: the entry is
written into gallery.json's `journal` in the same atomic replace as the change, then
copied into audit.json. If that copy fails (full disk, read-only audit.json), the entry
is still stored and `audit_log` shows it; the next write copies it, and the next change
first makes sure audit.json holds it before replacing the journal (so a journal entry is
never lost, and the change is refused when audit.json cannot be written). A change is
thus never saved without its entry, and never reported failed when it was saved.

Deleting a person erases them: their samples and person record go, and their name is
replaced by a random pseudonym in every audit entry (storage.audit). audit.json is
rewritten first, then gallery.json (without them, its journal holding only the delete
entry under the pseudonym): a failure in between leaves the person enrolled (the delete
is reported failed; repeating it finishes the job), never their name behind a deletion.
"""
from __future__ import annotations

import base64
import copy
import fcntl
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar
from uuid import uuid4

import numpy as np
from tinydb import TinyDB
from tinydb.table import Document, Table

from facebot.storage.atomic import FILE_MODE, AtomicJSONStorage, make_private
from facebot.storage.audit import (AuditFor, Erasure, cutoff_iso, expired, make_entry, mentions, new_pseudonym,
                                   retention_days, scrub)
from facebot.storage.errors import GalleryWriteError
from facebot.storage.names import name_key, validate_name

log = logging.getLogger(__name__)

# audit.json is rewritten whole by every entry, so it cannot grow without bound: past this
# many entries (about 150 MB, a second or more per identification) the oldest go, with a
# warning each time, whatever their age. Retention by age (FACEBOT_RETENTION_DAYS) is the
# rule; this only stops a flood from filling the disk. PostgreSQL has no such cap.
AUDIT_SAFETY_CAP = 1_000_000
LOCK_TIMEOUT_S = 30.0
JOURNAL = "journal"  # gallery.json: the audit entries of the latest change, each with an "_id"
SETTLED = "journal_settled"  # audit.json: {"1": {"ids": [...]}}, the journal entries it holds
T = TypeVar("T")
_WARNED_OPEN_FOLDERS: set[Path] = set()  # folders made by someone else, readable by others: said once


class UnknownPerson(KeyError):
    """No enrolled person has that name."""

    def __str__(self) -> str:
        return f"nobody called {self.args[0]!r} is enrolled"


class UnknownSample(KeyError):
    """The person has no sample with that id (never had, or it was deleted)."""

    def __str__(self) -> str:
        return f"{self.args[0]!r} has no sample {self.args[1]}"


class GalleryBusy(RuntimeError):
    """Another process held the gallery lock for too long."""


@dataclass(frozen=True)
class Person:
    name: str
    samples: int
    created: str


@dataclass(frozen=True)
class SampleInfo:
    """One stored sample, as `facebot samples` and `facebot export` show it.

    `consent` is HR's note of who consented, when and for what (None where none was
    recorded); `embedding` the float32 little-endian bytes, only when asked for.
    """

    id: int
    created: str
    created_by: str
    consent: str | None
    features: str
    embedding: bytes | None = None


@dataclass(frozen=True)
class SampleRemoval:
    """What `delete_sample` did: the person's stored name, the sample removed (as
    `samples_of` showed it) and how many samples the person has left (0: none, though
    they stay enrolled until deleted)."""

    name: str
    sample: SampleInfo
    left: int


@dataclass(frozen=True)
class SettingUpdate:
    """What `update_setting` did: the value it read (None where the setting did not exist)
    and the value it saved in its place; what the audit entry of the update is made from."""

    old: Any
    new: Any


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def encode_embedding(vector: np.ndarray) -> str:
    """float32 little-endian bytes in base64: 2.7 KB per 512-d sample instead of ~10 KB of JSON floats."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_embedding(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


class Gallery:
    """People and their face embeddings in `data_dir`, shared safely between processes.

    `features` names what made the embeddings (FaceNet's weights, or a from-scratch Siamese
    network's); every sample is tagged with it (the stored field is called "model", as in
    galleries written before the rename), so samples of other features are never compared
    with these.
    """

    def __init__(self, data_dir: str | Path, features: str = "facenet-20180408-102900+box",
                 retention_days: float | None = None):
        self.data_dir = Path(data_dir)
        self.features = features
        # Days audit entries are kept (None: $FACEBOT_RETENTION_DAYS, default 365).
        self.retention_days = _retention_days(retention_days)
        self._storage = AtomicJSONStorage(self.data_dir / "gallery.json")  # its folder made (0700) by the first write
        self._db = TinyDB(storage=lambda: self._storage)
        self._audit_storage = AtomicJSONStorage(self.data_dir / "audit.json")
        self._audit_db = TinyDB(storage=lambda: self._audit_storage)
        self._lock_path = self.data_dir / ".lock"
        for path in (self._storage.path, self._audit_storage.path, self._lock_path):
            if path.exists():
                make_private(path)  # left 0644 by an older facebot
        if self.data_dir.is_dir() and self.data_dir.stat().st_mode & 0o077 and self.data_dir not in _WARNED_OPEN_FOLDERS:
            _WARNED_OPEN_FOLDERS.add(self.data_dir)  # once per process, not once per command of a bot
            log.warning("the gallery folder %s can be listed by other users (mode %o); `chmod 700 %s` keeps "
                        "even the names of its files private", self.data_dir, self.data_dir.stat().st_mode & 0o777,
                        self.data_dir)
        self._cache_signature = None
        self._cache: tuple[list[str], np.ndarray] | None = None

    # -- tables -------------------------------------------------------------------------
    # Fresh Table objects with no query cache: TinyDB tables cache results and the next
    # document id, which would go stale when another process writes the file.
    def _table(self, name: str) -> Table:
        return Table(self._storage, name, cache_size=0)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive write lock. Only writers take it: readers never lock and never
        create a file, so a read-only folder still serves identifications."""
        try:
            self._storage.make_folder()  # a gallery's first write makes its folder
            # 0600 like the data files (it is empty, but nobody else has business with it).
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:  # a read-only folder or file system, no permission
            raise GalleryWriteError(f"cannot write to the gallery folder {self.data_dir}: {exc.strerror or exc}; "
                                    f"nothing was changed") from exc
        with open(fd, "r+") as fh:
            deadline = time.monotonic() + LOCK_TIMEOUT_S  # read now: a test may shorten it
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GalleryBusy("the gallery is busy (another process is writing); try again") from None
                    time.sleep(0.05)
            try:
                self._storage.remove_stale_temporaries()
                self._audit_storage.remove_stale_temporaries()
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def _transaction(self, storage: AtomicJSONStorage | None = None) -> Iterator[None]:
        """All changes inside are written once, atomically, or not at all."""
        with self._locked(), self._deferred(storage or self._storage):
            yield

    @staticmethod
    @contextmanager
    def _deferred(storage: AtomicJSONStorage, reload: bool = True) -> Iterator[None]:
        """Re-read `storage`'s file (unless `reload` is False: just read under this lock),
        keep the changes made inside in memory, write them in one atomic replace at the
        end, or forget them on an error. Under the lock."""
        if reload:
            storage.reload()
        storage.deferred = True
        try:
            yield
            storage.flush()
        except BaseException:
            storage.discard()
            raise
        finally:
            storage.deferred = False

    def _change(self, actor: str, apply: Callable[[], Any], audit: AuditFor | None, erasing: str | None = None) -> Any:
        """Run `apply()` on gallery.json and store `audit(outcome)` in its journal, in one
        atomic write; then copy the entry into audit.json (best effort, see the module doc).

        `erasing` (a name): first replace that person's name in audit.json with a new
        pseudonym; the outcome is then an Erasure with `apply()`'s count of samples.
        Raises what `apply` raises (nothing written then), UnknownPerson when `erasing`
        names nobody, GalleryWriteError when gallery.json, or audit.json holding an
        earlier entry, cannot be written.
        """
        with self._locked():
            self._storage.reload()  # the latest gallery, and the journal as it is now
            erase = None
            if erasing is not None:
                person = self._person_names().get(name_key(erasing))
                if person is None:
                    raise UnknownPerson(erasing)
                erase = (person["name"], new_pseudonym())
            # audit.json must hold the journal about to be replaced (and be rid of the name).
            rewritten = self._settle(erase=erase)
            with self._deferred(self._storage, reload=False):
                outcome = apply()
                if erase is not None:
                    outcome = Erasure(erase[0], outcome, erase[1], rewritten)
                journal = self._table(JOURNAL)
                journal.truncate()
                if audit is not None:
                    action, details = audit(outcome)
                    journal.insert({"_id": uuid4().hex, **make_entry(action, actor, details)})
            try:
                self._settle()
            except GalleryWriteError as exc:  # the entry is safe in gallery.json; copied at the next write
                log.warning("the audit entry stays in gallery.json's journal until audit.json can be written: %s", exc)
        return outcome

    # -- reading --------------------------------------------------------------------------
    def _person_names(self) -> dict[str, dict]:
        return {doc["key"]: doc for doc in self._table("people").all()}

    def people(self) -> list[Person]:
        """Every enrolled person with their number of samples, sorted by name."""
        counts: dict[str, int] = {}
        for doc in self._table("samples").all():
            counts[doc["key"]] = counts.get(doc["key"], 0) + 1
        people = [Person(d["name"], counts.get(k, 0), d["created"]) for k, d in self._person_names().items()]
        return sorted(people, key=lambda p: name_key(p.name))

    def find(self, name: str) -> Person | None:
        """The enrolled person whose name matches `name` ignoring case and spacing, or None."""
        key = name_key(name)
        return next((p for p in self.people() if name_key(p.name) == key), None)

    @property
    def version(self):
        """Changes whenever the gallery file changes (by this or any other process)."""
        self._storage.read()
        return self._storage._signature

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """Return (names, matrix): one display name and one float32 row per sample of this model.

        Cached until the gallery file changes, so callers may ask before every search.
        """
        version = self.version
        if self._cache is None or version != self._cache_signature:
            names = {k: d["name"] for k, d in self._person_names().items()}
            labels, rows = [], []
            for doc in self._table("samples").all():
                if doc.get("model") == self.features and doc["key"] in names:
                    labels.append(names[doc["key"]])
                    rows.append(decode_embedding(doc["embedding"]))
            matrix = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
            self._cache, self._cache_signature = (labels, matrix), version
        return self._cache

    def samples_of(self, name: str, embeddings: bool = False) -> list[SampleInfo]:
        """Every sample of the person called `name` (all features), oldest first, with who
        added it, when, and the consent recorded; the embeddings too if asked.
        Raises UnknownPerson if nobody has that name."""
        key = name_key(name)
        person = self._person_names().get(key)
        if person is None:
            raise UnknownPerson(name)
        docs = sorted((d for d in self._table("samples").all() if d["key"] == key), key=lambda d: d.doc_id)
        return [_sample_info(d, person, embeddings) for d in docs]

    # -- writing --------------------------------------------------------------------------
    def add_samples(self, samples: list[tuple[str, np.ndarray]], actor: str = "cli", consent: str | None = None,
                    audit: AuditFor[dict[str, int]] | None = None) -> dict[str, int]:
        """Enroll (name, embedding) pairs in one transaction; new names create people.

        Every new sample records `consent` (who consented, when, for what). Returns each
        touched person's display name mapped to their sample count afterwards.
        `audit(counts)` gives the audit entry stored with the change (storage.audit).
        Raises InvalidName before writing anything if any name is invalid.
        """
        cleaned = [(validate_name(name), np.asarray(vec, dtype=np.float32)) for name, vec in samples]
        if not cleaned:
            return {}

        def apply() -> dict[str, int]:
            people = self._person_names()
            new_people, new_samples, now = [], [], _now()
            for name, vec in cleaned:
                key = name_key(name)
                if key not in people:
                    people[key] = {"name": name, "key": key, "created": now, "created_by": actor}
                    new_people.append(people[key])
                new_samples.append({"key": key, "embedding": encode_embedding(vec), "model": self.features,
                                    "created": now, "created_by": actor, "consent": consent})
            self._table("people").insert_multiple(new_people)
            first = self._reserve_sample_ids(len(new_samples))
            self._table("samples").insert_multiple(Document(doc, doc_id=first + i) for i, doc in enumerate(new_samples))
            counts: dict[str, int] = {}
            for doc in self._table("samples").all():
                counts[doc["key"]] = counts.get(doc["key"], 0) + 1
            touched = dict.fromkeys(name_key(n) for n, _ in cleaned)
            return {people[k]["name"]: counts[k] for k in touched}

        return self._change(actor, apply, audit)

    def _reserve_sample_ids(self, count: int) -> int:
        """Under the lock: the first of `count` new sample ids, never used before in this
        gallery. TinyDB would hand a deleted newest sample's id to the next one, and an id may
        still sit in a /samples question or a script (`samples NAME --delete ID`) that must
        never hit a newer sample; so the highest id ever given is kept ("counters" table)."""
        counters = self._table("counters")
        found = counters.get(lambda d: d.get("name") == "samples")
        last = max([int(found["last"]) if found else 0] + [d.doc_id for d in self._table("samples").all()])
        counters.remove(lambda d: d.get("name") == "samples")
        counters.insert({"name": "samples", "last": last + count})
        return last + 1

    def delete(self, name: str, actor: str = "cli", audit: AuditFor[Erasure] | None = None) -> int:
        """Erase a person: remove them and every sample of theirs, and replace their name in
        the audit log with a random pseudonym; return how many samples went.

        `audit(erasure)` gives the audit entry stored with the change (it should name the
        pseudonym, not the person). Raises UnknownPerson if nobody has that name (nothing
        is written then).
        """
        key = name_key(name)

        def apply() -> int:
            removed = self._table("samples").remove(lambda d: d["key"] == key)
            self._table("people").remove(lambda d: d["key"] == key)
            return len(removed)

        return self._change(actor, apply, audit, erasing=name).samples

    def delete_sample(self, name: str, sample_id: int, actor: str = "cli",
                      audit: AuditFor[SampleRemoval] | None = None) -> SampleRemoval:
        """Remove one sample (its id from `samples_of`) of the person called `name`; the
        person stays, even with no sample left. `audit(removal)` gives the audit entry
        stored with the change. Raises UnknownPerson, or UnknownSample when that person has
        no such sample (nothing is written then)."""
        key = name_key(name)

        def apply() -> SampleRemoval:
            person = self._person_names().get(key)
            if person is None:
                raise UnknownPerson(name)
            samples = self._table("samples")
            doc = samples.get(doc_id=int(sample_id))
            if doc is None or doc.get("key") != key:  # another person's sample is not theirs to lose
                raise UnknownSample(person["name"], sample_id)
            removed = _sample_info(doc, person)
            samples.remove(doc_ids=[doc.doc_id])
            return SampleRemoval(person["name"], removed, samples.count(lambda d: d["key"] == key))

        return self._change(actor, apply, audit)

    # -- settings ---------------------------------------------------------------------------
    def get_setting(self, key: str, default=None):
        for doc in self._table("settings").all():
            if doc.get("key") == key:
                return doc["value"]
        return default

    def set_setting(self, key: str, value, actor: str = "cli", audit: AuditFor[Any] | None = None) -> None:
        """Save a setting (any JSON value); `audit(value)` gives the entry stored with it."""
        def apply():
            table = self._table("settings")
            table.remove(lambda d: d.get("key") == key)
            table.insert({"key": key, "value": value})
            return value

        self._change(actor, apply, audit)

    def update_setting(self, key: str, change: Callable[[Any], Any], actor: str = "cli",
                       audit: AuditFor[SettingUpdate] | None = None) -> Any:
        """Replace a setting with `change(old)` in one transaction: `old` is the value stored
        now (None when there is none) and what `change` returns is saved, with the audit
        entry `audit(SettingUpdate(old, new))`; returns the new value.

        The read happens under the write lock, on the file as it is now, so no other process
        can write in between: two updates at once each see the other's result, none is lost
        (a `get_setting` followed by `set_setting` could lose one). `change` may raise to
        refuse (nothing is written then); it must not use this store, whose lock it runs under.
        """
        def apply() -> SettingUpdate:
            # `_change` has reloaded gallery.json under the lock: this is the latest value.
            table = self._table("settings")
            stored = next((doc["value"] for doc in table.all() if doc.get("key") == key), None)
            # A copy: TinyDB hands out the stored list or dict itself, and a `change` that edits
            # what it is given would otherwise also edit the `old` the audit entry is made from.
            new = change(copy.deepcopy(stored))
            table.remove(lambda d: d.get("key") == key)
            table.insert({"key": key, "value": new})
            return SettingUpdate(stored, new)

        return self._change(actor, apply, audit).new

    # -- audit ----------------------------------------------------------------------------
    def audit(self, action: str, actor: str, **details) -> None:
        """Append an audit entry (never a photo or a token), and with it any entry of the
        latest change that audit.json still lacks; entries past the retention period go."""
        with self._locked():
            # The journal as last read (re-read only if gallery.json changed): parsing the
            # whole gallery for every identification would cost more than the entry.
            self._settle([make_entry(action, actor, details)])

    def _settle(self, extra: list[dict] = (), erase: tuple[str, str] | None = None) -> int:
        """Under the lock: bring audit.json up to date in one atomic write (none when nothing
        changes): the journal entries of gallery.json it lacks, then `extra`; with `erase`
        (name, pseudonym), that name replaced in every entry. Returns how many entries
        `erase` rewrote.

        Raises GalleryWriteError (nothing changed) or GalleryCorrupt.
        """
        journal = self._table(JOURNAL).all()
        storage = self._audit_storage
        with self._deferred(storage):
            data = storage.read()
            held = set(data.get(SETTLED, {}).get("1", {}).get("ids", []))
            new = [_public(doc) for doc in journal if doc["_id"] not in held] + list(extra)
            ids = [doc["_id"] for doc in journal]
            if not new and set(ids) == held and erase is None:
                return 0  # nothing to write: `flush` finds nothing dirty
            Table(storage, "audit", cache_size=0).insert_multiple(new)
            data = storage.read()
            entries: dict[str, dict] = data.setdefault("audit", {})
            rewritten = 0
            if erase is not None:
                for doc_id, entry in entries.items():
                    if (scrubbed := scrub(entry, *erase)) is not None:
                        entries[doc_id] = scrubbed
                        rewritten += 1
            self._expire(entries)
            data[SETTLED] = {"1": {"ids": ids}}
            storage.write(data)
        return rewritten

    def _expire(self, entries: dict[str, dict]) -> None:
        """Drop (in place) the entries older than the retention period and, past
        AUDIT_SAFETY_CAP, the oldest ones, saying so.

        Entries are kept in the order they were written, which is time order but for an
        entry copied late from the journal: so the whole log is searched only when its
        first entry has expired (a late one goes with its neighbours at most that late).
        """
        cutoff = cutoff_iso(self.retention_days)
        first = next(iter(entries.values()), None)
        if first is not None and expired(str(first.get("time", "")), cutoff):
            for doc_id in [i for i, entry in entries.items() if expired(str(entry.get("time", "")), cutoff)]:
                del entries[doc_id]
        if len(entries) > AUDIT_SAFETY_CAP:
            oldest = sorted(entries, key=int)[: len(entries) - AUDIT_SAFETY_CAP]
            for doc_id in oldest:
                del entries[doc_id]
            log.warning("audit.json holds more than %d entries: dropped the %d oldest before their %g days were "
                        "up; lower FACEBOT_RETENTION_DAYS or move the gallery to PostgreSQL", AUDIT_SAFETY_CAP,
                        len(oldest), self.retention_days)

    def audit_log(self, last: int = 20) -> list[dict]:
        """The newest `last` audit entries, oldest first (with those of the latest change
        that audit.json could not take yet)."""
        return self.audit_entries()[-last:] if last > 0 else []

    def audit_about(self, name: str) -> list[dict]:
        """Every audit entry that names the person called `name` (in a name field or in free
        text, as an erasure would find them), oldest first."""
        return [entry for entry in self.audit_entries() if mentions(entry, name)]

    def audit_entries(self) -> list[dict]:
        """Every audit entry stored, oldest first: audit.json's, then the latest change's
        while it is only in gallery.json's journal."""
        data = self._audit_storage.read() or {}
        held = set(data.get(SETTLED, {}).get("1", {}).get("ids", []))
        entries = [dict(doc) for _, doc in sorted(data.get("audit", {}).items(), key=lambda item: int(item[0]))]
        return entries + [_public(doc) for doc in self._table(JOURNAL).all() if doc["_id"] not in held]


def _retention_days(value: float | None) -> float:
    """retention_days(value), under another name: the parameter shadows the function."""
    return retention_days(value)


def _sample_info(doc, person: dict, embeddings: bool = False) -> SampleInfo:
    """A stored sample document as SampleInfo; a sample without its own time or author
    (hand-edited files) takes its person's."""
    return SampleInfo(doc.doc_id, doc.get("created") or person["created"], doc.get("created_by", person["created_by"]),
                      doc.get("consent"), doc.get("model") or "",
                      base64.b64decode(doc["embedding"]) if embeddings else None)


def _public(doc: dict) -> dict:
    """A journal entry as audit.json and readers see it: without its private "_id"."""
    return {k: v for k, v in doc.items() if k != "_id"}
