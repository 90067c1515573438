"""The gallery on its own: people, compact samples, atomic writes, sharing between processes.

The same tests run on both stores (`store` is parametrized: TinyDB files, and PostgreSQL on
the session's real server); tests about one store's insides say so in their name.
"""
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import psycopg
import pytest

from facebot.storage import Gallery, InvalidName, UnknownPerson, open_gallery, validate_name
from facebot.storage.atomic import AtomicJSONStorage


def unit(seed: int, dim: int = 512) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


class StoreUnderTest:
    """One gallery location of one kind; `open()` gives a new store object on it each time,
    `location` is what a subprocess passes to `open_location`."""

    def __init__(self, kind: str, location: str):
        self.kind, self.location = kind, location

    def open(self, **kwargs):
        if self.kind == "postgres":
            return open_gallery(database_url=self.location, **kwargs)
        return open_gallery(self.location, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.location}>"


@pytest.fixture(params=["tinydb", "postgres"])
def store(request, tmp_path) -> StoreUnderTest:
    """A fresh empty gallery: a temporary folder, or a fresh database on the test server."""
    if request.param == "postgres":
        return StoreUnderTest("postgres", request.getfixturevalue("postgres_url"))
    return StoreUnderTest("tinydb", str(tmp_path))


# Run in a subprocess: open the gallery named by argv[1] (a folder or a postgresql:// URL).
OPEN = "import numpy as np, sys; from facebot.storage.store import open_location; g = open_location(sys.argv[1]);"


def snapshot(g) -> tuple:
    """Everything a reader can see of a gallery, for before/after comparisons."""
    names, matrix = g.embeddings()
    return [(p.name, p.samples) for p in g.people()], names, matrix.tobytes(), g.version


def test_enroll_list_and_delete(store):
    g = store.open()
    assert g.add_samples([("Ana María", unit(1))]) == {"Ana María": 1}
    assert g.add_samples([("ana maría", unit(2)), ("Bob", unit(3))]) == {"Ana María": 2, "Bob": 1}
    assert [(p.name, p.samples) for p in g.people()] == [("Ana María", 2), ("Bob", 1)]
    assert g.find("  ANA   maría") .name == "Ana María" and g.find("Carl") is None
    assert g.delete("ANA MARÍA") == 2
    assert [p.name for p in g.people()] == ["Bob"]
    names, matrix = g.embeddings()
    assert names == ["Bob"] and np.allclose(matrix[0], unit(3))
    with pytest.raises(UnknownPerson):
        g.delete("Ana María")


def test_a_deleted_samples_id_is_never_given_to_a_new_sample(store):
    """A /samples button or a script holds a sample's id for a while: after that sample is
    deleted, a sample enrolled later must not take its id (deleting "#2" must never hit a
    newer sample)."""
    g = store.open()
    g.add_samples([("Ana", unit(1)), ("Ana", unit(2))], consent="Ana, form HR-7")
    newest = g.samples_of("Ana")[-1]
    g.delete_sample("Ana", newest.id)
    g.add_samples([("Ana", unit(3))], consent="Ana, form HR-8")
    assert newest.id not in [s.id for s in g.samples_of("Ana")]
    g.delete("Ana")  # the same after an erasure of everyone's samples
    g.add_samples([("Bob", unit(4))], consent="Bob, form HR-9")
    assert g.samples_of("Bob")[0].id > newest.id


def test_one_sample_is_deleted_with_its_audit_entry(store):
    """HR deletes one sample (say, one enrolled without consent): that sample goes, from this
    store and from another one already open, with its audit entry in the same transaction;
    the person and their other samples stay, even when the last sample goes."""
    from facebot.storage import UnknownSample

    g, reader = store.open(), store.open()
    g.add_samples([("Ana", unit(1)), ("ana", unit(2)), ("Bob", unit(3))], actor="cli:hr", consent="Ana, form HR-7")
    assert reader.embeddings()[0] == ["Ana", "Ana", "Bob"]
    first, second = g.samples_of("Ana")
    entry = lambda r: ("delete-sample", {"name": r.name, "sample": r.sample.id, "samples": r.left})  # noqa: E731
    removal = g.delete_sample("  ANA ", second.id, actor="tg:7", audit=entry)
    assert (removal.name, removal.sample, removal.left) == ("Ana", second, 1)
    assert store.open().samples_of("Ana") == [first]
    names, matrix = reader.embeddings()
    assert names == ["Ana", "Bob"] and np.array_equal(matrix, np.stack([unit(1), unit(3)]))
    assert g.audit_log(1)[0] == {"time": g.audit_log(1)[0]["time"], "action": "delete-sample", "actor": "tg:7",
                                 "name": "Ana", "sample": second.id, "samples": 1}
    with pytest.raises(UnknownSample):
        g.delete_sample("Bob", first.id, audit=entry)  # not Bob's
    with pytest.raises(UnknownSample):
        g.delete_sample("Ana", second.id, audit=entry)  # gone already
    with pytest.raises(UnknownPerson):
        g.delete_sample("Carl", first.id, audit=entry)
    with pytest.raises(ZeroDivisionError):  # the audit entry fails: the sample stays
        g.delete_sample("Ana", first.id, audit=lambda r: ("delete-sample", {"x": 1 / 0}))
    assert store.open().samples_of("Ana") == [first] and len(g.audit_log(10)) == 1
    assert g.delete_sample("Ana", first.id, audit=entry).left == 0
    assert [(p.name, p.samples) for p in store.open().people()] == [("Ana", 0), ("Bob", 1)]
    assert reader.embeddings()[0] == ["Bob"] and len(g.audit_log(10)) == 2


