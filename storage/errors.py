"""What can go wrong with the gallery's files or database, as exceptions whose message a
person can act on: it names the file (or the database) and says what to do.

`GalleryBusy` and `UnknownPerson` live in storage.gallery, where they always have."""
from __future__ import annotations


class GalleryCorrupt(RuntimeError):
    """A gallery file cannot be read as a gallery (torn, emptied, edited by hand, not
    JSON). Raised on every read until the file is repaired or restored: never an empty
    or an old gallery in its place."""


class GalleryWriteError(RuntimeError):
    """The gallery cannot be written (read-only folder or database, disk full, no
    permission); nothing was changed. Reading still works."""
