"""Audit entries as both stores keep them, and how a change hands its entry to a store.

An entry is `{time, action, actor, **details}`: `time` is ISO 8601 UTC to the second,
`action` what was done ("enroll", "identify", "delete", ...), `actor` who did it
("cli:USER", "tg:ID", "camera:NAME"), and the details JSON values (never a photo, a token
or an embedding).

A change to the gallery (enroll, delete, a setting) does not write its entry itself: it
passes an `AuditFor` callable to the store, which calls it with the change's outcome (the
sample counts, the number removed, ...) and stores the entry in the same transaction as
the change. So a change is never saved without its entry, nor its entry without it.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

T = TypeVar("T")

# Given a change's outcome, the (action, details) of its audit entry; the actor and the
# time are the store's to add.
AuditFor = Callable[[T], tuple[str, dict[str, Any]]]


def now_iso() -> str:
    """The current time as entries and samples store it: UTC, to the second, '+00:00'."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_entry(action: str, actor: str, details: dict[str, Any], time: str | None = None) -> dict[str, Any]:
    """An audit entry {time, action, actor, **details}; `time` defaults to now."""
    return {"time": time or now_iso(), "action": action, "actor": actor, **details}