def test_embeddings_are_exact_and_in_enrollment_order(store):
    g = store.open()
    g.add_samples([(f"person {i}", unit(i)) for i in range(50)])
    names, matrix = store.open().embeddings()
    assert names == [f"person {i}" for i in range(50)]
    assert matrix.dtype == np.float32 and matrix.shape == (50, 512)
    assert np.array_equal(matrix[names.index("person 7")], unit(7))


def test_tinydb_embeddings_are_stored_compactly_and_exactly(tmp_path):
    g = Gallery(tmp_path)
    g.add_samples([(f"person {i}", unit(i)) for i in range(50)])
    raw = json.loads((tmp_path / "gallery.json").read_text())
    sample = next(iter(raw["samples"].values()))
    assert isinstance(sample["embedding"], str) and len(sample["embedding"]) < 2800
    assert (tmp_path / "gallery.json").stat().st_size < 50 * 3200
    names, matrix = Gallery(tmp_path).embeddings()
    assert np.array_equal(matrix[names.index("person 7")], unit(7))


def test_tinydb_no_photo_is_ever_stored(tmp_path):
    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    g.audit("identify", "tg:1", faces=1, names=["Ana"])
    stored = {p.name for p in tmp_path.iterdir()}
    assert stored <= {"gallery.json", "audit.json", ".lock"}


def test_only_samples_of_the_same_features_are_compared(store):
    facenet, other = store.open(), store.open(features="siamese-scratch-abc")
    facenet.add_samples([("Ana", unit(1))])
    other.add_samples([("Ana", unit(2)), ("Bob", unit(3))])
    assert facenet.embeddings()[0] == ["Ana"] and np.array_equal(facenet.embeddings()[1][0], unit(1))
    assert other.embeddings()[0] == ["Ana", "Bob"]
    assert [(p.name, p.samples) for p in facenet.people()] == [("Ana", 2), ("Bob", 1)]


def test_invalid_names_change_nothing(store):
    g = store.open()
    g.add_samples([("Ana", unit(1))])
    before = snapshot(g)
    file_before = (store.location and os.path.join(store.location, "gallery.json"))
    raw_before = open(file_before, "rb").read() if store.kind == "tinydb" else None
    for bad in ["", "   ", "x" * 65, "Ana\x00", "Bob\nSmith", "Eve\u202e", "<b>Mallory</b>"]:
        with pytest.raises(InvalidName):
            g.add_samples([("Carl", unit(2)), (bad, unit(3))])
    assert snapshot(g) == before and snapshot(store.open()) == before
    if store.kind == "tinydb":
        assert open(file_before, "rb").read() == raw_before


def test_names_are_cleaned():
    assert validate_name("  Ana   María ") == "Ana María"
    assert validate_name("x" * 64) == "x" * 64
    assert validate_name("José Ñúñez-O'Brien") == "José Ñúñez-O'Brien"


def test_tinydb_writes_leave_no_temporary_files_and_survive_a_failed_transaction(tmp_path):
    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    with pytest.raises(RuntimeError):
        with g._transaction():
            g._table("samples").insert({"key": "ghost", "embedding": "", "model": g.features})
            raise RuntimeError("crash in the middle")
    assert [p.samples for p in g.people()] == [1]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_failure_in_the_middle_of_an_enrollment_changes_nothing(store, monkeypatch):
    """A crash after the new person is written but before their samples: neither stays."""
    g = store.open()
    g.add_samples([("Ana", unit(1))])
    before = snapshot(g)
    if store.kind == "postgres":
        from facebot.storage.postgres import PostgresGallery

        target, method = PostgresGallery, "_insert_samples"
    else:
        from tinydb.table import Table

        target, method = Table, "insert_multiple"
    real = getattr(target, method)

    def crash_on_samples(*args, **kwargs):
        if store.kind == "postgres" or args[0].name == "samples":
            raise RuntimeError("crash in the middle")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, method, crash_on_samples)
    with pytest.raises(RuntimeError):
        g.add_samples([("Bob", unit(2)), ("Ana", unit(3))])
    monkeypatch.undo()
    assert snapshot(g) == before and snapshot(store.open()) == before


