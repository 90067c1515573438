"""Small helpers of the Telegram bot: reading attachments and commands, drawing replies,
sharing the heavy work fairly (FairGate) and rate limits. (Retries and token redaction,
shared with the camera: `facebot.telegram_retry`.)"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from typing import AsyncIterator, Hashable

import cv2
import numpy as np
from telegram import Message

from facebot.recognition.draw import annotate
from facebot.recognition.images import encode_jpeg
from facebot.telegram_retry import RedactToken, token_kept_out  # noqa: F401  shared with the camera

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MAX_REPLY_SIDE = 2560  # annotated photos are scaled down to this before sending


def image_attachment(message: Message):
    """The largest size of a photo, or a document that claims to be an image; else None."""
    if message.photo:
        return message.photo[-1]
    doc = message.document
    if doc and ((doc.mime_type or "").startswith("image/") or (doc.file_name or "").lower().endswith(IMAGE_EXTENSIONS)):
        return doc
    return None


def command_argument(message_text: str | None) -> str:
    """What follows the command word: '/enroll@facebot Ana María' -> 'Ana María'."""
    parts = (message_text or "").split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def annotated_jpeg(rgb: np.ndarray, labels: list) -> bytes:
    """Draw boxes and captions, scale down to MAX_REPLY_SIDE, and encode as JPEG."""
    picture = annotate(rgb, labels)
    side = max(picture.shape[:2])
    if side > MAX_REPLY_SIDE:
        scale = MAX_REPLY_SIDE / side
        picture = cv2.resize(picture, (round(picture.shape[1] * scale), round(picture.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return encode_jpeg(picture)


class GateClosed(Exception):
    """The bot is stopping: work that was still waiting for its turn was not done."""


class FairGate:
    """At most `slots` pieces of heavy work (download, decode, recognise) at a time, shared
    fairly: waiting keys (users) take turns round robin, each key's work in arrival order.

    So memory is bounded by `slots` decoded photos however many arrive, and someone who sends
    1,000 photos waits for their own turns while another person's photo gets the next free
    slot. Use from one event loop::

        async with gate.turn(user_id):
            ...  # download, decode, recognise
    """

    def __init__(self, slots: int):
        self.slots = slots
        self.busy = 0
        self.closed = False
        self._waiting: OrderedDict[Hashable, deque[asyncio.Future]] = OrderedDict()

    def waiting(self, key: Hashable | None = None) -> int:
        """How many turns are waiting (for `key`, or in all)."""
        if key is not None:
            return len(self._waiting.get(key, ()))
        return sum(len(q) for q in self._waiting.values())

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for a slot (raise GateClosed if the gate closes first), hold it inside the block."""
        if self.closed:
            raise GateClosed
        if self.busy < self.slots and not self._waiting:
            self.busy += 1
        else:
            future = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, deque()).append(future)
            try:
                await future  # resolved by _release, which hands its slot over
            except BaseException:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._release()  # handed a slot while being cancelled: pass it on
                else:
                    self._forget(key, future)
                raise
        try:
            yield
        finally:
            self._release()

    def close(self) -> int:
        """Refuse new turns and make every waiting one raise GateClosed; how many were waiting."""
        self.closed = True
        count = 0
        for queue in self._waiting.values():
            for future in queue:
                if not future.done():
                    future.set_exception(GateClosed())
                    count += 1
        self._waiting.clear()
        return count

    def _release(self) -> None:
        """Hand the slot to the first waiting key (which then goes to the back), or free it."""
        while self._waiting:
            key, queue = next(iter(self._waiting.items()))
            future = queue.popleft()
            if queue:
                self._waiting.move_to_end(key)
            else:
                del self._waiting[key]
            if not future.done():
                future.set_result(None)
                return
        self.busy -= 1

    def _forget(self, key: Hashable, future: asyncio.Future) -> None:
        queue = self._waiting.get(key)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiting[key]


class RateLimit:
    """At most `count` events per `period_s` seconds for each key (a sliding window)."""

    def __init__(self, count: int, period_s: float, max_keys: int = 10_000):
        self.count, self.period_s, self.max_keys = count, period_s, max_keys
        self._events: dict[Hashable, deque[float]] = {}

    def allow(self, key: Hashable = None, now: float | None = None) -> bool:
        """Record an event for `key` and say whether it is within the limit (a refused one is
        not recorded)."""
        now = time.monotonic() if now is None else now
        if len(self._events) > self.max_keys:  # forget keys that have been quiet for a period
            self._events = {k: q for k, q in self._events.items() if q and now - q[-1] < self.period_s}
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.period_s:
            events.popleft()
        if len(events) >= self.count:
            return False
        events.append(now)
        return True


def labels_in_decoded_pixels(labels: list, scale: tuple[float, float]) -> list:
    """Labels (box, caption, known) whose boxes are in a photo's pixels, moved into the pixels
    of its reduced decoding (`Photo.scale`: photo pixels per decoded pixel)."""
    sx, sy = scale
    if (sx, sy) == (1.0, 1.0):
        return labels
    return [((round(x / sx), round(y / sy), round(w / sx), round(h / sy)), caption, known)
            for (x, y, w, h), caption, known in labels]
