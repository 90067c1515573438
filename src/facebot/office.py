"""The office rules of the application service: who may use the bot, attendance from the
cameras, faces waiting to be named, and reports of wrong names.

`FaceService` inherits `OfficeRules`, so these are service methods like enroll or identify
(one service, every rule and audit entry in it); they live in their own module only to keep
`service.py` about faces. Everything is kept in the gallery store, so it survives restarts
and is shared by every bot, camera and command on the same gallery (TinyDB or PostgreSQL):

- access: the setting "access" = {"users": [ids], "hr": [ids]}: who was allowed from
  Telegram. The environment's FACEBOT_HR_IDS / FACEBOT_USER_IDS are the bootstrap, passed
  in by the caller; they cannot be changed here. Every change is audited.
- attendance: audit entries "sighting" {camera, name}, one per person per camera per minute
  at most (the camera throttles), read back and aggregated per day in a time zone.
- pending faces: the setting "pending_faces" = [{id, embedding (base64 float32), camera,
  time}], unknown faces a camera announced, kept 24 h so that HR can name one from the
  alert's button (the bot enrolls it; the camera only posts).
- the daily summary: the setting "summary_sent" = the last date whose summary went out, so
  it goes out once whatever restarts.
"""
from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone, tzinfo
from typing import Any, Iterable

import numpy as np

from facebot.storage import SettingUpdate, validate_name

log = logging.getLogger(__name__)

ACCESS_SETTING = "access"
PENDING_FACES_SETTING = "pending_faces"
SUMMARY_SETTING = "summary_sent"
PENDING_FACE_TTL = timedelta(hours=24)
MAX_PENDING_FACES = 200  # 2.7 KB each in the settings: at most ~0.5 MB
AUDIT_SCAN = 1_000_000  # attendance reads every audit entry the store keeps (its cap is lower)


class AccessRefused(ValueError):
    """An access change that cannot be made; the message says why, for a person."""


class FixedAccess(AccessRefused):
    """The id is allowed by the environment (FACEBOT_HR_IDS / FACEBOT_USER_IDS), which only
    a restart with another environment changes."""

    def __init__(self, user_id: int, role: str):
        super().__init__(f"{user_id} is {role} through {ENV_VARIABLE[role]}: it cannot be revoked from Telegram")
        self.user_id, self.role, self.variable = user_id, role, ENV_VARIABLE[role]


class NotListed(AccessRefused):
    """Revoking an id that nobody allowed."""

    def __init__(self, user_id: int):
        super().__init__(f"{user_id} is not on the access list")
        self.user_id = user_id


ENV_VARIABLE = {"hr": "FACEBOT_HR_IDS", "user": "FACEBOT_USER_IDS"}


@dataclass(frozen=True)
class Access:
    """Who may use the bot: `hr` user ids (enroll, delete, settings, access, attendance; and
    identify) and `users` (user ids, or chat ids of groups, which are negative: identify)."""

    users: frozenset[int] = frozenset()
    hr: frozenset[int] = frozenset()

    @classmethod
    def from_setting(cls, value: Any) -> "Access":
        """The stored setting ({"users": [...], "hr": [...]}); anything malformed is empty
        (and logged), so a hand-edited gallery never opens the bot to everyone."""
        if value is None:
            return cls()
        try:
            return cls(frozenset(int(i) for i in value.get("users", [])), frozenset(int(i) for i in value.get("hr", [])))
        except (AttributeError, TypeError, ValueError):
            log.error("the %r setting is malformed (%r); nobody is allowed through it", ACCESS_SETTING, value)
            return cls()

    def to_setting(self) -> dict:
        return {"users": sorted(self.users), "hr": sorted(self.hr)}

    def __or__(self, other: "Access") -> "Access":
        return Access(self.users | other.users, self.hr | other.hr)

    def role(self, user_id: int) -> str | None:
        """'hr', 'user' or None."""
        return "hr" if user_id in self.hr else "user" if user_id in self.users else None

    def is_hr(self, user_id: int) -> bool:
        return user_id in self.hr

    def may_identify(self, user_id: int, chat_id: int) -> bool:
        """HR always; otherwise the user or the chat must be listed."""
        return user_id in self.hr or user_id in self.users or chat_id in self.users


