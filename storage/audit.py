"""Audit entries as both stores keep them, and how a change hands its entry to a store.

An entry is `{time, action, actor, **details}`: `time` is ISO 8601 UTC to the second,
`action` what was done ("enroll", "identify", "delete", ...), `actor` who did it
("cli:USER", "tg:ID", "camera:NAME"), and the details JSON values (never a photo, a token
or an embedding).

A change to the gallery (enroll, delete, a setting) does not write its entry itself: it
passes an `AuditFor` callable to the store, which calls it with the change's outcome (the
sample counts, an Erasure, ...) and stores the entry in the same transaction as the
change. So a change is never saved without its entry, nor its entry without it.

Erasure: deleting a person replaces their name in every audit entry with one random
pseudonym ("erased-1a2b3c4d"; random, so that it cannot be recomputed from the name), so
the log still shows what happened without saying to whom. Where a name can be:

- in the fields that hold names whole (`name`, `names`, `people`): replaced when the value
  is the person's name ignoring case and spacing, so "Ana" never touches "Ana María";
- in any other text (a consent note, a refusal reason): replaced where the name stands
  as whole words, in any case ("called ANA about..." -> "called erased-... about...").
  A different person whose name contains it as whole words ("Ana" inside "Ana María")
  is over-erased in such free text, never in the name fields.
`time`, `action` and `actor` (user ids, camera names) are never rewritten.

Retention: entries expire FACEBOT_RETENTION_DAYS days (default 365) after their time and
are deleted by the next audit write of any kind (an identification, an enrollment, ...),
on both stores. Nothing is pruned by count: a flood of refusals cannot push the record of
an enrollment out early. (The TinyDB store alone has a safety cap, storage.gallery.)
"""
from __future__ import annotations

import math
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, TypeVar

from facebot.storage.names import name_key

T = TypeVar("T")

# Given a change's outcome, the (action, details) of its audit entry; the actor and the
# time are the store's to add.
AuditFor = Callable[[T], tuple[str, dict[str, Any]]]


def now_iso() -> str:
    """The current time as entries and samples store it: UTC, to the second, '+00:00'."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


DEFAULT_RETENTION_DAYS = 365
RETENTION_VARIABLE = "FACEBOT_RETENTION_DAYS"


def retention_days(value: float | None = None) -> float:
    """How many days audit entries are kept: `value` if given, else $FACEBOT_RETENTION_DAYS,
    else DEFAULT_RETENTION_DAYS. Raises ValueError naming the variable unless it is a
    finite number of days above 0."""
    source = "retention_days"
    if value is None:
        raw = os.environ.get("FACEBOT_RETENTION_DAYS", "").strip()
        if not raw:
            return DEFAULT_RETENTION_DAYS
        source = RETENTION_VARIABLE
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{RETENTION_VARIABLE} must be a number of days, not {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{source} must be a number of days above 0 (audit entries are kept that long), not {value}")
    return value


def cutoff_iso(days: float) -> str:
    """The time before which entries have expired, as entries store times."""
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")


def expired(time: str, cutoff: str) -> bool:
    """Whether an entry stamped `time` is older than `cutoff` (both ISO 8601). Times as
    facebot writes them (UTC, '+00:00', to the second) compare as text, cheaply; anything
    else (an entry edited by hand) is parsed, and an unreadable time never expires."""
    if len(time) == len(cutoff) and time.endswith("+00:00"):
        return time < cutoff
    try:
        moment = datetime.fromisoformat(time)
    except (TypeError, ValueError):
        return False
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment < datetime.fromisoformat(cutoff)


def make_entry(action: str, actor: str, details: dict[str, Any], time: str | None = None) -> dict[str, Any]:
    """An audit entry {time, action, actor, **details}; `time` defaults to now."""
    return {"time": time or now_iso(), "action": action, "actor": actor, **details}


# -- erasure -------------------------------------------------------------------------------------
PERSON_FIELDS = ("name", "names", "people")  # details that hold person names whole
FIXED_FIELDS = ("time", "action", "actor")  # never hold the data subject's name


@dataclass(frozen=True)
class Erasure:
    """What deleting a person did: their stored `name` (for the caller's answer only; it is
    stored nowhere), the samples removed, the pseudonym that replaced the name in the audit
    log, and how many existing audit entries were rewritten."""

    name: str
    samples: int
    pseudonym: str
    audit_entries: int


def new_pseudonym() -> str:
    """'erased-' and 8 random hex digits: unrelated to the name, so nobody can recompute it."""
    return f"erased-{secrets.token_hex(4)}"


def _words_pattern(name: str) -> re.Pattern:
    """The name as whole words, any case, any spacing between its words."""
    words = [re.escape(word) for word in name.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def scrub(entry: dict[str, Any], name: str, pseudonym: str) -> dict[str, Any] | None:
    """`entry` with `name` replaced by `pseudonym` (see the module doc), or None when the
    entry does not mention the name."""
    key, pattern = name_key(name), _words_pattern(name)

    def whole(value: Any) -> Any:  # a name field: a name, or a list of names; never partly replaced
        if isinstance(value, str):
            return pseudonym if name_key(value) == key else value
        if isinstance(value, list):
            return [whole(v) if isinstance(v, str) else text(v) for v in value]
        return text(value)

    def text(value: Any) -> Any:  # anything else: whole words inside text, at any depth
        if isinstance(value, str):
            return pattern.sub(pseudonym, value)
        if isinstance(value, list):
            return [text(v) for v in value]
        if isinstance(value, dict):
            return {k: text(v) for k, v in value.items()}
        return value

    changed = {k: v if k in FIXED_FIELDS else whole(v) if k in PERSON_FIELDS else text(v) for k, v in entry.items()}
    return changed if changed != entry else None


def mentions(entry: dict[str, Any], name: str) -> bool:
    """Whether an audit entry names the person (as `scrub` would find them)."""
    return scrub(entry, name, "\x00") is not None


def like_patterns(name: str) -> list[str]:
    """SQL ILIKE patterns, one per word of `name`, that every JSON text mentioning the name
    matches (a cheap first pass before `mentions` decides): letters outside ASCII become
    `_` (any one character: case folding outside ASCII depends on the database's locale)
    and characters JSON escapes become `%`."""
    patterns = []
    for word in name.split():
        out = []
        for ch in word:
            if ch in "%_\\":
                out.append("\\" + ch)
            elif ch == '"' or ord(ch) < 32:
                out.append("%")
            elif ord(ch) < 128:
                out.append(ch)
            else:
                out.append("_")
        patterns.append("%" + "".join(out) + "%")
    return patterns
