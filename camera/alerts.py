"""Deliver camera alerts to a Telegram chat from a background thread, without losing them.

Alerts wait in a bounded queue (the oldest is dropped, with a warning, only if Telegram
has been unreachable long enough to fill it). The thread first checks the token (getMe),
retrying while Telegram is unreachable or failing; a token Telegram rejects stops it and is
reported through `fatal`, which the camera loop reads. Sending follows the retry policy of
`facebot.telegram_retry.ALERTS`. When Telegram refuses the chat itself (403: the bot was
removed from the channel or blocked; 400 "chat not found"), the alerts stay queued and the
same alert is tried again after a long backoff, with an error in the log each time: someone
can add the bot back. Any other alert Telegram rejects is logged and skipped. The thread
never dies of an exception: whatever goes wrong is logged and counted.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Awaitable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
REJECTED_TOKEN = "Telegram rejected TELEGRAM_BOT_TOKEN (check it with @BotFather)"


@dataclass(frozen=True)
class Alert:
    text: str
    photo: bytes | None = None  # JPEG snapshot
    buttons: tuple[tuple[str, str], ...] = ()  # (label, callback data) of inline buttons the bot answers


class _Closed(Exception):
    """close() ran out of time while a Telegram call was still trying."""


class AlertSender:
    """Queue alerts with `send()`; a thread posts them in order with PTB's Bot.

    Counters: `sent` (Telegram confirmed), `dropped` (pushed out of a full queue), `failed`
    (refused by Telegram), `undelivered` (still queued or in flight when close() gave up).
    `fatal` is a one-line reason once the thread has stopped for good (a rejected token).
    """

    def __init__(self, token: str, api_url: str, chat_id: int, maxsize: int = 200, policy=None,
                 read_timeout: float = 30.0, forbidden_backoff: tuple[float, float] = (60.0, 900.0)):
        from facebot.telegram_retry import ALERTS

        self.token, self.api_url, self.chat_id = token, api_url.rstrip("/"), chat_id
        self.policy = policy or ALERTS
        self.read_timeout = read_timeout  # how long Telegram may take to answer one call
        self.forbidden_backoff = forbidden_backoff  # (first, longest) wait while the chat refuses the bot
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self.undelivered = 0
        self.fatal: str | None = None
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=maxsize)
        self._current: Alert | None = None  # taken from the queue, not yet confirmed
        self._closing = threading.Event()
        self._deadline = float("inf")  # set by close(): when to stop trying
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)

    def start(self) -> "AlertSender":
        self._thread.start()
        return self

    def send(self, alert: Alert) -> None:
        """Queue an alert; never blocks the camera loop."""
        while True:
            try:
                self._queue.put_nowait(alert)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                    log.warning("alert queue full: dropped the oldest alert")
                except queue.Empty:
                    pass

    def pending(self) -> int:
        """Alerts not delivered yet: queued, plus the one being sent."""
        return self._queue.qsize() + (self._current is not None)

    def close(self, timeout: float = 30.0) -> int:
        """Deliver what is queued within `timeout` seconds, then stop; return (and log) how many
        alerts were not delivered."""
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._thread.join(timeout=timeout + 5)  # the thread gives up by itself at the deadline
        self.undelivered = self.pending()
        if self.undelivered:
            log.error("%d alert(s) not delivered before shutdown", self.undelivered)
        return self.undelivered

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._deliver_all())
        except Exception:  # never a silent death: say so, and let the camera loop know
            log.exception("the alert thread failed")
            self.fatal = self.fatal or "the alert thread failed (see the log)"

    async def _until_closed(self, work: Awaitable[T]) -> T:
        """Await `work`, but give up (raise _Closed) once close() was called and either its
        deadline has passed or nothing is left to deliver (e.g. still checking the token)."""
        task = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.1)
            if done:
                return task.result()
            if self._closing.is_set() and (time.monotonic() >= self._deadline or not self.pending()):
                task.cancel()
                raise _Closed

    async def _deliver_all(self) -> None:
        from telegram import Bot
        from telegram.error import InvalidToken
        from telegram.request import HTTPXRequest

        request = HTTPXRequest(connect_timeout=10, read_timeout=self.read_timeout, write_timeout=60, media_write_timeout=120)
        bot = Bot(self.token, base_url=f"{self.api_url}/bot", base_file_url=f"{self.api_url}/file/bot", request=request)
        try:
            # getMe checks the token before the first alert; while Telegram is down it is
            # retried like any alert (it used to kill the thread: every later alert was lost).
            await self._until_closed(self.policy.call(bot.initialize, idempotent=True))
            while True:
                try:
                    self._current = self._queue.get_nowait()
                except queue.Empty:
                    if self._closing.is_set():
                        return
                    await asyncio.sleep(0.05)
                    continue
                await self._until_closed(self._deliver(bot, self._current))
                self._current = None
        except InvalidToken:  # its message holds the token: never log it
            self.fatal = REJECTED_TOKEN
            log.error("%s; alerts stopped", REJECTED_TOKEN)
        except _Closed:
            pass
        finally:
            try:
                await bot.shutdown()
            except Exception:  # shutting down a half-initialised client: nothing left to save
                log.debug("closing the Telegram client failed", exc_info=True)

    async def _deliver(self, bot, alert: Alert) -> None:
        """Send one alert under the policy; count it as sent or failed. While the chat refuses
        the bot, wait and try the same alert again. InvalidToken propagates."""
        from telegram.error import InvalidToken, TelegramError, TimedOut

        from facebot.telegram_retry import short

        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        markup = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)] for label, data in alert.buttons]) \
            if alert.buttons else None

        async def post():
            if alert.photo is not None:
                return await bot.send_photo(self.chat_id, photo=alert.photo, caption=alert.text, reply_markup=markup)
            return await bot.send_message(self.chat_id, alert.text, reply_markup=markup)

        backoff = self.forbidden_backoff[0]
        while True:
            try:
                await self.policy.call(post)
                self.sent += 1
                return
            except InvalidToken:
                raise
            except TimedOut:  # the policy gave up on a send that may have arrived: never post it twice
                self.failed += 1
                log.warning("Telegram did not confirm an alert in time; it may have been posted, so it is not sent again")
                return
            except TelegramError as exc:
                if not chat_refused(exc):  # this alert is at fault (e.g. malformed): skip it
                    self.failed += 1
                    log.error("Telegram refused an alert: %s", short(exc))
                    return
                log.error("Telegram refuses alerts to chat %s (%s): was the bot removed from the channel or blocked? "
                          "%d alert(s) kept queued; trying again in %.0f s", self.chat_id, short(exc), self.pending(), backoff)
                await asyncio.sleep(backoff)
                backoff = min(self.forbidden_backoff[1], backoff * 2)


def chat_refused(exc: Exception) -> bool:
    """Whether Telegram refused the alert chat itself (not this alert): 403 Forbidden (the bot
    was removed from the channel, or blocked), or 400 "chat not found"."""
    from telegram.error import BadRequest, Forbidden

    return isinstance(exc, Forbidden) or (isinstance(exc, BadRequest) and "chat not found" in str(exc).lower())