@dataclass(frozen=True)
class AttendanceRow:
    """One person's day: the cameras that saw them, first and last seen (in the asked zone)."""

    name: str
    cameras: tuple[str, ...]
    first: datetime
    last: datetime

    def to_dict(self) -> dict:
        return {"name": self.name, "cameras": list(self.cameras), "first": self.first.isoformat(timespec="seconds"),
                "last": self.last.isoformat(timespec="seconds")}


@dataclass(frozen=True)
class PendingFace:
    """An unknown face a camera announced, waiting (24 h at most) to be named by HR."""

    id: str
    embedding: np.ndarray
    camera: str
    time: datetime
    pixels: float = float("nan")  # the face's width in the frame (nan: kept by a release that did not say)


def local_zone() -> tzinfo:
    """The machine's time zone (an IANA zone where it can be found, so days follow DST)."""
    try:
        from tzlocal import get_localzone  # installed with python-telegram-bot[job-queue]

        return get_localzone()
    except Exception:  # no tzlocal, or no zone configured on the machine
        return datetime.now().astimezone().tzinfo


class OfficeRules:
    """Mixed into FaceService: uses its `gallery`, `conflict`, `_audit_read`, `_save_enrollment`."""

    # -- access ------------------------------------------------------------------------------
    def access(self) -> Access:
        """Who was allowed from Telegram (the environment's lists are not included)."""
        return Access.from_setting(self.gallery.get_setting(ACCESS_SETTING))

    def allow(self, user_id: int, hr: bool = False, actor: str = "cli") -> Access:
        """Give `user_id` the role "hr" or "user" (replacing the other one), audited; returns
        the stored access afterwards. A group (negative id) can only be a user: AccessRefused."""
        user_id = int(user_id)
        if hr and user_id < 0:
            raise AccessRefused(f"{user_id} is a group chat; only a person can be HR")
        role = "hr" if hr else "user"

        def change(stored: Any) -> dict:
            # The access as stored at this instant, read in the store's transaction: another
            # bot allowing someone else at the same moment is kept, not overwritten.
            current = Access.from_setting(stored)
            if hr:
                return Access(current.users - {user_id}, current.hr | {user_id}).to_setting()
            return Access(current.users | {user_id}, current.hr - {user_id}).to_setting()

        saved = self.gallery.update_setting(ACCESS_SETTING, change, actor=actor,
                                            audit=lambda _update: ("access-allow", {"id": user_id, "role": role}))
        return Access.from_setting(saved)

    def revoke(self, user_id: int, actor: str = "cli", bootstrap: Access = Access()) -> Access:
        """Take back whatever was allowed to `user_id` from Telegram, audited; returns the stored
        access afterwards. Raises FixedAccess when the id is only allowed by the environment
        (`bootstrap`), NotListed when it is allowed nowhere (nothing is written then). An id in
        both loses the stored role and keeps the environment's (the caller says so)."""
        user_id = int(user_id)

        def change(stored: Any) -> dict:
            # Decided on the value read in the store's transaction, so a revoke racing another
            # bot's change neither undoes it nor refuses on a list that is already out of date.
            current = Access.from_setting(stored)
            if current.role(user_id) is None:
                fixed = bootstrap.role(user_id)
                if fixed:
                    raise FixedAccess(user_id, fixed)
                raise NotListed(user_id)
            return Access(current.users - {user_id}, current.hr - {user_id}).to_setting()

        def entry(update: SettingUpdate) -> tuple[str, dict]:
            return "access-revoke", {"id": user_id, "role": Access.from_setting(update.old).role(user_id)}

        saved = self.gallery.update_setting(ACCESS_SETTING, change, actor=actor, audit=entry)
        return Access.from_setting(saved)

    def _save_setting(self, key: str, value: Any, actor: str, action: str, details: dict) -> None:
        """Save a setting and its audit entry in one transaction (both or neither)."""
        self.gallery.set_setting(key, value, actor=actor, audit=lambda _saved: (action, details))

    # -- attendance --------------------------------------------------------------------------
    def record_sighting(self, camera: str, name: str) -> None:
        """Record that `camera` sees the enrolled person `name` now (the camera calls this at
        most once a minute per person). A gallery that cannot be written is logged, not raised:
        the camera goes on."""
        self._audit_read("sighting", f"camera:{camera}", camera=camera, name=name)

    def record_camera_status(self, camera: str, online: bool, seconds: float) -> None:
        """Audit that `camera` went offline (no frame for `seconds`) or came back (after
        `seconds` offline)."""
        self._audit_read("camera-online" if online else "camera-offline", f"camera:{camera}", camera=camera,
                         seconds=round(float(seconds)))

    def attendance(self, day: date, tz: tzinfo | None = None) -> list[AttendanceRow]:
        """Who the cameras saw on `day` (a day in `tz`, default the machine's zone): one row per
        person, all cameras together, earliest first. Reads the audit log: days older than what
        the store keeps (its newest entries) come back incomplete, with a warning logged."""
        tz = tz or local_zone()
        start = datetime.combine(day, dtime(0), tz)
        end = datetime.combine(day + timedelta(days=1), dtime(0), tz)
        entries = self.gallery.audit_log(AUDIT_SCAN)
        if entries and _parse_time(entries[0]["time"]) > start and len(entries) >= _audit_cap():
            log.warning("the audit log no longer holds the start of %s: its attendance may be incomplete", day)
        seen: dict[str, list] = {}
        for entry in entries:
            if entry.get("action") != "sighting" or not entry.get("name"):
                continue
            moment = _parse_time(entry["time"])
            if not start <= moment < end:
                continue
            local = moment.astimezone(tz)
            row = seen.setdefault(entry["name"], [set(), local, local])
            row[0].add(str(entry.get("camera", "")))
            row[1], row[2] = min(row[1], local), max(row[2], local)
        rows = [AttendanceRow(name, tuple(sorted(cams)), first, last) for name, (cams, first, last) in seen.items()]
        return sorted(rows, key=lambda r: (r.first, r.name))

    def summary_sent(self, day: date) -> bool:
        """Whether the daily summary of `day` went out already (by any bot on this gallery)."""
        return self.gallery.get_setting(SUMMARY_SETTING) == day.isoformat()

    def mark_summary_sent(self, day: date, people: int, actor: str) -> None:
        """Note (and audit) that the summary of `day` went out, so it is never sent twice."""
        self._save_setting(SUMMARY_SETTING, day.isoformat(), actor, "summary", {"date": day.isoformat(), "people": people})

    # -- faces waiting for a name ------------------------------------------------------------
    def add_pending_face(self, embedding: np.ndarray, camera: str, now: datetime | None = None,
                         pixels: float = float("nan"), visible: float = 1.0) -> str | None:
        """Keep an unknown face's embedding (never the photo) for 24 h, so that HR can name it
        from the camera's alert; returns its id (for the alert's button), or None for a face
        enrollment would refuse: under MIN_ENROLL_FACE px wide (`pixels`; nan: not measured)
        or cut by the frame's edge (`visible`, see service.makes_a_sample). Older ones are
        dropped, and the oldest beyond MAX_PENDING_FACES."""
        from facebot.service import makes_a_sample  # service.py imports this module

        if not makes_a_sample(pixels, visible):
            return None
        now = now or datetime.now(timezone.utc)
        face_id = secrets.token_hex(6)
        vector = base64.b64encode(np.asarray(embedding, dtype="<f4").tobytes()).decode("ascii")
        face = {"id": face_id, "embedding": vector, "camera": camera, "time": now.isoformat(timespec="seconds")}
        if np.isfinite(pixels):
            face["pixels"] = round(float(pixels), 1)
        # Appended to the list as stored at this instant (in the store's transaction): two
        # cameras announcing faces at once keep both.
        self.gallery.update_setting(PENDING_FACES_SETTING,
                                    lambda stored: (_fresh_faces(stored, now) + [face])[-MAX_PENDING_FACES:])
        return face_id

    def pending_face(self, face_id: str, now: datetime | None = None) -> PendingFace | None:
        """The pending face `face_id`, or None when unknown or older than 24 h."""
        for item in self._pending_faces(now or datetime.now(timezone.utc)):
            if item.get("id") == face_id:
                vector = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4").copy()
                return PendingFace(face_id, vector, str(item.get("camera", "")), _parse_time(item["time"]),
                                   _number(item.get("pixels")))
        return None

    def forget_pending_face(self, face_id: str) -> None:
        """Drop a pending face (it was named); nothing is written when it is not there."""
        def change(stored: Any) -> list:
            # Filtered from the list as stored at this instant: a face a camera adds meanwhile stays.
            faces = stored if isinstance(stored, list) else []
            kept = [f for f in faces if isinstance(f, dict) and f.get("id") != face_id]
            if len(kept) == len(faces):
                raise _NothingToForget(face_id)  # no write (and no new gallery version) for nothing
            return kept

        try:
            self.gallery.update_setting(PENDING_FACES_SETTING, change)
        except _NothingToForget:
            pass

    def _pending_faces(self, now: datetime) -> list[dict]:
        """The stored pending faces younger than PENDING_FACE_TTL at `now`."""
        return _fresh_faces(self.gallery.get_setting(PENDING_FACES_SETTING), now)

    def enroll_embedding(self, name: str, embedding: np.ndarray, actor: str = "cli", source: str = "",
                         force: bool = False, consent: str | None = None) -> tuple[str, int]:
        """Enroll a face already embedded (an unknown face of an earlier reply or alert, or a
        photo's face checked by `check_enrollment`) as `name`, with the `consent` note stored
        with the sample and in the audit entry; returns (the stored name, its sample count).
        Raises InvalidName, InvalidConsent, or ConflictingPerson when the face matches
        someone else (unless force), before writing."""
        from facebot.service import validate_consent  # service.py imports this module

        name = validate_name(name)
        consent = validate_consent(consent) if consent is not None else None
        embedding = np.asarray(embedding, dtype=np.float32)
        if not force and (clash := self.conflict(name, embedding)):
            raise clash
        shown, samples = self._save_enrollment(name, [embedding], actor, consent, force, source=source)
        log.info("enrolled a face from %s as %s (%d sample(s))", source or "an earlier reply", shown, samples)
        return shown, samples

    def report_wrong_name(self, name: str, distance: float, actor: str, where: str = "") -> None:
        """Record that someone says a face named `name` is not that person."""
        self.gallery.audit("report-wrong-name", actor, name=name, distance=round(float(distance), 4), where=where)


