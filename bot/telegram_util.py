"""Small helpers of the Telegram bot: reading attachments and commands, drawing replies,
sharing the heavy work fairly (FairGate), rate limits, and the journal of updates not yet
handled (UpdateJournal). (Retries and token redaction,
shared with the camera: `facebot.telegram_retry`.)"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Hashable

import cv2
import numpy as np
from telegram import Message, Update

from facebot.recognition.draw import annotate
from facebot.recognition.images import IMAGE_SUFFIXES, Photo, encode_jpeg
from facebot.telegram_retry import RedactToken, token_kept_out  # noqa: F401  shared with the camera

log = logging.getLogger(__name__)

MAX_REPLY_SIDE = 2560  # annotated photos are scaled down to this before sending


def image_attachment(message: Message):
    """The largest size of a photo, or a document that claims to be an image; else None."""
    if message.photo:
        return message.photo[-1]
    doc = message.document
    if doc and ((doc.mime_type or "").startswith("image/") or (doc.file_name or "").lower().endswith(IMAGE_SUFFIXES)):
        return doc
    return None


def command_argument(message_text: str | None) -> str:
    """What follows the command word: '/enroll@facebot Ana María' -> 'Ana María'."""
    parts = (message_text or "").split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def annotated_jpeg(rgb: np.ndarray | Photo, labels: list) -> bytes:
    """Draw boxes and captions (draw.annotate: on a Photo, boxes in its own pixels), scale
    down to MAX_REPLY_SIDE, and encode as JPEG."""
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


class UpdateJournal:
    """The updates received from Telegram and not yet handled, kept in a JSON-lines file.

    PTB confirms updates to Telegram (through the next getUpdates offset) as soon as they are
    fetched, long before a queue of photos is answered; a bot killed in between (kill -9, a
    power cut, the OOM killer) would lose them all. So each update is written here *before*
    PTB can confirm it (`record`, called from the update queue), and crossed off once handled
    (`done`); at start-up the ones not crossed off are handled again. An update Telegram sends
    a second time (fetched but not confirmed before the kill) is recognised by its id and
    skipped. The file holds what Telegram sent (ids, texts, captions, file_ids), never photo
    bytes, is readable by its owner only, and is compacted as entries are crossed off.

    Lines: {"update": {...}} | {"done": id} | {"last": id} (the highest id ever recorded).
    Used from the event loop only; each line is flushed to the OS, which keeps it through a
    kill of the process (not through a power cut: no fsync, one per update would cost more).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.pending: dict[int, dict] = {}
        self.last_id = 0
        self._lines = 0
        self._read()
        self._compact()

    def record(self, update_id: int, update: dict) -> bool:
        """Write a fetched update down; False when it was recorded before (a redelivery)."""
        if update_id <= self.last_id:
            return False
        self.last_id = update_id
        self.pending[update_id] = update
        self._append({"update": update})
        return True

    def done(self, update_id: int) -> None:
        """Cross a handled update off."""
        if self.pending.pop(update_id, None) is not None:
            self._append({"done": update_id})
            if self._lines > 1000 and self._lines > 4 * len(self.pending):
                self._compact()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read(self) -> None:
        self._file = None
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut short by the kill
                continue
            if "update" in entry:
                update_id = int(entry["update"]["update_id"])
                self.pending[update_id] = entry["update"]
                self.last_id = max(self.last_id, update_id)
            elif "done" in entry:
                self.pending.pop(int(entry["done"]), None)
            elif "last" in entry:
                self.last_id = max(self.last_id, int(entry["last"]))
        if self.pending:
            log.warning("%d update(s) received before the last stop were not handled; handling them now", len(self.pending))

    def _compact(self) -> None:
        """Rewrite the file with only what is still pending (atomically: write, then rename)."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        entries = [{"last": self.last_id}] + [{"update": u} for _, u in sorted(self.pending.items())]
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        os.replace(temporary, self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        self._lines = len(entries)

    def _append(self, entry: dict) -> None:
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()
        self._lines += 1


class JournalQueue(asyncio.Queue):
    """PTB's update queue (ApplicationBuilder.update_queue), writing every update to the
    journal before queueing it: PTB's Updater puts a batch of updates here before it asks for
    the next batch, which is what confirms them to Telegram. Redeliveries are dropped."""

    def __init__(self, journal: UpdateJournal):
        super().__init__()
        self.journal = journal

    async def put(self, item) -> None:
        if isinstance(item, Update) and not self.journal.record(item.update_id, item.to_dict()):
            log.info("update %s was received before; skipped", item.update_id)
            return
        await super().put(item)

    async def replay(self, bot) -> int:
        """Queue the journal's unhandled updates again (without recording them twice)."""
        for data in list(self.journal.pending.values()):
            await super().put(Update.de_json(data, bot))
        return len(self.journal.pending)
