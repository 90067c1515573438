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


# -- 2. one allowed user cannot exhaust memory ---------------------------------------------------
def read_peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident memory) of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_decompression_bombs_within_the_limits_keep_memory_bounded(tmp_path, samples):
    """12 documents of a black 7000 x 7000 PNG (under the 50-megapixel limit: 147 MB each once
    decoded) from one user, then a photo from another user and /help from HR, against the real
    `python -m facebot bot`: its peak memory stays under 2 GB, the others are answered in 5 s."""
    from tests.images import png_bomb

    flooder, other, hr = 2002, 2003, 1001
    server = FakeTelegram().start()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": server.token, "TELEGRAM_API_URL": server.url, "TF_CPP_MIN_LOG_LEVEL": "3",
           "FACEBOT_HR_IDS": str(hr), "FACEBOT_USER_IDS": f"{flooder},{other}"}
    process = subprocess.Popen([sys.executable, "-m", "facebot", "--data-dir", str(tmp_path / "data"), "bot"], cwd=tmp_path,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: server.polls or process.poll() is not None, timeout=90)
        assert process.poll() is None, process.stderr.read()[-2000:]
        bomb = png_bomb(7000)
        for _ in range(12):
            server.push_document(flooder, flooder, bomb, "black.png", "image/png")
        time.sleep(1.0)  # the bombs are being downloaded and decoded
        asked = time.monotonic()
        server.push_photo(other, other, (samples / "s2" / "1.jpg").read_bytes())
        server.push_text(hr, hr, "/help")
        answered = asyncio.run(server.wait_for_messages(other, 1, timeout=30))[0].at - asked
        helped = server.messages(hr)[0].at - asked if server.messages(hr) else None
        asyncio.run(server.wait_for_messages(flooder, 12, timeout=90))
        peak = read_peak_rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(30)
        server.stop()
    print(f"peak RSS {peak:.0f} MiB; other user answered in {answered:.2f} s, HR in {helped:.2f} s")
    assert peak < 2048 and answered < 5 and helped is not None and helped < 5


# -- 6. one sender holds up no one; strangers are rate-limited -----------------------------------
def test_a_flood_of_photos_does_not_hold_up_others(service, samples, tmp_path):
    flooder, other, hr = 2002, 2003, 1001
    photo = (samples / "s5" / "1.jpg").read_bytes()

    async def scenario(server):
        for _ in range(1000):
            server.push_photo(flooder, flooder, photo)
        await server.wait_for_messages(flooder, 1, timeout=20)  # the flood is being worked on
        asked = time.monotonic()
        server.push_text(hr, hr, "/help")
        server.push_photo(other, other, (samples / "s2" / "1.jpg").read_bytes())
        helped = (await server.wait_for_messages(hr, 1, timeout=10))[0].at - asked
        answered = (await server.wait_for_messages(other, 1, timeout=10))[0].at - asked
        done = len(server.messages(flooder))
        print(f"HR answered in {helped:.2f} s, the other user in {answered:.2f} s ({done} flood photos answered)")
        assert helped < 1 and answered < 5

    run_bot_scenario(service, tmp_path, scenario, users=(flooder, other), timeout=60)


def test_strangers_are_rate_limited(service, tmp_path):
    stranger = 3003

    async def scenario(server):
        for _ in range(200):
            server.push_text(stranger, stranger, "/whoami")
        for i in range(100):  # a hundred other strangers
            server.push_text(4000 + i, 4000 + i, "/whoami")
        await server.wait_for_messages(stranger, 1)
        await asyncio.sleep(2.0)
        from_one = len(server.messages(stranger))
        in_all = sum(1 for c in server.calls if c.method == "sendMessage")
        print(f"one stranger got {from_one} replies to 200 /whoami; 101 strangers got {in_all} in all")
        assert from_one <= 3 and in_all <= 40

    run_bot_scenario(service, tmp_path, scenario)