def test_a_second_process_sees_changes_without_restarting(store):
    reader = store.open()
    assert reader.embeddings()[0] == []
    code = OPEN + "g.add_samples([('Zoe', np.ones(512, np.float32) / np.sqrt(512))])"
    subprocess.run([sys.executable, "-c", code, store.location], check=True, cwd=os.getcwd())
    names, matrix = reader.embeddings()
    assert names == ["Zoe"] and matrix.shape == (1, 512)


def test_an_open_gallery_sees_another_ones_changes_within_a_second(store):
    """Enrollment and deletion through one object reach another, already-open one (its
    search rows refreshed from what changed), well within a second."""
    reader, writer = store.open(), store.open()
    reader.add_samples([("Ana", unit(1)), ("Bob", unit(2))])
    assert reader.embeddings()[0] == ["Ana", "Bob"]
    unchanged = reader.version
    assert reader.version == unchanged and reader.embeddings() is reader.embeddings()  # cached
    writer.add_samples([("Carl", unit(3))])
    started = time.monotonic()
    while reader.version == unchanged:
        assert time.monotonic() - started < 1.0
        time.sleep(0.01)
    names, matrix = reader.embeddings()
    assert names == ["Ana", "Bob", "Carl"] and np.array_equal(matrix[2], unit(3))
    writer.delete("ana")
    writer.add_samples([("Dora", unit(4))])
    names, matrix = reader.embeddings()
    assert names == ["Bob", "Carl", "Dora"] and np.array_equal(matrix, np.stack([unit(2), unit(3), unit(4)]))
    assert time.monotonic() - started < 1.0
    assert (names, matrix.tobytes()) == (store.open().embeddings()[0], store.open().embeddings()[1].tobytes())