class _NothingToForget(Exception):
    """Raised inside `forget_pending_face`'s update to write nothing: the face is not there."""


def _fresh_faces(stored: Any, now: datetime) -> list[dict]:
    """The pending faces of the setting's value `stored` younger than PENDING_FACE_TTL at
    `now`; anything malformed (a hand-edited gallery) is left out."""
    fresh = []
    for item in stored if isinstance(stored, list) else []:
        try:
            if now - _parse_time(item["time"]) < PENDING_FACE_TTL:
                fresh.append(item)
        except (KeyError, TypeError, ValueError):
            continue
    return fresh


def _parse_time(text: str) -> datetime:
    """An ISO 8601 time as the stores write it; naive times are UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _number(value: Any) -> float:
    """A stored number as a float; nan for one missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _audit_cap() -> int:
    from facebot.storage.gallery import AUDIT_SAFETY_CAP

    return AUDIT_SAFETY_CAP


def attendance_table(rows: Iterable[AttendanceRow]) -> list[str]:
    """Plain lines "name  HH:MM–HH:MM  cameras" for a terminal or a chat."""
    rows = list(rows)
    width = max((len(r.name) for r in rows), default=0)
    return [f"{r.name:<{width}}  {r.first:%H:%M}–{r.last:%H:%M}  {', '.join(r.cameras)}" for r in rows]