def test_the_fair_gate_takes_users_in_turn_and_lets_waiters_go_on_close():
    from facebot.bot.telegram_util import FairGate, GateClosed

    async def main():
        gate, order, release = FairGate(1), [], asyncio.Event()

        async def work(user, i):
            async with gate.turn(user):
                order.append((user, i))
                await release.wait()

        tasks = [asyncio.create_task(work("flood", i)) for i in range(5)]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(work("other", 0))]
        await asyncio.sleep(0)
        assert gate.waiting("flood") == 4 and gate.waiting() == 5
        release.set()
        await asyncio.gather(*tasks)
        assert order[:3] == [("flood", 0), ("flood", 1), ("other", 0)]  # the newcomer's turn comes next
        release.clear()
        holder = asyncio.create_task(work("a", 1))
        waiters = [asyncio.create_task(work("b", i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert gate.close() == 3
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, GateClosed) for r in results)
        release.set()
        await holder
        assert gate.busy == 0

    asyncio.run(main())


# -- 11. camera sources fail clearly; alerts survive a 403 and are counted at shutdown ----------
def test_a_missing_video_file_fails_at_once(tmp_path):
    started = time.monotonic()
    result = facebot(["--data-dir", str(tmp_path / "data"), "webcam", "--dry-run", "--source", str(tmp_path / "gone.mp4")],
                     {}, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "gone.mp4: no such file" in result.stderr and time.monotonic() - started < 20


def test_a_file_that_is_not_a_video_fails(tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"this is not a video\n" * 100)
    result = facebot(["--data-dir", str(tmp_path / "data"), "webcam", "--dry-run", "--source", str(junk)],
                     {}, cwd=tmp_path, timeout=60)
    assert result.returncode != 0, result.stderr[-2000:]
    assert "notes.mp4" in result.stderr and "not a video" in result.stderr


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_video_file_fails(tmp_path):
    video = blank_video(tmp_path / "locked.mp4")
    video.chmod(0)
    result = facebot(["--data-dir", str(tmp_path / "data"), "webcam", "--dry-run", "--source", str(video)],
                     {}, cwd=tmp_path, timeout=60)
    assert result.returncode != 0 and "locked.mp4" in result.stderr and "cannot read" in result.stderr


def test_a_corrupt_video_that_stops_early_is_reported(tmp_path, caplog):
    from facebot.camera.source import FrameSource

    video = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    rng = np.random.default_rng(0)
    for _ in range(60):
        writer.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 5])  # the copy broke off 40% in
    source = FrameSource(str(video), realtime=False).start()
    assert source.finished.wait(20)
    source.stop()
    assert 0 < source.frames_read < 40
    assert source.warning and "60" in source.warning and str(source.frames_read) in source.warning
    assert "cut.avi" in caplog.text and "corrupt" in caplog.text


def test_alerts_survive_being_forbidden_and_resume(telegram, caplog):
    """403: the bot was removed from the channel. The alerts stay queued and go out once it is back."""
    for _ in range(3):
        telegram.fail_next("sendMessage", 403)
    sender = AlertSender(telegram.token, telegram.url, ALERT_CHAT, forbidden_backoff=(0.3, 1.0)).start()
    sender.send(Alert("Welcome Ana"))
    sender.send(Alert("Welcome Bob"))
    assert wait_until(lambda: len(telegram.messages(ALERT_CHAT)) >= 2, timeout=15)
    sender.close(timeout=5)
    assert [m.text for m in telegram.messages(ALERT_CHAT)] == ["Welcome Ana", "Welcome Bob"]
    assert telegram.statuses("sendMessage")[:3] == [403, 403, 403] and sender.sent == 2
    assert "403" in caplog.text or "forbidden" in caplog.text.lower()


def test_shutdown_flushes_what_it_can_and_counts_the_rest(telegram, caplog):
    from facebot.telegram_retry import RetryPolicy

    fast = RetryPolicy(attempts=None, total_s=None, first_backoff_s=0.2, max_backoff_s=0.5)
    telegram.outage(1.5, 500)  # ends during close(): the queue is flushed
    sender = AlertSender(telegram.token, telegram.url, ALERT_CHAT, policy=fast).start()
    for i in range(3):
        sender.send(Alert(f"alert {i}"))
    assert sender.close(timeout=10) == 0
    assert len(telegram.messages(ALERT_CHAT)) == 3

    telegram.outage(60, 500)  # outlasts close(): every alert is counted, the one in flight too
    sender = AlertSender(telegram.token, telegram.url, ALERT_CHAT, policy=fast).start()
    for i in range(3):
        sender.send(Alert(f"later {i}"))
    time.sleep(1.0)  # one of them is being tried
    started = time.monotonic()
    assert sender.close(timeout=1) == 3
    assert time.monotonic() - started < 4
    assert "3 alert(s) not delivered" in caplog.text


