"""Person names: what is accepted, and how two spellings are recognised as one person."""
from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 64


class InvalidName(ValueError):
    """The name is empty, too long, or contains control or markup characters."""


def validate_name(name: str) -> str:
    """Return the cleaned name (NFC, single spaces, trimmed) or raise InvalidName saying why."""
    if not isinstance(name, str):
        raise InvalidName("the name must be text")
    # Only plain spaces are collapsed; tabs and newlines are control characters, refused below.
    cleaned = " ".join(part for part in unicodedata.normalize("NFC", name).split(" ") if part)
    if not cleaned:
        raise InvalidName("the name is empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    for ch in cleaned:
        # Cc: control characters; Cf: invisible formatting (bidi overrides, zero-width)
        if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn"):
            raise InvalidName(f"the name contains a control or invisible character (U+{ord(ch):04X})")
        if ch in "<>`/\\":
            raise InvalidName(f"the name may not contain {ch!r}")
    return cleaned


def name_key(name: str) -> str:
    """Case- and spacing-insensitive key, so 'ana maría' and 'Ana  María' are one person."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())
