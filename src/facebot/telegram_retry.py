"""How every Telegram call is retried, and how the token is kept out of every output, for
the bot and the camera alike.

Flood control (429, `RetryAfter`) waits what Telegram asks, capped; connection failures,
dropped connections and 5xx (`NetworkError`) back off exponentially; a request Telegram
rejects (`BadRequest`, `Forbidden`, any other `TelegramError`) is never retried: sending it
again cannot help. A policy differs only in how long it keeps trying: the bot answers a
person who is waiting, the camera's alerts have a queue and can wait much longer.

Timeouts are split by what they say about the request (see `may_have_arrived`): a send
(sendMessage, sendPhoto, an edit, an answer) whose answer did not come in time is *not*
sent again, because Telegram may well have carried it out: a duplicate "Welcome Ana" is
worse than a lost one, and a person can ask again. Reads (getMe, getFile, downloads) are
harmless to repeat and are retried after any timeout.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Awaitable, Callable, Iterator, TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait Telegram asked for, in seconds (PTB gives an int or a timedelta)."""
    with warnings.catch_warnings():  # PTB 22 warns that the type of retry_after will change
        warnings.simplefilter("ignore")
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def may_have_arrived(exc: NetworkError) -> bool:
    """Whether Telegram may have received and carried out the request that failed with `exc`.

    Only a timeout while waiting for the answer (httpx.ReadTimeout) leaves that open: the
    request went out, and Telegram may be slow rather than down. No connection (ConnectError,
    ConnectTimeout), no free connection in the pool (PoolTimeout: never sent) or an upload that
    did not finish (WriteTimeout: Telegram acts only on a complete request) cannot have
    arrived; an error status came from Telegram saying it did not carry the request out. A
    connection dropped without an answer is ambiguous too, but in practice it is a proxy or a
    stale keep-alive connection failing before the request is handled, so it is retried: during
    an outage that is what brings the answer through.
    """
    if not isinstance(exc, TimedOut):
        return False
    import httpx

    return not isinstance(exc.__cause__, (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout))


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: `attempts` calls at most and `total_s` seconds from the first
    call at most (None: no limit on that count), waiting `first_backoff_s` after the first
    failure, doubling up to `max_backoff_s`; a 429 waits what Telegram asks, up to
    `max_flood_wait_s`."""

    attempts: int | None = None
    total_s: float | None = 60.0
    first_backoff_s: float = 0.5
    max_backoff_s: float = 5.0
    max_flood_wait_s: float = 60.0

    async def call(self, request: Callable[[], Awaitable[T]], idempotent: bool = False) -> T:
        """Await `request()` until it succeeds; re-raise what cannot or may no longer be retried.

        `idempotent`: the request only reads (getMe, getFile, a download), so repeating it is
        harmless; a send is not."""
        backoff, attempt, started = self.first_backoff_s, 0, time.monotonic()
        while True:
            attempt += 1
            try:
                return await request()
            except RetryAfter as exc:
                wait = min(retry_after_seconds(exc), self.max_flood_wait_s)
                if self._give_up(attempt, started, wait):
                    raise
                log.warning("Telegram flood control: retrying in %.0f s", wait)
                await asyncio.sleep(wait)
            except NetworkError as exc:  # BadRequest subclasses NetworkError: a client error, never retried
                if isinstance(exc, BadRequest) or self._give_up(attempt, started, backoff):
                    raise
                if not idempotent and may_have_arrived(exc):
                    log.warning("Telegram did not answer a send in time; it may have arrived, so it is not sent again")
                    raise
                log.warning("Telegram request failed (%s); retrying in %.1f s", short(exc), backoff)
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)

    def _give_up(self, attempt: int, started: float, wait: float) -> bool:
        """Whether another try, `wait` seconds from now, is beyond the policy's limits."""
        if self.attempts is not None and attempt >= self.attempts:
            return True
        return self.total_s is not None and time.monotonic() + wait - started > self.total_s