# -- 3. kill -9 loses no fetched update ----------------------------------------------------------
def start_bot(server: FakeTelegram, data: Path, users: list[int]) -> subprocess.Popen:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": server.token, "TELEGRAM_API_URL": server.url, "TF_CPP_MIN_LOG_LEVEL": "3",
           "FACEBOT_HR_IDS": "1", "FACEBOT_USER_IDS": ",".join(map(str, users))}
    return subprocess.Popen([sys.executable, "-m", "facebot", "--data-dir", str(data), "bot"], cwd=data.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_photos_fetched_before_a_kill_9_are_answered_after_the_restart(tmp_path):
    """100 people send a photo; the bot is killed (SIGKILL) after answering some; the restarted
    bot answers all the others (what Telegram had confirmed included) and repeats none but the
    ones that were in hand at the kill."""
    users = list(range(5000, 5100))
    picture = np.full((96, 128, 3), 200, np.uint8)  # no face: quick to answer
    jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
    server = FakeTelegram().start()
    data = tmp_path / "data"
    first = start_bot(server, data, users)
    try:
        assert wait_until(lambda: server.polls or first.poll() is not None, timeout=90), "the bot did not start"
        assert first.poll() is None, first.stderr.read()[-2000:]
        for user in users:
            server.push_photo(user, user, jpeg)
        assert wait_until(lambda: sum(bool(server.messages(u)) for u in users) >= 10, timeout=60)
        first.kill()  # SIGKILL: no shutdown, no last getUpdates
        first.wait(10)
        before = sum(bool(server.messages(u)) for u in users)
        assert before < 100, "the kill came too late to test anything"
        second = start_bot(server, data, users)
        try:
            done = wait_until(lambda: all(server.messages(u) for u in users), timeout=90)
        finally:
            second.terminate()
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        server.stop()
    counts = [len(server.messages(u)) for u in users]
    print(f"answered before the kill: {before}; after the restart: {sum(c > 0 for c in counts)} of 100; "
          f"answered twice: {sum(c > 1 for c in counts)}")
    assert done and all(c >= 1 for c in counts), counts
    assert sum(c > 1 for c in counts) <= 4  # at most the photos in hand (2 slots) at the kill


def test_photos_let_go_at_a_graceful_stop_are_answered_after_the_restart(service, tmp_path):
    """Stopping the bot with photos waiting does not wait for all of them (PTB would) nor lose
    them: they stay in the journal and the next start answers them, each once."""
    from facebot.bot.telegram_bot import Limits, build_application
    from facebot.config import BotConfig
    from tests.fake_telegram import polling

    users = list(range(6000, 6012))
    jpeg = cv2.imencode(".jpg", np.full((96, 128, 3), 200, np.uint8))[1].tobytes()
    journal = tmp_path / "journal.jsonl"

    async def main():
        server = FakeTelegram().start()
        config = BotConfig(token=server.token, api_url=server.url, data_dir=str(tmp_path), user_ids=frozenset(users))
        try:
            async with polling(build_application(config, service, limits=Limits(photo_slots=1), journal=journal)):
                for user in users:
                    server.push_photo(user, user, jpeg)
                while not any(server.messages(u) for u in users):
                    await asyncio.sleep(0.02)
            first = sum(bool(server.messages(u)) for u in users)
            async with polling(build_application(config, service, journal=journal)):
                for user in users:
                    await server.wait_for_messages(user, 1, timeout=20)
                await asyncio.sleep(0.5)
            return first, [len(server.messages(u)) for u in users]
        finally:
            server.stop()

    first, counts = asyncio.run(main())
    assert first < len(users) and counts == [1] * len(users), (first, counts)
    from facebot.bot.telegram_util import UpdateJournal

    assert UpdateJournal(journal).pending == {}  # all crossed off


def test_the_retry_setting_is_checked(monkeypatch, tmp_path, capsys):
    from facebot.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "12345:SECRET")
    monkeypatch.setenv("FACEBOT_TELEGRAM_RETRY_S", "soon")
    assert main(["--data-dir", str(tmp_path / "data"), "bot"]) == 2
    err = capsys.readouterr().err
    assert "FACEBOT_TELEGRAM_RETRY_S" in err and err.count("\n") == 1 and "SECRET" not in err
