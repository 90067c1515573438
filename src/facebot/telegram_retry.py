"""How every Telegram call is retried, for the bot and the camera alike.

Flood control (429, `RetryAfter`) waits what Telegram asks, capped; timeouts, dropped
connections and 5xx (`NetworkError`) back off exponentially; a request Telegram rejects
(`BadRequest`, `Forbidden`, any other `TelegramError`) is never retried: sending it again
cannot help. A policy differs only in how long it keeps trying: the bot answers a person
who is waiting, the camera's alerts have a queue and can wait much longer.
"""
from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Awaitable, Callable, TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait Telegram asked for, in seconds (PTB gives an int or a timedelta)."""
    with warnings.catch_warnings():  # PTB 22 warns that the type of retry_after will change
        warnings.simplefilter("ignore")
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` calls at most (None: until it succeeds or Telegram rejects it)."""

    attempts: int | None = 3
    first_backoff_s: float = 0.5
    max_backoff_s: float = 60.0
    max_flood_wait_s: float = 60.0

    async def call(self, request: Callable[[], Awaitable[T]], idempotent: bool = False) -> T:
        """Await `request()` until it succeeds; re-raise what cannot or may no longer be retried.

        `idempotent`: the request only reads (getMe, getFile, a download), so repeating it is
        harmless; a send is not."""
        backoff, attempt = self.first_backoff_s, 0
        while True:
            attempt += 1
            last = self.attempts is not None and attempt >= self.attempts
            try:
                return await request()
            except RetryAfter as exc:
                if last:
                    raise
                wait = min(retry_after_seconds(exc), self.max_flood_wait_s)
                log.warning("Telegram flood control: retrying in %.0f s", wait)
                await asyncio.sleep(wait)
            except NetworkError as exc:  # BadRequest subclasses NetworkError: a client error, never retried
                if last or isinstance(exc, BadRequest):
                    raise
                log.warning("Telegram request failed (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)


# The bot's replies and downloads: a person is waiting for the answer.
REPLIES = RetryPolicy(attempts=3, first_backoff_s=0.5)
# The camera's alerts: queued, so they can wait out an outage.
ALERTS = RetryPolicy(attempts=None, first_backoff_s=1.0, max_backoff_s=60.0)


async def with_retry(request: Callable[[], Awaitable[T]]) -> T:
    """Await `request()` under the bot's reply policy."""
    return await REPLIES.call(request)
