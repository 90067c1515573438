"""A TinyDB storage that never leaves a half-written file and re-reads only on change.

Writes go to a temporary file in the same folder, are fsync'ed, then renamed over the
database (rename is atomic on POSIX), and the folder is fsync'ed so the rename survives a
power cut. A kill at any instant leaves either the old or the new file, never a mix.

The parsed content is kept in memory and reloaded only when the file's identity
(inode, size, mtime) changes, so a bot and a camera sharing one gallery see each
other's enrollments without re-parsing the file on every query. The identity is
recorded only once the content has parsed: a file damaged at run time is an error
(GalleryCorrupt, naming it) on every read until it is repaired, never the old content
served as if nothing had happened. Only a missing file is an empty database; an empty
(0-byte) file is damage, since this writer never leaves one.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tinydb.storages import Storage

from facebot.storage.errors import GalleryCorrupt, GalleryWriteError

log = logging.getLogger(__name__)


FILE_MODE = 0o600  # owner only: the files hold face embeddings and who did what
FOLDER_MODE = 0o700


def make_private(path: Path) -> None:
    """Take group and other permissions off a file or folder facebot made (an older version
    left them 0644/0755). Best effort: a file we do not own, or a read-only file system,
    is left as it is."""
    try:
        mode = path.stat().st_mode & 0o777
        private = mode & (FOLDER_MODE if path.is_dir() else FILE_MODE)
        if mode != private:
            path.chmod(private)
    except OSError:
        pass


def _signature(path: Path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class AtomicJSONStorage(Storage):
    """JSON storage with atomic replace-on-write, change detection and deferred writes."""

    def __init__(self, path: str | Path):
        # The folder is made by the first write (make_folder), not here: a command that only
        # reads, run where no gallery is, reads an empty one and leaves nothing behind.
        self.path = Path(path)
        self._data: dict | None = None
        self._signature = None
        self.deferred = False  # inside a transaction: keep writes in memory until flush()
        self.dirty = False

    def make_folder(self) -> None:
        """Make the database's folder (owner only) where it is not there yet; writers call it
        before their first file goes in."""
        try:
            self.path.parent.mkdir(parents=True, mode=FOLDER_MODE)
            make_private(self.path.parent)  # mkdir's mode is cut by the umask
        except FileExistsError:
            pass  # someone made it (another facebot, or the user, whose choice of mode stands)
        except OSError as exc:
            raise GalleryWriteError(f"cannot make the gallery folder {self.path.parent}: {exc.strerror or exc}; "
                                    "nothing was changed") from exc

    def changed_on_disk(self) -> bool:
        """True when another writer replaced the file since we last read or wrote it."""
        return _signature(self.path) != self._signature

    def read(self) -> dict | None:
        if self.deferred and self._data is not None:
            return self._data
        if self._data is None or self.changed_on_disk():
            self.reload()
        return self._data

    def reload(self) -> None:
        """Drop whatever is in memory and read the file again; raises GalleryCorrupt (naming
        the file) when it is not a TinyDB database, and then forgets the old content, so
        that the next read fails again instead of serving it."""
        self._data, self._signature = None, None
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            self._data = {}  # never written yet: an empty database
            return
        with fh:
            # The identity of the file we actually read (not of whatever the path names by
            # the time we finish): a writer replacing it meanwhile is noticed at the next read.
            st = os.fstat(fh.fileno())
            raw = fh.read()
        self._data = parse_database(raw, self.path)
        self._signature = (st.st_ino, st.st_size, st.st_mtime_ns)

    def write(self, data: dict) -> None:
        self._data = data
        if self.deferred:
            self.dirty = True
            return
        self._write_file(data)

    def flush(self) -> None:
        """Write pending changes of a transaction in one atomic replace."""
        if self.dirty and self._data is not None:
            self._write_file(self._data)
        self.dirty = False

    def discard(self) -> None:
        """Forget pending changes (a failed transaction); the next read reloads the file."""
        self._data, self._signature, self.dirty = None, None, False

    def _write_file(self, data: dict) -> None:
        """Replace the file with `data` atomically; raises GalleryWriteError (naming the file
        and why) when it cannot, leaving the old file and no temporary file behind."""
        self.make_folder()
        tmp = self._temporary()
        try:
            # 0600 from the first byte: the file holds biometric data. os.open's mode is cut by
            # the umask and an older facebot's temporary file may linger under this pid, so the
            # mode is also set explicitly; the rename carries it over to the database file.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with open(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fd, FILE_MODE)
                # json.dumps, not json.dump: only the one-shot encoder is the C one (2-3x faster
                # on a large audit.json or gallery.json; the bytes are the same).
                fh.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
                fh.flush()
                os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
            os.replace(tmp, self.path)
        except BaseException as exc:
            # A half-written temporary file would hold the space a full disk needs back (every
            # later write, an identification's audit entry included, would fail until someone
            # removed it by hand), so it goes whatever went wrong.
            _remove(tmp)
            if isinstance(exc, OSError):
                raise GalleryWriteError(f"cannot write {self.path}: {exc.strerror or exc}; nothing was changed") from exc
            raise
        # The folder's entry for the new file must reach the disk too, or a power cut could
        # bring back the old file after we said the new one was saved.
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._signature = _signature(self.path)

    def _temporary(self) -> Path:
        """Where the next version is written before the rename: hidden, and named by the
        process, so that two processes never write the same temporary file."""
        return self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files of writers that died mid-write (kill -9, a power cut).
        Call only while holding the gallery's write lock: then no other writer exists, so
        every temporary file of this database is stale. Readers never look at them."""
        for stray in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            log.info("removing %s, left by a writer that stopped mid-write", stray)
            _remove(stray)

    def close(self) -> None:
        pass


def _remove(path: Path) -> None:
    """Delete a file if it is there; a failure is logged, not raised (there is a more
    important error to report, or nothing depends on it)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc.strerror or exc)


def parse_database(raw: bytes, path: Path) -> dict:
    """The content of a TinyDB file, {table: {doc id: document}}; raises GalleryCorrupt
    naming `path` for anything else (empty, torn, not UTF-8, not JSON, wrong shape)."""
    def damaged(why: str) -> GalleryCorrupt:
        return GalleryCorrupt(f"{path} is damaged ({why}); nothing was read from it. Restore it from a "
                              f"backup or move it away (an absent file is an empty gallery)")

    if not raw.strip():
        raise damaged("the file is empty")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(table, dict) and all(isinstance(doc, dict) for doc in table.values())
                                             for table in data.values()):
        raise damaged("not a TinyDB database: tables of documents expected")
    return data
