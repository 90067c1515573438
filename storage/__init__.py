"""The gallery: enrolled people, their face embeddings (never photos), settings and an audit log, on TinyDB."""
from facebot.storage.gallery import Gallery, GalleryBusy, Person, UnknownPerson
from facebot.storage.names import InvalidName, validate_name

__all__ = ["Gallery", "GalleryBusy", "InvalidName", "Person", "UnknownPerson", "validate_name"]
