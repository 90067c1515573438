"""Person names: what is accepted, and how two spellings are recognised as one person."""
from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 64


class InvalidName(ValueError):
    """The name is empty, too long, or contains control or markup characters."""


def clean_text(text, what: str, max_length: int, error: type[ValueError], empty: str = "") -> str:
    """`text` in NFC with single spaces, trimmed, or `error` saying why not: not text,
    empty (`empty` is added to that message), longer than `max_length`, or holding a
    control or invisible character. `what` names the text in messages ("the name")."""
    if not isinstance(text, str):
        raise error(f"{what} must be text")
    # Only plain spaces are collapsed; tabs and newlines are control characters, refused below.
    cleaned = " ".join(part for part in unicodedata.normalize("NFC", text).split(" ") if part)
    if not cleaned:
        raise error(f"{what} is empty{empty}")
    if len(cleaned) > max_length:
        raise error(f"{what} is longer than {max_length} characters")
    for ch in cleaned:
        # Cc: control characters; Cf: invisible formatting (bidi overrides, zero-width)
        if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn"):
            raise error(f"{what} contains a control or invisible character (U+{ord(ch):04X})")
    return cleaned


def validate_name(name: str) -> str:
    """Return the cleaned name (NFC, single spaces, trimmed) or raise InvalidName saying why."""
    cleaned = clean_text(name, "the name", MAX_NAME_LENGTH, InvalidName)
    for ch in cleaned:
        if ch in "<>`/\\":
            raise InvalidName(f"the name may not contain {ch!r}")
    return cleaned


def name_key(name: str) -> str:
    """Case- and spacing-insensitive key, so 'ana maría' and 'Ana  María' are one person."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())
