"""Frames from a camera index, a video file or a stream URL, always the newest one.

A reader thread pulls frames as fast as the source gives them and keeps only the last,
so a slow recogniser never builds a backlog. A live source that stops delivering is
reopened with exponential backoff; a video file is played at its own frame rate (as a
camera would deliver it) and ends the stream when it runs out.

A file is never waited for: `check_source` refuses a missing or unreadable file, or one
OpenCV cannot decode, before anything starts (SourceError, a message for a person); a file
that breaks off before its announced length ends the stream with `FrameSource.warning`.

A live source that delivers nothing for `offline_after_s` is reported once through
`on_status(False, seconds)`, and its first frame afterwards through `on_status(True, seconds
offline)`: one pair per outage, however many reconnects it takes. A password in a stream URL
(rtsp://user:pass@host/...) never reaches a log line: `redact_url` hides it.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

log = logging.getLogger(__name__)


def parse_source(source: str) -> int | str:
    """'0' -> camera index 0; anything else (a file path, rtsp://, http://) stays a string."""
    return int(source) if source.strip().isdigit() else source


_AUTHORITY = re.compile(r"^([A-Za-z][\w+.-]*://)([^/?#]*)(.*)$", re.DOTALL)
_SECRET_QUERY = re.compile(r"([?&;](?:password|passwd|pass|pwd|token|key|secret)=)[^&;#]*", re.IGNORECASE)


def redact_url(source: int | str) -> str:
    """The source as text, fit for logs and alerts: a URL's password (rtsp://user:pass@host/...)
    becomes *** (rtsp://user:***@host/...), and so do password= or token= parameters. A camera
    index or a file path comes back unchanged."""
    text = str(source)
    match = _AUTHORITY.match(text)
    if not match:
        return text
    scheme, authority, rest = match.groups()
    userinfo, at, host = authority.rpartition("@")  # a raw '@' in a password: the last one ends it
    if at:
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:***@{host}" if colon else f"{user}@{host}"
    return scheme + authority + _SECRET_QUERY.sub(r"\1***", rest)


def is_file(source: int | str) -> bool:
    return isinstance(source, str) and "://" not in source and Path(source).is_file()


class SourceError(RuntimeError):
    """A source that can never deliver a frame; the message says which and why."""


def check_source(source: int | str, opener: Callable[[int | str], "cv2.VideoCapture"] = cv2.VideoCapture) -> None:
    """Raise SourceError when `source` is a local path that does not exist, a file that cannot
    be read, or a file with no frame OpenCV can decode. Camera indexes, URLs and devices (such
    as /dev/video0) pass: those may come and go, and FrameSource reconnects to them."""
    if not isinstance(source, str) or "://" in source:
        return
    path = Path(source)
    if not path.exists():
        raise SourceError(f"{source}: no such file")
    if not path.is_file():
        return  # a device
    if not os.access(path, os.R_OK):
        raise SourceError(f"{source}: cannot read the file (permission denied)")
    cap = opener(source)
    try:
        if not cap.isOpened():
            raise SourceError(f"{source}: not a video OpenCV can read (corrupt, or an unsupported format)")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise SourceError(f"{source}: not a video OpenCV can read (no frame could be decoded)")
    finally:
        cap.release()


class FrameSource:
    """Newest-frame reader with reconnects. Use `latest()` from the processing loop."""

    def __init__(self, source: int | str, opener: Callable[[int | str], "cv2.VideoCapture"] = cv2.VideoCapture,
                 max_backoff: float = 30.0, realtime: bool = True,
                 on_status: Callable[[bool, float], None] | None = None, offline_after_s: float = 10.0):
        self.source = source
        self.label = redact_url(source)  # what logs say: never the password
        self.on_status = on_status  # (online, seconds): offline after `seconds` without a frame; back after that long
        self.offline_after_s = offline_after_s
        self.offline = False  # an outage was reported and has not ended yet
        self._last_frame_at = time.monotonic()  # the start counts: a camera that never opens goes offline too
        self.opener = opener
        self.max_backoff = max_backoff
        self.file = is_file(source)
        self.realtime = realtime
        self.reconnects = 0
        self.frames_read = 0
        self.error: str | None = None  # a file that could not be opened: the stream never started
        self.warning: str | None = None  # a file that ended before its announced length
        self._frame: np.ndarray | None = None
        self._index = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    def start(self) -> "FrameSource":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def latest(self, after: int, timeout: float = 1.0) -> tuple[int, np.ndarray | None]:
        """Wait for a frame newer than `after`; return (its index, RGB frame) or (after, None)."""
        with self._cond:
            self._cond.wait_for(lambda: self._index > after or self.finished.is_set(), timeout=timeout)
            if self._index > after:
                return self._index, self._frame
            return after, None

    def _publish(self, bgr: np.ndarray) -> None:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        with self._cond:
            self._frame, self._index = rgb, self._index + 1
            self._cond.notify_all()
        self.frames_read += 1
        now = time.monotonic()
        if self.offline:
            self.offline = False
            log.warning("camera %s is back online after %.0f s", self.label, now - self._last_frame_at)
            self._report(True, now - self._last_frame_at)
        self._last_frame_at = now

    def _check_outage(self) -> None:
        """After a failure: report the outage once it has lasted `offline_after_s` (once)."""
        silent = time.monotonic() - self._last_frame_at
        if not self.offline and not self.file and silent >= self.offline_after_s:
            self.offline = True
            log.warning("camera %s is offline (no frame for %.0f s)", self.label, silent)
            self._report(False, silent)

    def _report(self, online: bool, seconds: float) -> None:
        if self.on_status is None:
            return
        try:
            self.on_status(online, seconds)
        except Exception:  # the reader thread must live on: reconnecting matters more than telling
            log.exception("reporting the camera's status failed")

    def _run(self) -> None:
        backoff = 0.5
        try:
            while not self._stop.is_set():
                cap = self.opener(self.source)
                if not cap.isOpened():
                    if self.file:
                        self.error = f"{self.source}: cannot open the video file"
                        log.error("%s", self.error)
                        return
                    log.warning("camera %s unavailable; retrying in %.1f s", self.label, backoff)
                    self._check_outage()
                    self._stop.wait(backoff)
                    backoff = min(self.max_backoff, backoff * 2)
                    self.reconnects += 1
                    continue
                read_before = self.frames_read
                fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
                period = 1.0 / fps if self.file and self.realtime and 1 <= fps <= 240 else 0.0
                announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self.file else 0
                if self._read_until_failure(cap, period):
                    cap.release()
                    self._check_length(announced)
                    return
                cap.release()
                log.warning("camera %s stopped delivering frames; reconnecting", self.label)
                self.reconnects += 1
                self._check_outage()
                if self.frames_read > read_before:
                    backoff = 0.5
                else:  # it opened but gave nothing: wait, or a dead stream would be reopened in a tight loop
                    self._stop.wait(backoff)
                    backoff = min(self.max_backoff, backoff * 2)
        finally:
            self.finished.set()
            with self._cond:
                self._cond.notify_all()

    def _check_length(self, announced: int) -> None:
        """Warn when a file ended well before the frame count its header announces (a copy
        that broke off, a corrupt stretch): otherwise the camera just stops early, silently."""
        if self._stop.is_set() or announced <= 0:
            return
        if self.frames_read < announced - max(2, announced // 50):  # counts in headers are approximate
            self.warning = (f"{self.source}: the video ended after {self.frames_read} of {announced} frames; "
                            "the file may be truncated or corrupt")
            log.warning("%s", self.warning)

    def _read_until_failure(self, cap, period: float) -> bool:
        """Read frames until the source fails. True when the stream is over for good."""
        next_at = time.monotonic()
        while not self._stop.is_set():
            ok, bgr = cap.read()
            if not ok or bgr is None:
                return self.file  # end of a file is the end; a live source gets reopened
            self._publish(bgr)
            if period:
                next_at += period
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        cap.release()
        return True
