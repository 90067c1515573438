"""Turn per-frame identifications into a few trustworthy alerts.

- Faces are followed from frame to frame by box overlap (a track per face); given a
  `same_face` test on embeddings, a different face in the same place (one stranger
  stepping in where another stood) starts a new track.
- A name is announced only when it wins K of the track's last M votes, and at most once
  per person per cooldown.
- An unknown face is announced once per track, not once per frame.
- Who was seen today, first and last time, is kept for the end-of-run report; the lasting
  record is the gallery's: `sightings(now)` names the people to record there, at most once
  per person every `sighting_every_s` (one camera, one Watcher).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import numpy as np


@dataclass
class Track:
    box: tuple[int, int, int, int]
    votes: deque
    last_frame: int
    announced_unknown: bool = False
    embedding: np.ndarray | None = None


@dataclass(frozen=True)
class Event:
    """Something worth an alert: a recognised person (name set) or an unknown face (name None)."""

    name: str | None
    box: tuple[int, int, int, int]
    distance: float
    when: datetime
    embedding: np.ndarray | None = None  # of an unknown face: HR may name it from the alert
    pixels: float = float("nan")  # the face's width as FaceNet saw it (too small to enroll: no button)
    visible: float = 1.0  # the share of its box inside the frame (too cut to enroll: no button)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


@dataclass
class Watcher:
    k: int = 3
    m: int = 5
    cooldown_s: float = 600.0
    unknown_alerts: bool = True
    max_missed: int = 8  # processed frames a track survives without its face
    min_iou: float = 0.3
    same_face: Callable[[np.ndarray, np.ndarray], bool] | None = None
    sighting_every_s: float = 60.0  # attendance: at most one gallery write per person per minute
    tracks: list[Track] = field(default_factory=list)
    last_announced: dict[str, datetime] = field(default_factory=dict)
    attendance: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    last_recorded: dict[str, datetime] = field(default_factory=dict)  # name -> when its last sighting was due
    confirmed: set[str] = field(default_factory=set)  # names confirmed (K of M votes) in the last frame
    frame: int = 0

    def update(self, identifications, now: datetime) -> list[Event]:
        """Feed one processed frame's identifications; return the alerts it triggers."""
        self.frame += 1
        self.confirmed = set()
        events = []
        free = list(self.tracks)
        for ident in sorted(identifications, key=lambda r: -r.box[2] * r.box[3]):
            track = max((t for t in free if self._continues(t, ident)), key=lambda t: iou(t.box, ident.box), default=None)
            if track is None or iou(track.box, ident.box) < self.min_iou:
                track = Track(ident.box, deque(maxlen=self.m), self.frame)
                self.tracks.append(track)
            else:
                free.remove(track)
            track.box, track.last_frame = ident.box, self.frame
            track.embedding = ident.embedding
            track.votes.append(ident.name if ident.known else None)
            if ident.known and track.votes.count(ident.name) >= self.k:  # confirmed, not a glitch
                first, _ = self.attendance.get(ident.name, (now, now))
                self.attendance[ident.name] = (first if first.date() == now.date() else now, now)
                self.confirmed.add(ident.name)
            event = self._decide(track, ident, now)
            if event:
                events.append(event)
        self.tracks = [t for t in self.tracks if self.frame - t.last_frame <= self.max_missed]
        return events

    def _continues(self, track: Track, ident) -> bool:
        """Whether `ident` may be the face `track` followed (always, without embeddings)."""
        if self.same_face is None or track.embedding is None or ident.embedding is None:
            return True
        return self.same_face(track.embedding, ident.embedding)

    def _decide(self, track: Track, ident, now: datetime) -> Event | None:
        votes = list(track.votes)
        if ident.known and votes.count(ident.name) >= self.k:
            last = self.last_announced.get(ident.name)
            if last is None or (now - last).total_seconds() >= self.cooldown_s:
                self.last_announced[ident.name] = now
                return Event(ident.name, ident.box, ident.distance, now)
        if not ident.known and self.unknown_alerts and not track.announced_unknown and votes.count(None) >= self.k:
            track.announced_unknown = True
            return Event(None, ident.box, ident.distance, now, ident.embedding, ident.pixels, ident.visible)
        return None

    def sightings(self, now: datetime) -> list[str]:
        """The people confirmed in the last processed frame whose sighting is due for the
        gallery: never recorded, or last recorded `sighting_every_s` or more before `now` (or
        after it: the clock was set back). Marks them recorded at `now`."""
        due = []
        for name in sorted(self.confirmed):
            last = self.last_recorded.get(name)
            elapsed = None if last is None else (now - last).total_seconds()
            if elapsed is None or elapsed >= self.sighting_every_s or elapsed < 0:
                self.last_recorded[name] = now
                due.append(name)
        return due

    def seen_today(self, today) -> list[tuple[str, datetime, datetime]]:
        """(name, first, last) for everyone seen on date `today`, earliest first."""
        rows = [(n, f, l) for n, (f, l) in self.attendance.items() if l.date() == today]
        return sorted(rows, key=lambda r: r[1])

    def forget_before(self, today) -> None:
        """Drop attendance from earlier days (after their summary went out)."""
        self.attendance = {n: (f, l) for n, (f, l) in self.attendance.items() if l.date() >= today}
