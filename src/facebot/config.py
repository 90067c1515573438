"""Settings from environment variables and an optional `.env` file in the working directory.

Environment variables win over `.env`. A missing or malformed value raises ConfigError
with one line a person can act on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from pathlib import Path


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def read_dotenv(path: str | Path = ".env") -> dict[str, str]:
    """The KEY=VALUE pairs of a `.env` file (python-dotenv's syntax: comments, `export`,
    quotes, and `# comments` after a value), or {} when there is no such file."""
    from dotenv import dotenv_values

    path = Path(path)
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def load_dotenv_into_environment(path: str | Path = ".env") -> None:
    """Copy `.env` into os.environ where a variable is not already set, so that settings
    read deeper down (FACEBOT_CACHE_DIR, FACEBOT_EMBEDDER) follow `.env` too; the
    environment still wins."""
    for key, value in read_dotenv(path).items():
        os.environ.setdefault(key, value)


def setting(name: str, default: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """Look a setting up in the environment, then `.env`, then fall back to `default`."""
    env = os.environ if env is None else env
    if name in env:
        return env[name]
    return read_dotenv().get(name, default)


def data_dir_default() -> str:
    return setting("FACEBOT_DATA_DIR", "data") or "data"


def parse_ids(name: str, raw: str | None) -> frozenset[int]:
    """Comma-separated Telegram ids (user ids positive, group/channel ids negative)."""
    ids = set()
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise ConfigError(f"{name}: {part!r} is not a numeric Telegram id") from None
    return frozenset(ids)


@dataclass(frozen=True)
class BotConfig:
    """What the Telegram bot and the camera process need to run."""

    token: str
    api_url: str = "https://api.telegram.org"
    data_dir: str = "data"
    hr_ids: frozenset[int] = field(default_factory=frozenset)
    user_ids: frozenset[int] = field(default_factory=frozenset)
    alert_chat_id: int | None = None
    lang: str = "en"
    summary_at: time | None = None  # when the bot posts the day's attendance (FACEBOT_SUMMARY_AT), in `tz`
    tz: tzinfo | None = None  # FACEBOT_TZ; None: the machine's zone
    alert_snapshots: str = "all"  # FACEBOT_ALERT_SNAPSHOTS: which camera alerts carry a photo (ALERT_SNAPSHOTS)
    telegram_retry_s: float | None = None  # FACEBOT_TELEGRAM_RETRY_S; None: the bot's default (60 s)


def parse_zone(raw: str | None) -> tzinfo | None:
    """FACEBOT_TZ, an IANA zone name such as Europe/Madrid; None when empty (the machine's)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"FACEBOT_TZ: {raw!r} is not a time zone name (e.g. Europe/Madrid, America/Bogota, UTC)") from None


def parse_summary_at(raw: str | None) -> time | None:
    """FACEBOT_SUMMARY_AT, HH:MM on a 24-hour clock; None when empty (no daily summary)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%H:%M").time()
    except ValueError:
        raise ConfigError(f"FACEBOT_SUMMARY_AT: {raw!r} is not a time like 18:00") from None


# FACEBOT_ALERT_SNAPSHOTS: what a camera alert shows of the faces in view.
ALERT_SNAPSHOTS = {
    "all": "the annotated frame with every alert",
    "known": "a photo only when every face in it is named, else text only",
    "blur": "the frame with every unknown face blurred beyond recognition",
    "none": "text alerts only, never a photo",
}


def parse_alert_snapshots(raw: str | None) -> str:
    """FACEBOT_ALERT_SNAPSHOTS (any case, spaces around ignored) -> one of ALERT_SNAPSHOTS;
    "all" when empty."""
    value = (raw or "").strip().lower() or "all"
    if value not in ALERT_SNAPSHOTS:
        meanings = "; ".join(f"{name}: {meaning}" for name, meaning in ALERT_SNAPSHOTS.items())
        raise ConfigError(f"FACEBOT_ALERT_SNAPSHOTS: {raw.strip()!r} is not one of {', '.join(ALERT_SNAPSHOTS)} ({meanings})")
    return value


def parse_retry_seconds(raw: str | None) -> float | None:
    """FACEBOT_TELEGRAM_RETRY_S: how many seconds a reply, a download or the start-up keeps
    retrying through a Telegram outage, above 0 and below a day; None when empty."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise ConfigError(f"FACEBOT_TELEGRAM_RETRY_S: {raw!r} is not a number of seconds")
    return seconds


def load_bot_config(env: dict[str, str] | None = None, require_token: bool = True) -> BotConfig:
    """Read the bot's settings; raise ConfigError naming the variable that is wrong."""
    token = (setting("TELEGRAM_BOT_TOKEN", env=env) or "").strip()
    if require_token and not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set (create a bot with @BotFather and export its token)")
    if token and (":" not in token or any(c.isspace() for c in token)):
        raise ConfigError("TELEGRAM_BOT_TOKEN does not look like a bot token (expected 123456:ABC...)")
    api_url = (setting("TELEGRAM_API_URL", "https://api.telegram.org", env=env) or "").rstrip("/")
    if not api_url.startswith(("http://", "https://")):
        raise ConfigError("TELEGRAM_API_URL must start with http:// or https://")
    alert_raw = (setting("FACEBOT_ALERT_CHAT_ID", env=env) or "").strip()
    try:
        alert = int(alert_raw) if alert_raw else None
    except ValueError:
        raise ConfigError(f"FACEBOT_ALERT_CHAT_ID: {alert_raw!r} is not a numeric chat id") from None
    lang = (setting("FACEBOT_LANG", "en", env=env) or "en").strip().lower()
    if lang not in ("en", "es"):
        raise ConfigError("FACEBOT_LANG must be 'en' or 'es'")
    summary_at = parse_summary_at(setting("FACEBOT_SUMMARY_AT", env=env))
    if summary_at is not None and alert is None:
        raise ConfigError("FACEBOT_SUMMARY_AT is set but FACEBOT_ALERT_CHAT_ID is not (the chat that gets the summary)")
    return BotConfig(
        token=token,
        api_url=api_url,
        data_dir=setting("FACEBOT_DATA_DIR", "data", env=env) or "data",
        hr_ids=parse_ids("FACEBOT_HR_IDS", setting("FACEBOT_HR_IDS", env=env)),
        user_ids=parse_ids("FACEBOT_USER_IDS", setting("FACEBOT_USER_IDS", env=env)),
        alert_chat_id=alert,
        lang=lang,
        summary_at=summary_at,
        tz=parse_zone(setting("FACEBOT_TZ", env=env)),
        alert_snapshots=parse_alert_snapshots(setting("FACEBOT_ALERT_SNAPSHOTS", env=env)),
        telegram_retry_s=parse_retry_seconds(setting("FACEBOT_TELEGRAM_RETRY_S", env=env)),
    )
