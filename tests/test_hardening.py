"""Issue 13, "Hardening": the Telegram and camera defects, each reproduced against the fake
Bot API server's fault injection (tests/fake_telegram.py) before it was fixed."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebot.camera.alerts import Alert, AlertSender
from tests.fake_telegram import FakeTelegram

REPO = Path(__file__).resolve().parent.parent
ALERT_CHAT = -100777


@pytest.fixture()
def telegram():
    server = FakeTelegram().start()
    yield server
    server.stop()


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def blank_video(path: Path, seconds: float = 1.0, fps: int = 10) -> Path:
    """A video of a plain wall: frames to process, no faces, so no alerts."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    for _ in range(int(seconds * fps)):
        writer.write(np.full((240, 320, 3), 110, np.uint8))
    writer.release()
    return path


def facebot(args: list[str], env: dict[str, str], timeout: float = 120, cwd: Path | None = None):
    """Run `python -m facebot ARGS` with `env` added; return the CompletedProcess (text)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", **env}
    return subprocess.run([sys.executable, "-m", "facebot", *args], cwd=cwd or REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


# -- 1. camera alerts survive a failed start-up call -------------------------------------------
@pytest.mark.parametrize("fault", [dict(status=500), dict(status=502, html=True), dict(status=0, drop=True)])
def test_alerts_survive_a_failed_getme(telegram, fault):
    telegram.fail_next("getMe", fault.pop("status"), **fault)
    sender = AlertSender(telegram.token, telegram.url, ALERT_CHAT).start()
    for i in range(3):
        sender.send(Alert(f"alert {i}"))
    assert wait_until(lambda: len(telegram.messages(ALERT_CHAT)) == 3)
    sender.close(timeout=5)
    assert [m.text for m in telegram.messages(ALERT_CHAT)] == ["alert 0", "alert 1", "alert 2"]
    assert sender.sent == 3 and sender.fatal is None


def test_alerts_report_a_rejected_token(telegram):
    telegram.reject_token(401)
    sender = AlertSender(telegram.token, telegram.url, ALERT_CHAT).start()
    sender.send(Alert("never"))
    assert wait_until(lambda: sender.fatal is not None, timeout=5)
    assert "rejected" in sender.fatal and telegram.token not in sender.fatal
    sender.close(timeout=1)
    assert sender.undelivered == 1


def test_webcam_exits_non_zero_on_a_rejected_token(telegram, tmp_path):
    telegram.reject_token(401)
    video = blank_video(tmp_path / "wall.mp4", seconds=2)
    result = facebot(["--data-dir", str(tmp_path / "data"), "webcam", "--source", str(video)],
                     {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.url,
                      "FACEBOT_ALERT_CHAT_ID": str(ALERT_CHAT)})
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "rejected TELEGRAM_BOT_TOKEN" in result.stderr and "Exception in thread" not in result.stderr


# -- 4. the token appears in no output of any failure ------------------------------------------
SECRET_TOKEN = "4242:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def telegram_in(mode: str) -> tuple[FakeTelegram, str]:
    """A fake server whose Telegram fails as `mode` says, and the URL to give the process."""
    server = FakeTelegram(token=SECRET_TOKEN).start()
    if mode in ("401", "404"):
        server.reject_token(int(mode))
    elif mode == "500":
        server.outage(600, 500)
    elif mode == "502":
        server.outage(600, 502, html=True)
    return server, (FakeTelegram.closed_url() if mode == "down" else server.url)


def assert_no_token(result) -> None:
    output = result.stdout + result.stderr
    secret = SECRET_TOKEN.split(":")[1]
    assert SECRET_TOKEN not in output and secret not in output and secret[:12] not in output, output[-3000:]


@pytest.mark.parametrize("verbose", [[], ["-v"]], ids=["quiet", "verbose"])
@pytest.mark.parametrize("mode", ["401", "404", "down", "500", "502"])
def test_bot_never_prints_the_token(mode, verbose, tmp_path):
    server, url = telegram_in(mode)
    try:
        result = facebot([*verbose, "--data-dir", str(tmp_path / "data"), "bot"],
                         {"TELEGRAM_BOT_TOKEN": SECRET_TOKEN, "TELEGRAM_API_URL": url, "FACEBOT_HR_IDS": "1",
                          "FACEBOT_TELEGRAM_RETRY_S": "2"}, cwd=tmp_path, timeout=60)
    finally:
        server.stop()
    assert_no_token(result)
    assert result.returncode == (2 if mode in ("401", "404") else 1), result.stderr[-2000:]
    if mode in ("401", "404"):
        assert "Telegram rejected TELEGRAM_BOT_TOKEN" in result.stderr
    else:
        assert "cannot reach the Telegram Bot API" in result.stderr


@pytest.mark.parametrize("mode", ["401", "404", "down", "500", "502"])
def test_webcam_never_prints_the_token(mode, tmp_path):
    server, url = telegram_in(mode)
    video = blank_video(tmp_path / "wall.mp4", seconds=1)
    try:
        result = facebot(["-v", "--data-dir", str(tmp_path / "data"), "webcam", "--source", str(video)],
                         {"TELEGRAM_BOT_TOKEN": SECRET_TOKEN, "TELEGRAM_API_URL": url,
                          "FACEBOT_ALERT_CHAT_ID": str(ALERT_CHAT)}, cwd=tmp_path, timeout=90)
    finally:
        server.stop()
    assert_no_token(result)
    assert result.returncode == (2 if mode in ("401", "404") else 0), result.stderr[-2000:]


# -- 5. no duplicates when Telegram answers after the client's read timeout ---------------------
def run_bot_scenario(service, tmp_path, scenario, limits=None, users=(2002,), hr=(1001,), timeout=60.0, server=None):
    """Start the real bot (build_application) against a fake server, await scenario(server), stop."""
    from facebot.bot.telegram_bot import Limits, build_application
    from facebot.config import BotConfig
    from tests.fake_telegram import polling

    async def main():
        fake = server or FakeTelegram().start()
        config = BotConfig(token=fake.token, api_url=fake.url, data_dir=str(tmp_path), hr_ids=frozenset(hr),
                           user_ids=frozenset(users))
        try:
            async with polling(build_application(config, service, limits=limits or Limits())):
                await asyncio.wait_for(scenario(fake), timeout)
        finally:
            fake.stop()
        return fake

    return asyncio.run(main())


def test_a_slow_answer_is_not_sent_twice(service, samples, tmp_path):
    from facebot.bot.telegram_bot import Limits

    user = 2002

    async def scenario(server):
        server.slow_next("sendMessage", delay=2.5)
        server.push_text(user, user, "/whoami")
        await asyncio.sleep(0.3)
        server.slow_next("sendPhoto", delay=2.5)
        server.push_photo(user, user, (samples / "s2" / "1.jpg").read_bytes())
        await server.wait_for_messages(user, 2, timeout=20)
        await asyncio.sleep(5)  # time for any retry to arrive
        assert [c.method for c in server.messages(user)] == ["sendMessage", "sendPhoto"], \
            [(c.method, c.text[:30]) for c in server.messages(user)]

    run_bot_scenario(service, tmp_path, scenario, Limits(read_timeout_s=1.0))


def test_a_slow_alert_is_not_posted_twice(telegram):
    telegram.slow_next("sendPhoto", delay=2.5)
    sender = AlertSender(telegram.token, telegram.url, ALERT_CHAT, read_timeout=1.0).start()
    sender.send(Alert("Welcome Ana", photo=b"\xff\xd8 not really a jpeg"))
    sender.send(Alert("Welcome Bob"))
    assert wait_until(lambda: len(telegram.messages(ALERT_CHAT)) >= 2)
    time.sleep(4)  # time for any retry to arrive
    sender.close(timeout=5)
    assert [m.text for m in telegram.messages(ALERT_CHAT)] == ["Welcome Ana", "Welcome Bob"]


# -- 10. answers and alerts outlive a Telegram outage -------------------------------------------
OUTAGES = {"500": dict(status=500), "502-html": dict(status=502, html=True), "429": dict(status=429, retry_after=1),
           "dropped": dict(status=0, drop=True)}


def test_the_default_reply_policy_outlasts_a_20_second_outage(monkeypatch):
    """Simulated clock: every call fails for 25 s (500s, then drops), then succeeds."""
    from telegram.error import NetworkError

    import facebot.telegram_retry as retry

    clock = [0.0]

    async def sleep(seconds):
        clock[0] += seconds

    monkeypatch.setattr(retry.asyncio, "sleep", sleep)
    monkeypatch.setattr(retry.time, "monotonic", lambda: clock[0])
    calls = []

    async def request():
        calls.append(clock[0])
        if clock[0] < 25:
            raise NetworkError("Internal Server Error (500)" if clock[0] < 12 else "httpx.RemoteProtocolError: dropped")
        return "sent"

    assert asyncio.run(retry.REPLIES.call(request)) == "sent"
    assert 25 <= calls[-1] <= 35  # delivered soon after recovery
    calls.clear()
    clock[0] = -1000.0  # an outage that never ends: the policy gives up, after ~60 s
    with pytest.raises(NetworkError):
        asyncio.run(retry.REPLIES.call(request))
    assert 45 <= calls[-1] - calls[0] <= 75


@pytest.mark.parametrize("kind", OUTAGES)
def test_bot_answers_once_after_an_outage(kind, service, samples, tmp_path):
    """4 s of failing Telegram (sends, getFile and downloads) while three people wait."""
    from facebot.bot.telegram_bot import Limits
    from facebot.telegram_retry import RetryPolicy

    users = (2002, 2003, 2004)
    fault = dict(OUTAGES[kind])

    async def scenario(server):
        server.outage(4.0, fault.pop("status"), methods={"sendMessage", "sendPhoto", "getFile", "file"}, **fault)
        started = time.monotonic()
        server.push_text(users[0], users[0], "/whoami")
        server.push_text(users[1], users[1], "/help")
        server.push_photo(users[2], users[2], (samples / "s2" / "1.jpg").read_bytes())
        for user in users:
            await server.wait_for_messages(user, 1, timeout=25)
        assert time.monotonic() - started >= 3.5  # nothing got through during the outage
        await asyncio.sleep(1.5)  # any duplicate would arrive now
        assert [len(server.messages(u)) for u in users] == [1, 1, 1]
        assert server.messages(users[2])[0].method == "sendPhoto"

    limits = Limits(retry=RetryPolicy(total_s=15, first_backoff_s=0.2, max_backoff_s=1.0))
    run_bot_scenario(service, tmp_path, scenario, limits, users=users)


@pytest.mark.parametrize("kind", OUTAGES)
def test_alerts_are_posted_once_after_an_outage(kind, telegram):
    from facebot.telegram_retry import RetryPolicy

    fault = dict(OUTAGES[kind])
    telegram.outage(3.0, fault.pop("status"), **fault)  # getMe too
    sender = AlertSender(telegram.token, telegram.url, ALERT_CHAT,
                         policy=RetryPolicy(attempts=None, total_s=None, first_backoff_s=0.2, max_backoff_s=1.0)).start()
    for i in range(3):
        sender.send(Alert(f"alert {i}", photo=b"jpeg" if i == 1 else None))
    assert wait_until(lambda: len(telegram.messages(ALERT_CHAT)) >= 3, timeout=20)
    time.sleep(1.5)
    sender.close(timeout=5)
    assert [m.text for m in telegram.messages(ALERT_CHAT)] == ["alert 0", "alert 1", "alert 2"]
    assert sender.sent == 3 and sender.undelivered == 0
