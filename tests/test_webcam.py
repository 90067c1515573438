"""`facebot webcam`: a video of three people in turn gives exactly three alerts, in order."""
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebot.camera.source import FrameSource
from facebot.camera.watcher import Watcher
from facebot.recognition import Identification, load_image
from tests.fake_telegram import FakeTelegram

REPO = Path(__file__).resolve().parent.parent
ALERT_CHAT = -100777


def frame_with(face: np.ndarray) -> np.ndarray:
    """A 640x480 BGR frame with the face photo enlarged in the middle of a plain wall."""
    frame = np.full((480, 640, 3), 110, np.uint8)
    face = cv2.resize(face, None, fx=1.4, fy=1.4)
    h, w = face.shape[:2]
    y, x = (480 - h) // 2, (640 - w) // 2
    frame[y : y + h, x : x + w] = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
    return frame


def write_video(path: Path, faces: list[np.ndarray], seconds: float = 4.0, fps: int = 10) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    assert writer.isOpened()
    for face in faces:
        frame = frame_with(face)
        for _ in range(int(seconds * fps)):
            writer.write(frame)
    writer.release()


@pytest.fixture()
def telegram():
    server = FakeTelegram().start()
    yield server
    server.stop()


def test_video_gives_one_alert_per_person_in_order(tmp_path, samples, service_on_each_store, telegram):
    service = service_on_each_store  # the camera process reads the same gallery, TinyDB or PostgreSQL
    service.enroll("s2", load_image(samples / "s2" / "1.jpg"))
    service.enroll("s11", load_image(samples / "s11" / "1.jpg"))
    video = tmp_path / "door.mp4"
    write_video(video, [load_image(samples / p / "9.jpg") for p in ("s2", "s11", "s5")])  # s5: never enrolled
    telegram.fail_next("sendPhoto", 429, retry_after=1)  # a flood limit must delay, not lose, the alert
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.url,
           "FACEBOT_ALERT_CHAT_ID": str(ALERT_CHAT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "facebot", *service.cli_args, "webcam",
         "--source", str(video), "--camera-name", "front door", "--record", str(tmp_path / "seen.mp4")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    alerts = telegram.messages(ALERT_CHAT)
    assert [a.method for a in alerts] == ["sendPhoto"] * 3, ([a.text for a in alerts], result.stdout)
    assert [a.text.split(" — ")[0] for a in alerts] == ["Welcome s2", "Welcome s11", "Unknown person"]
    assert all("front door" in a.text and a.photo and a.photo[:2] == b"\xff\xd8" for a in alerts)
    assert [a.buttons for a in alerts[:2]] == [[], []]  # a known person's alert: nothing to do
    [enroll] = alerts[2].buttons  # the stranger's: HR may name the face through the bot
    assert enroll["text"] == "Enroll this face…" and enroll["callback_data"].startswith("cam:")
    assert service.pending_face(enroll["callback_data"][4:]).camera == "front door"
    assert "seen s2" in result.stdout and "seen s11" in result.stdout
    assert cv2.VideoCapture(str(tmp_path / "seen.mp4")).read()[0]
    assert "TEST-fake-token" not in result.stderr  # the token never reaches the logs


def test_a_crowd_in_view_skips_frames_without_stopping_the_camera(tmp_path, samples, service, telegram):
    """A lobby camera detecting at 640 px sees a crowd (a poster, a screen): more faces than a
    photo may hold (recognition.MAX_FACES). Those frames are skipped with a warning; the camera
    goes on and greets the person who comes next (it used to exit with TooManyFaces)."""
    from facebot.lab.demo import mosaic

    service.enroll("s2", load_image(samples / "s2" / "1.jpg"))
    people = [load_image(samples / p / f"{n}.jpg") for p in ("s2", "s5", "s11", "s23", "s37") for n in (1, 5, 9, 13)]
    crowd = cv2.cvtColor(cv2.resize(mosaic(people * 8, columns=12, cell=(50, 44), gap=3), (640, 480),
                                    interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    video = tmp_path / "lobby.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for frame in [crowd] * 10 + [frame_with(load_image(samples / "s2" / "9.jpg"))] * 40:
        writer.write(frame)
    writer.release()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.url,
           "FACEBOT_ALERT_CHAT_ID": str(ALERT_CHAT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "facebot", *service.cli_args, "webcam", "--source", str(video),
                             "--camera-name", "lobby", "--detect-size", "640"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped" in result.stderr and "faces found" in result.stderr
    assert [a.text.split(" — ")[0] for a in telegram.messages(ALERT_CHAT)] == ["Welcome s2"]


class FlakyCamera:
    """Stands in for cv2.VideoCapture: delivers `frames` frames, then the cable is pulled."""

    def __init__(self, opened: bool, frames: int):
        self.opened, self.left = opened, frames

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return 25.0

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.zeros((48, 64, 3), np.uint8)

    def release(self):
        pass


def test_a_camera_that_disconnects_is_reopened(caplog):
    attempts = iter([FlakyCamera(True, 5), FlakyCamera(False, 0), FlakyCamera(False, 0), FlakyCamera(True, 7)])
    opened = []

    def opener(source):
        try:
            cam = next(attempts)
        except StopIteration:
            cam = FlakyCamera(False, 0)
        opened.append(cam)
        return cam

    source = FrameSource(0, opener=opener, max_backoff=0.05).start()
    index, frames = 0, 0
    deadline = datetime.now() + timedelta(seconds=10)
    while source.frames_read < 12 and datetime.now() < deadline:
        index, frame = source.latest(index, timeout=0.2)
        frames += frame is not None
    source.stop()
    assert source.frames_read == 12  # 5 before the drop, 7 after
    assert source.reconnects >= 3 and len(opened) >= 4
    assert "reconnecting" in caplog.text or "unavailable" in caplog.text


def ident(name, box=(100, 100, 80, 100), known=True):
    return Identification(box, name, 0.5 if known else 1.2, known)


def test_watcher_votes_cools_down_and_reports_unknowns_once():
    w = Watcher(k=3, m=5, cooldown_s=600)
    t0 = datetime(2026, 11, 23, 9, 0)
    seq = ["Ana", "Bob", "Ana", "Ana"]  # a one-frame glitch never gets announced
    events = [e for i, n in enumerate(seq) for e in w.update([ident(n)], t0 + timedelta(seconds=i))]
    assert [e.name for e in events] == ["Ana"]
    more = [e for i in range(20) for e in w.update([ident("Ana")], t0 + timedelta(seconds=10 + i))]
    assert more == []  # cooldown
    later = [e for i in range(3) for e in w.update([ident("Ana")], t0 + timedelta(minutes=11, seconds=i))]
    assert [e.name for e in later] == ["Ana"]
    stranger = [e for i in range(30) for e in w.update([ident(None, (400, 80, 90, 110), False)], t0 + timedelta(minutes=20, seconds=i))]
    assert len(stranger) == 1 and stranger[0].name is None
    assert [(n, f.time()) for n, f, _ in w.seen_today(t0.date())] == [("Ana", (t0 + timedelta(seconds=3)).time())]


def test_camera_sees_enrollments_made_elsewhere_without_restarting(service, samples):
    from facebot.service import FaceService
    from facebot.storage import Gallery

    camera = FaceService(Gallery(service.gallery.data_dir), service.recognizer)
    photo = load_image(samples / "s23" / "9.jpg")
    assert camera.identify(photo, audit=False)[0].label == "unknown"
    service.enroll("s23", load_image(samples / "s23" / "1.jpg"))  # e.g. HR through the bot
    assert camera.identify(photo, audit=False)[0].label == "s23"


def test_a_different_stranger_in_the_same_place_is_a_new_track(service, samples):
    """Two strangers one after the other where the camera sees them the same size and place:
    box overlap alone would take them for one face and announce only the first."""
    first, second = (service.recognizer.faces(load_image(samples / p / "5.jpg"))[0].embedding for p in ("s2", "s5"))
    rng = np.random.default_rng(0)
    jitter = lambda e: e + rng.normal(0, 0.01, e.shape).astype(np.float32)  # noqa: E731  frame-to-frame noise
    watcher = Watcher(k=3, m=5, cooldown_s=600, same_face=service.same_face)
    t0 = datetime(2026, 11, 23, 9, 0)
    box = (200, 100, 120, 150)
    frames = [first] * 10 + [second] * 10
    events = [e for i, emb in enumerate(frames)
              for e in watcher.update([Identification(box, None, 1.2, False, jitter(emb))], t0 + timedelta(seconds=i))]
    assert [(e.name, e.when) for e in events] == [(None, t0 + timedelta(seconds=2)), (None, t0 + timedelta(seconds=12))]
    assert service.same_face(first, jitter(first)) and not service.same_face(first, second)
