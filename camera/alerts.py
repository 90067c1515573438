"""Deliver camera alerts to a Telegram chat from a background thread, without losing them.

Alerts wait in a bounded queue (the oldest is dropped, with a warning, only if Telegram
has been unreachable long enough to fill it). Flood limits (429 RetryAfter), timeouts and
network errors are retried with backoff; a request Telegram rejects outright (bad chat id,
bot removed from the channel) is logged and skipped.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    text: str
    photo: bytes | None = None  # JPEG snapshot


class AlertSender:
    """Queue alerts with `send()`; a thread posts them in order with PTB's Bot."""

    def __init__(self, token: str, api_url: str, chat_id: int, maxsize: int = 200):
        self.token, self.api_url, self.chat_id = token, api_url.rstrip("/"), chat_id
        self.sent = 0
        self.dropped = 0
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=maxsize)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._deliver_all()), name="alerts", daemon=True)

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

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (up to `timeout` seconds), then stop."""
        self._closing.set()
        self._thread.join(timeout=timeout)
        if self._thread.is_alive() or not self._queue.empty():
            log.error("%d alert(s) could not be delivered before shutdown", self._queue.qsize())

    async def _deliver_all(self) -> None:
        from telegram import Bot

        bot = Bot(self.token, base_url=f"{self.api_url}/bot", base_file_url=f"{self.api_url}/file/bot")
        async with bot:
            while True:
                try:
                    alert = self._queue.get_nowait()
                except queue.Empty:
                    if self._closing.is_set():
                        return
                    await asyncio.sleep(0.05)
                    continue
                await self._deliver(bot, alert)

    async def _deliver(self, bot, alert: Alert) -> None:
        from telegram.error import TelegramError

        from facebot.telegram_retry import ALERTS

        async def post():
            if alert.photo is not None:
                return await bot.send_photo(self.chat_id, photo=alert.photo, caption=alert.text)
            return await bot.send_message(self.chat_id, alert.text)

        try:
            await ALERTS.call(post)
            self.sent += 1
        except TelegramError as exc:  # rejected (bad chat id, bot removed from the channel): retrying will not help
            log.error("Telegram refused an alert: %s", exc)