def short(exc: BaseException, limit: int = 160) -> str:
    """The first line of an error, shortened (a proxy's HTML error page ends up in the message)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# The bot's replies, downloads and start-up: a person is waiting for the answer, but a blip
# of Telegram (20 s of 500s, 429s or dropped connections) must not lose it: keep trying for a
# minute, at most 5 s apart, so the answer goes out within ~5 s of Telegram's recovery.
REPLIES = RetryPolicy(attempts=None, total_s=60.0, first_backoff_s=0.5, max_backoff_s=5.0)
# The camera's alerts: queued, so they wait out any outage (close() bounds the wait at shutdown),
# tried at most 10 s apart so they go out within ~10 s of Telegram's recovery.
ALERTS = RetryPolicy(attempts=None, total_s=None, first_backoff_s=1.0, max_backoff_s=10.0)


async def with_retry(request: Callable[[], Awaitable[T]]) -> T:
    """Await `request()` under the bot's reply policy."""
    return await REPLIES.call(request)


# -- keeping the token out of every output ----------------------------------------------------
# The token is in every request URL, and PTB puts it into InvalidToken's message ("The token
# `...` was rejected"), which then travels in tracebacks, in `str(exc)` and in thread crash
# reports. Rewriting log messages is not enough, so `token_kept_out` covers every way out:
# log records (message, arguments, traceback, stack), everything written to stdout/stderr,
# and the text of an exception that leaves the block.
REDACTED = "<token>"


def token_forms(token: str) -> list[str]:
    """The strings to hide: the secret part after the bot id (which also hides the whole
    token, plain or URL-encoded), or the whole token when it has no such part."""
    secret = token.split(":", 1)[1] if ":" in token else token
    return [form for form in {secret, token} if len(form) >= 4]


def redact(text: str, token: str) -> str:
    """`text` with every form of `token` replaced by <token>."""
    for form in token_forms(token):
        text = text.replace(form, REDACTED)
    return text


class RedactToken(logging.Filter):
    """A handler filter that hides the bot token in a record's message, its arguments, its
    traceback and its stack (tracebacks are formatted here, redacted, and kept as text)."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        redacted = redact(message, self.token)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.token)
            record.exc_info = None  # handlers print exc_text instead of formatting the exception again
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self.token)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.token)
        return True


class RedactingStream:
    """A text stream (sys.stdout, sys.stderr) that hides the token in what is written to it."""

    def __init__(self, stream, token: str):
        self._stream, self._token = stream, token

    def write(self, text: str) -> int:
        self._stream.write(redact(text, self._token) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def scrub_exception(exc: BaseException, token: str) -> None:
    """Remove the token from the text of `exc` and of every exception chained to it."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(redact(a, token) if isinstance(a, str) else a for a in current.args)
        message = getattr(current, "message", None)
        if isinstance(message, str):
            try:
                current.message = redact(message, token)
            except AttributeError:  # a read-only message
                pass
        stack += [current.__cause__, current.__context__, *getattr(current, "exceptions", ())]


@contextmanager
def token_kept_out(token: str) -> Iterator[None]:
    """While inside, the token reaches no log line, nothing printed to stdout or stderr (thread
    crash reports and warnings included), and no exception leaving the block.

    Installs RedactToken on the root logger's handlers and wraps sys.stdout/sys.stderr; both
    are undone on the way out.
    """
    if not token:
        yield
        return
    log_filter = RedactToken(token)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(log_filter)
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    wrapped = {name: RedactingStream(stream, token) for name, stream in streams.items()}
    for name, stream in wrapped.items():
        setattr(sys, name, stream)
    try:
        yield
    except BaseException as exc:
        scrub_exception(exc, token)
        raise
    finally:
        for name, stream in wrapped.items():
            if getattr(sys, name) is stream:  # not replaced since (e.g. by a test's capture)
                setattr(sys, name, streams[name])
        for handler in handlers:
            handler.removeFilter(log_filter)