def test_concurrent_writers_lose_nothing(store):
    code = OPEN + "[g.add_samples([(f'{sys.argv[2]} {i}', np.ones(8, np.float32))]) for i in range(15)]"
    procs = [subprocess.Popen([sys.executable, "-c", code, store.location, tag]) for tag in ("a", "b", "c")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(store.open().people()) == 45


def test_concurrent_enrollments_of_one_name_make_one_person(store):
    """Three processes enroll the same five names (spelled differently) at once: five people,
    every sample kept."""
    code = OPEN + ("names = ['Ana', 'BOB', 'carl', 'Dora  Lee', 'eve'];"
                   "[g.add_samples([(names[i % 5] if sys.argv[2] == 'a' else names[i % 5].swapcase(),"
                   " np.ones(8, np.float32))]) for i in range(20)]")
    procs = [subprocess.Popen([sys.executable, "-c", code, store.location, tag]) for tag in ("a", "b", "c")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    people = store.open().people()
    assert len(people) == 5 and sum(p.samples for p in people) == 60
    assert {p.samples for p in people} == {12}


def test_settings_and_audit(store):
    g = store.open()
    assert g.get_setting("threshold", 0.75) == 0.75
    g.set_setting("threshold", 0.7)
    g.set_setting("threshold", 0.65)
    assert store.open().get_setting("threshold") == 0.65
    g.set_setting("names", {"en": ["a", "b"], "n": None})
    assert store.open().get_setting("names") == {"en": ["a", "b"], "n": None}
    for i in range(5):
        g.audit("identify", f"tg:{i}", faces=1)
    log = g.audit_log(3)
    assert [e["actor"] for e in log] == ["tg:2", "tg:3", "tg:4"]
    assert all("time" in e for e in log)
    assert log[-1] == {"time": log[-1]["time"], "action": "identify", "actor": "tg:4", "faces": 1}
    assert log[-1]["time"].endswith("+00:00") and store.open().audit_log(0) == []


def test_settings_change_the_version(store):
    g = store.open()
    before = g.version
    store.open().set_setting("threshold", 0.7)
    assert g.version != before


def test_tinydb_storage_reloads_only_when_the_file_changes(tmp_path):
    storage = AtomicJSONStorage(tmp_path / "db.json")
    storage.write({"t": {"1": {"a": 1}}})
    first = storage.read()
    assert storage.read() is first  # unchanged file: no re-parse
    other = AtomicJSONStorage(tmp_path / "db.json")
    other.write({"t": {"1": {"a": 2}}})
    assert storage.read()["t"]["1"]["a"] == 2


# -- hardening: files that are damaged, full disks, read-only folders (issue 13) -----------------
def test_tinydb_a_file_corrupted_while_running_is_an_error_naming_it_on_every_read(tmp_path):
    """Defect 8: the change marker used to move before the file was parsed, so after one
    failed read the old gallery was served silently. Now every read fails, naming the file,
    until the file is repaired."""
    from facebot.storage import GalleryCorrupt

    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    assert g.embeddings()[0] == ["Ana"]  # parsed and cached
    good = (tmp_path / "gallery.json").read_bytes()
    (tmp_path / "gallery.json").write_bytes(good[: len(good) // 2])  # torn by something else
    for read in [g.people, g.embeddings, lambda: g.version, g.people, Gallery(tmp_path).people]:
        with pytest.raises(GalleryCorrupt, match="gallery.json"):
            read()
    with pytest.raises(GalleryCorrupt, match="gallery.json"):
        g.add_samples([("Bob", unit(2))])  # and nothing is written over it
    assert (tmp_path / "gallery.json").read_bytes() == good[: len(good) // 2]
    (tmp_path / "gallery.json").write_bytes(good)  # restored from a backup
    assert g.embeddings()[0] == ["Ana"] and [p.name for p in g.people()] == ["Ana"]


@pytest.mark.parametrize("content", [b"", b"  \n", b"[1, 2]", b'{"people": [1]}', b"\xff\xfe"])
@pytest.mark.parametrize("file", ["gallery.json", "audit.json"])
def test_tinydb_an_empty_or_damaged_file_is_an_error_naming_it(tmp_path, file, content):
    """Defect 12: a 0-byte gallery.json was taken for an empty gallery; a damaged one gave a
    bare exception. A missing file is still an empty gallery."""
    from facebot.storage import GalleryCorrupt

    g = Gallery(tmp_path)
    assert g.people() == [] and g.audit_log() == []  # no file yet: empty, no error
    (tmp_path / file).write_bytes(content)
    read = g.people if file == "gallery.json" else g.audit_log
    with pytest.raises(GalleryCorrupt) as caught:
        read()
    assert str(tmp_path / file) in str(caught.value)


def test_tinydb_files_are_private_to_their_owner(tmp_path):
    """Defect 12: gallery.json and audit.json were 0644 (anyone on the machine could read the
    faces' embeddings); now every file is 0600 and a new data folder 0700, whatever the umask.
    Files left 0644 by an older facebot are tightened when the gallery is opened."""
    import stat

    old_umask = os.umask(0o022)
    try:
        g = Gallery(tmp_path / "data")
        g.add_samples([("Ana", unit(1))])
        g.audit("identify", "tg:1", faces=1)
        mode = lambda p: stat.S_IMODE(p.stat().st_mode)
        assert mode(tmp_path / "data") == 0o700
        files = sorted(p.name for p in (tmp_path / "data").iterdir())
        assert files == [".lock", "audit.json", "gallery.json"]
        assert {name: mode(tmp_path / "data" / name) for name in files} == {name: 0o600 for name in files}
        for name in files:
            (tmp_path / "data" / name).chmod(0o644)  # as an older facebot left them
        Gallery(tmp_path / "data").people()
        assert {name: mode(tmp_path / "data" / name) for name in files} == {name: 0o600 for name in files}
    finally:
        os.umask(old_umask)


@contextmanager
def mounted(*args: str, target: Path) -> Iterator[Path]:
    """`mount ARGS target` for the duration (unmounted after); skips the test where this
    process may not mount (not root, or a container without the capability)."""
    target.mkdir(exist_ok=True)
    result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip() or result.returncode})")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


@contextmanager
def read_only_view(folder: Path) -> Iterator[Path]:
    """`folder` seen through a path where nothing can be written: a read-only bind mount as
    root (root ignores permissions), else the folder itself made 0500 for the duration."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield folder
        finally:
            folder.chmod(0o700)
        return
    with mounted("--bind", "-o", "ro", str(folder), target=folder.parent / f"{folder.name}-read-only") as view:
        yield view


def test_tinydb_a_full_disk_leaves_no_temporary_file_and_identification_goes_on(tmp_path):
    """Defect 9: a write that ran out of space left `.gallery.json.<pid>.tmp` behind, holding
    the space, so every later audit entry (every identification) failed until someone
    removed it by hand. On a real 256 KB file system."""
    from facebot.storage import GalleryWriteError

    with mounted("-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", target=tmp_path / "disk") as disk:
        g = Gallery(disk / "gallery")
        g.add_samples([(f"person {i}", unit(i)) for i in range(20)])  # about 60 KB
        before = snapshot(g)
        with pytest.raises(GalleryWriteError) as caught:
            g.add_samples([(f"more {i}", unit(100 + i)) for i in range(80)])  # does not fit
        assert "gallery.json" in str(caught.value) and "No space left" in str(caught.value)
        assert sorted(p.name for p in (disk / "gallery").iterdir()) == [".lock", "gallery.json"]
        assert snapshot(g) == before and snapshot(Gallery(disk / "gallery")) == before
        for i in range(3):  # identifications are audited again at once
            g.audit("identify", "tg:1", faces=1, names=["person 1"])
        assert len(g.audit_log()) == 3
        g.add_samples([("late", unit(1000))])  # and small changes still fit
        assert len(g.embeddings()[0]) == 21
        assert not [p for p in (disk / "gallery").iterdir() if p.name.endswith(".tmp")]


def test_tinydb_a_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    """Defect 9, any failure while writing (here ENOSPC from fsync, as delayed allocation
    reports it once the bytes are written): the temporary file goes, the message names the
    database file, nothing changed."""
    import errno

    from facebot.storage import GalleryWriteError

    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    before = snapshot(g)
    real_fsync = os.fsync

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(GalleryWriteError, match="gallery.json.*No space left"):
        g.add_samples([("Bob", unit(2))])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "gallery.json"]
    assert snapshot(g) == before


def test_tinydb_stray_temporary_files_are_ignored_and_cleared(tmp_path):
    """Temporary files of a writer killed mid-write (kill -9, a power cut) are never read,
    and the next writer, holding the lock, removes them."""
    g = Gallery(tmp_path)
    g.add_samples([("Ana", unit(1))])
    for stray in (".gallery.json.99999.tmp", ".audit.json.99998.tmp"):
        (tmp_path / stray).write_text('{"people": {"1": {"name": "Mallory"')  # torn
    assert [p.name for p in Gallery(tmp_path).people()] == ["Ana"] and Gallery(tmp_path).audit_log() == []
    g.add_samples([("Bob", unit(2))])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "gallery.json"]


def read_only_service(service, stack: ExitStack):
    """A second service on the same gallery, opened where nothing can be written: the TinyDB
    folder through a read-only view, or the PostgreSQL database set read-only."""
    from facebot.service import open_service

    if service.gallery.data_dir is not None:
        view = stack.enter_context(read_only_view(service.gallery.data_dir))
        return open_service(view, recognizer=service.recognizer), view
    url = service.cli_args[1]
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    return open_service(None, database_url=url, recognizer=service.recognizer), None


def test_a_read_only_gallery_still_identifies_and_refuses_changes_clearly(service_on_each_store, samples, caplog):
    """Defect 9: a read-only data folder (or database) blocked identification too, since its
    audit entry could not be written (nor the TinyDB lock file created). Now only changes
    are refused, with a message saying why; an identification is answered, its missing
    audit entry logged as an error."""
    import logging

    from facebot.recognition import load_image
    from facebot.service import GalleryWriteError

    service = service_on_each_store
    service.enroll("Ana", load_image(samples / "s2" / "1.jpg"))
    with ExitStack() as stack:
        readonly, view = read_only_service(service, stack)
        files = sorted(p.name for p in view.iterdir()) if view else None
        with caplog.at_level(logging.ERROR, logger="facebot.service"):
            [face] = readonly.identify(load_image(samples / "s2" / "9.jpg"), actor="tg:7")
        assert face.name == "Ana" and face.known
        assert any("not audited" in r.getMessage() for r in caplog.records)
        assert [p.name for p in readonly.people()] == ["Ana"]
        for change in (lambda: readonly.enroll("Bob", load_image(samples / "s5" / "1.jpg")),
                       lambda: readonly.delete("Ana"), lambda: readonly.set_threshold(0.7)):
            with pytest.raises(GalleryWriteError, match="read-only|Read-only|Permission denied"):
                change()
        assert [(p.name, p.samples) for p in readonly.people()] == [("Ana", 1)]
        assert view is None or sorted(p.name for p in view.iterdir()) == files  # nothing created
    assert [e["action"] for e in service.audit_log()] == ["enroll"]


@contextmanager
def audit_unwritable(service) -> Iterator[None]:
    """Every audit write fails for the duration: in a TinyDB folder, audit.json's temporary
    file cannot be created (a folder sits where it goes); in PostgreSQL, a trigger refuses
    every new audit row. Gallery files and tables stay writable."""
    if service.gallery.data_dir is not None:
        blocker = service.gallery.data_dir / f".audit.json.{os.getpid()}.tmp"
        blocker.mkdir()
        try:
            yield
        finally:
            blocker.rmdir()
        return
    url = service.cli_args[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$")
        conn.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse_audit ON audit")


def consistent(service) -> dict[str, int]:
    """The gallery and its audit log tell the same story: every sample stored was announced
    by an enroll entry and every person deleted by a delete entry. Returns the people."""
    people = {p.name: p.samples for p in service.people()}
    entries = service.audit_log(1000)
    added = sum(e["added"] for e in entries if e["action"] == "enroll")
    removed = sum(e["samples"] for e in entries if e["action"] == "delete")
    assert added - removed == sum(people.values()), (people, entries)
    return people


def test_a_change_and_its_audit_entry_are_saved_together_or_not_at_all(service_on_each_store, samples):
    """Defect 7: an enrollment whose audit entry failed was saved but reported as failed; HR
    retried and got a duplicate sample, neither enrollment audited. Now a change is stored
    with its audit entry, or nothing is stored and the caller is told so."""
    from facebot.recognition import load_image

    service = service_on_each_store
    photo = load_image(samples / "s2" / "1.jpg")
    service.enroll("Bob", load_image(samples / "s5" / "1.jpg"))
    answers = []
    with audit_unwritable(service):
        for change in [lambda: service.enroll("Ana", photo), lambda: service.enroll("Ana", photo),  # HR retries
                       lambda: service.set_threshold(0.7), lambda: service.delete("Bob")]:
            before = (consistent(service), service.saved_rule())
            try:
                change()
                answers.append("done")
            except Exception as exc:  # told it failed: then nothing changed
                answers.append(type(exc).__name__)
                assert (consistent(service), service.saved_rule()) == before, exc
            consistent(service)
    people = consistent(service)
    retried = answers[:2].count("done")
    assert people.get("Ana", 0) == retried and people.get("Bob", 0) == (0 if answers[3] == "done" else 1)
    assert (service.saved_rule() is not None) == (answers[2] == "done")
    assert any(e["action"] == "threshold" for e in service.audit_log()) == (answers[2] == "done")
    service.enroll("Ana", photo)  # once the audit can be written again, all is as before
    assert consistent(service)["Ana"] == retried + 1


def test_concurrent_changes_and_identifications_keep_every_audit_entry_once(store):
    """Three processes enroll (each enrollment audited in its own transaction) while
    identifications are audited in between: every entry is in the log exactly once."""
    code = OPEN + ("tag = sys.argv[2]\n"
                   "for i in range(12):\n"
                   "    g.add_samples([(f'{tag} {i}', np.ones(8, np.float32))],"
                   " audit=lambda counts: ('enroll', {'name': next(iter(counts)), 'seq': f'{tag}{i}'}))\n"
                   "    g.audit('identify', f'tg:{tag}', seq=f'{tag}{i}')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, store.location, tag]) for tag in ("a", "b", "c")]
    assert all(p.wait(timeout=180) == 0 for p in procs)
    log = store.open().audit_log(10_000)
    expected = sorted((action, f"{tag}{i}") for tag in "abc" for i in range(12) for action in ("enroll", "identify"))
    assert sorted((e["action"], e["seq"]) for e in log) == expected
    assert len(store.open().people()) == 36


def test_tinydb_an_audit_entry_held_back_by_a_full_disk_is_written_once_later(tmp_path):
    """An enrollment committed while audit.json could not be written keeps its entry in
    gallery.json's journal (shown by audit_log); the next write moves it, once."""
    g = Gallery(tmp_path)
    blocker = tmp_path / f".audit.json.{os.getpid()}.tmp"
    blocker.mkdir()
    g.add_samples([("Ana", unit(1))], audit=lambda counts: ("enroll", {"name": "Ana"}))
    assert [e["action"] for e in g.audit_log()] == ["enroll"] and not (tmp_path / "audit.json").exists()
    blocker.rmdir()
    g.audit("identify", "tg:1", names=["Ana"])
    g.audit("identify", "tg:1", names=["Ana"])
    assert [e["action"] for e in Gallery(tmp_path).audit_log()] == ["enroll", "identify", "identify"]
    raw = json.loads((tmp_path / "audit.json").read_text())
    assert [e["action"] for e in raw["audit"].values()] == ["enroll", "identify", "identify"]


# -- read-modify-write of a setting -------------------------------------------------------------
def test_a_setting_is_updated_from_the_value_read_in_the_same_transaction(store):
    """update_setting hands the change the stored value (None when there is none), saves what
    it returns with its audit entry; a change or an audit entry that raises writes nothing,
    not even the row of a setting that did not exist."""
    from facebot.storage import SettingUpdate

    g = store.open()
    seen = []

    def append(item):
        def change(old):
            seen.append(old)
            return (old or []) + [item]
        return change

    grown = lambda u: ("grow", {"old": u.old, "new": u.new})  # noqa: E731
    assert g.update_setting("list", append(1), actor="tg:1", audit=grown) == [1]
    assert store.open().update_setting("list", append(2)) == [1, 2]
    assert seen == [None, [1]] and store.open().get_setting("list") == [1, 2]
    entry = g.audit_log(10)[-1]
    assert (entry["action"], entry["actor"], entry["old"], entry["new"]) == ("grow", "tg:1", None, [1])
    assert SettingUpdate(None, [1]) == SettingUpdate(old=None, new=[1])

    version, log = g.version, g.audit_log(10)

    def refuse(old):
        old.append("changed in place")  # even a change that edits what it was given writes nothing
        raise LookupError("no")

    with pytest.raises(LookupError):
        g.update_setting("list", refuse, audit=grown)
    with pytest.raises(ZeroDivisionError):  # the audit entry fails: the change goes too
        g.update_setting("list", append(3), audit=lambda u: ("grow", {"x": 1 / 0}))
    with pytest.raises(LookupError):
        g.update_setting("new key", lambda old: (_ for _ in ()).throw(LookupError(old)), audit=grown)
    for reader in (g, store.open()):
        assert reader.get_setting("list") == [1, 2] and reader.get_setting("new key", "absent") == "absent"
        assert reader.audit_log(10) == log and reader.version == version


# Run in several processes at once (see `race`): an office (the service's rules, without the
# faces) on the gallery argv[1]; the process says it is ready (the file argv[2].argv[3]), then
# waits for the go file argv[2], so that every process's read-modify-write overlaps the others'.
RACER = ("import os, sys, time\n"
         "import numpy as np\n"
         "from facebot.office import OfficeRules\n"
         "from facebot.storage.store import open_location\n"
         "class Office(OfficeRules):\n"
         "    def __init__(self, gallery):\n"
         "        self.gallery = gallery\n"
         "office = Office(open_location(sys.argv[1]))\n"
         "go, tag, args = sys.argv[2], sys.argv[3], sys.argv[4:]\n"
         "open(f'{go}.{tag}', 'w').close()\n"
         "while not os.path.exists(go):\n"
         "    time.sleep(0.0005)\n")


def race(store, folder: Path, action: str, args: list[list[str]]) -> list[str]:
    """Run RACER + `action` in one process per entry of `args` (its argv[4:]), released all at
    the same instant once every one has started; returns each process's output."""
    go = folder / f"go-{time.monotonic_ns()}"
    procs = [subprocess.Popen([sys.executable, "-c", RACER + action, store.location, str(go), str(i), *a],
                              stdout=subprocess.PIPE, text=True) for i, a in enumerate(args)]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.{i}").exists() for i in range(len(procs))):
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline, "a racer did not start"
            time.sleep(0.005)
        go.touch()
        outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * len(procs)
    return outputs


RACERS, EACH = 6, 4


def test_access_allowed_and_revoked_by_many_processes_at_once_loses_nobody(store, tmp_path_factory):
    """Six processes (say, HR in two bots) allow four ids each at the same moment: all 24 are
    allowed, each with its role and one audit entry; then they revoke them all at once: none
    is left, each revoke audited once with the role it took back."""
    from facebot.office import Access, OfficeRules

    folder = tmp_path_factory.mktemp("race")
    ids = [[str(100 * p + j) for j in range(EACH)] for p in range(RACERS)]
    race(store, folder, "for i in args: office.allow(int(i), hr=int(i) % 4 == 0, actor=f'tg:{tag}')", ids)
    office = type("Office", (OfficeRules,), {})()
    office.gallery = store.open()
    every = [int(i) for group in ids for i in group]
    assert office.access() == Access(users=frozenset(i for i in every if i % 4),
                                     hr=frozenset(i for i in every if i % 4 == 0))
    allowed = [(e["id"], e["role"]) for e in office.gallery.audit_log(1000) if e["action"] == "access-allow"]
    assert sorted(allowed) == sorted((i, "user" if i % 4 else "hr") for i in every)

    race(store, folder, "for i in args: office.revoke(int(i), actor=f'tg:{tag}')", ids)
    assert office.access() == Access()
    revoked = [(e["id"], e["role"]) for e in office.gallery.audit_log(1000) if e["action"] == "access-revoke"]
    assert sorted(revoked) == sorted(allowed)


def test_faces_added_and_named_by_many_processes_at_once_are_all_kept_or_gone(store, tmp_path_factory):
    """Six cameras announce four unknown faces each at the same moment: all 24 wait to be
    named, each with its camera and embedding; then each forgets two of its own at once:
    exactly the other twelve are left."""
    from facebot.office import OfficeRules

    folder = tmp_path_factory.mktemp("race")
    announce = ("for i in range(int(args[0])):\n"
                "    print(office.add_pending_face(np.full(8, 10 * int(tag) + i, np.float32), f'cam{tag}'))")
    outputs = race(store, folder, announce, [[str(EACH)]] * RACERS)
    faces = [out.split() for out in outputs]
    assert [len(f) for f in faces] == [EACH] * RACERS
    office = type("Office", (OfficeRules,), {})()
    office.gallery = store.open()
    for camera, ids in enumerate(faces):
        for i, face_id in enumerate(ids):
            face = office.pending_face(face_id)
            assert face is not None and face.camera == f"cam{camera}"
            assert np.array_equal(face.embedding, np.full(8, 10 * camera + i, np.float32))

    race(store, folder, "for face_id in args: office.forget_pending_face(face_id)", [ids[::2] for ids in faces])
    left = {f["id"] for f in office.gallery.get_setting("pending_faces")}
    assert left == {face_id for ids in faces for face_id in ids[1::2]}


def test_a_refused_revoke_or_a_face_not_pending_writes_nothing(store):
    """Refusals are decided on the value read in the update's transaction and write nothing:
    revoking an id only the environment allows (FixedAccess) or nobody does (NotListed), and
    forgetting a face that is not pending, leave the setting, the audit log and the version."""
    from facebot.office import Access, FixedAccess, NotListed, OfficeRules

    office = type("Office", (OfficeRules,), {})()
    office.gallery = store.open()
    assert office.allow(5, actor="tg:1") == Access(users=frozenset({5}))
    face = office.add_pending_face(np.ones(8, np.float32), "door")
    before = store.open().get_setting("access"), store.open().get_setting("pending_faces")
    version, log = office.gallery.version, office.gallery.audit_log(10)
    with pytest.raises(FixedAccess):
        office.revoke(7, bootstrap=Access(hr=frozenset({7})))
    with pytest.raises(NotListed):
        office.revoke(8, bootstrap=Access(hr=frozenset({7})))
    office.forget_pending_face("not-a-face")
    reader = store.open()
    assert (reader.get_setting("access"), reader.get_setting("pending_faces")) == before
    assert reader.version == version and reader.audit_log(10) == log
    assert office.revoke(5, actor="tg:1") == Access() and office.pending_face(face) is not None
    assert office.gallery.audit_log(1)[0]["action"] == "access-revoke"


def test_a_face_is_named_while_another_process_holds_the_gallery(service, samples, monkeypatch, caplog):
    """Identifying only reads, but its audit entry waits for the write lock like a change.
    When another process holds the gallery past that wait (30 s; 0.3 here), the face is
    still named and the missing entry logged, rather than the asker told "busy, try again"
    (as a read-only folder already was)."""
    import fcntl

    import facebot.storage.gallery as tinydb_gallery
    from facebot.recognition import load_image

    service.enroll("Ana", load_image(samples / "s2" / "1.jpg"), consent="test")
    monkeypatch.setattr(tinydb_gallery, "LOCK_TIMEOUT_S", 0.3)
    with open(service.gallery.data_dir / ".lock", "a") as other_writer:  # flock: another open file, another owner
        fcntl.flock(other_writer, fcntl.LOCK_EX)
        [face] = service.identify(load_image(samples / "s2" / "5.jpg"), actor="bot:1")
    assert face.name == "Ana"
    assert "identify by bot:1 not audited" in caplog.text and "Ana" not in caplog.text


def test_copying_from_a_folder_that_is_not_there_is_refused(tmp_path):
    """`facebot db copy --from FOLDER` with the folder's name mistyped: refused, naming it,
    rather than "copied 0 people" and an empty target made."""
    from facebot.storage import copy_gallery

    with pytest.raises(ValueError, match="no gallery at .*typo"):
        copy_gallery(tmp_path / "typo", tmp_path / "backup")
    assert not (tmp_path / "backup").exists() and not (tmp_path / "typo").exists()
