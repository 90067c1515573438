"""The gallery: enrolled people, their face embeddings (never photos), settings and an audit log,
on TinyDB files (the default) or PostgreSQL (`open_gallery(database_url=...)`; see storage.store)."""
from facebot.storage.audit import Erasure
from facebot.storage.errors import GalleryCorrupt, GalleryWriteError
from facebot.storage.gallery import Gallery, GalleryBusy, Person, SampleInfo, SampleRemoval, SettingUpdate, UnknownPerson, UnknownSample
from facebot.storage.names import InvalidName, validate_name
from facebot.storage.store import (CopyReport, GallerySummary, Store, TargetNotEmpty, copy_gallery, gallery_status,
                                   is_database_url, open_gallery, summarize)


def init_database(url: str) -> tuple[list[int], int]:
    """Create or upgrade the PostgreSQL gallery schema at `url`; returns (versions applied
    now, version the database is at). Idempotent. (psycopg is imported only when called.)"""
    from facebot.storage.postgres import init_database as init

    return init(url)


__all__ = ["CopyReport", "Erasure", "Gallery", "GalleryBusy", "GalleryCorrupt", "GallerySummary", "GalleryWriteError", "InvalidName", "Person", "SampleInfo", "SampleRemoval", "SettingUpdate", "Store",
           "TargetNotEmpty", "UnknownPerson", "UnknownSample", "copy_gallery", "gallery_status", "init_database", "is_database_url", "open_gallery",
           "summarize", "validate_name"]
