"""FACEBOT_ALERT_SNAPSHOTS: what a camera alert shows of the faces in view.

A short video at the front door: s2 (enrolled) alone, then a stranger (s5) stands beside
her. Each setting gives the same two alerts, "Welcome s2" then "Unknown person", and the
fake Bot API shows what went out: a photo (sendPhoto) or text only (sendMessage).
"""
import signal

import cv2
import numpy as np
import pytest

from facebot.camera.snapshots import obscure
from facebot.config import ConfigError, load_bot_config
from facebot.recognition import load_image
from tests.fake_telegram import FakeTelegram

ALERT_CHAT = -100778
LEFT, RIGHT = 60, 350  # where the two faces stand in the 640x480 frame (left edge, px)


def place(frame: np.ndarray, face_rgb: np.ndarray, left: int) -> tuple[int, int, int, int]:
    """Paste the face photo, enlarged 1.4x, into the RGB `frame` at `left`, centred
    vertically; its (x, y, w, h) on the frame."""
    face = cv2.resize(face_rgb, None, fx=1.4, fy=1.4)
    h, w = face.shape[:2]
    top = (frame.shape[0] - h) // 2
    frame[top : top + h, left : left + w] = face
    return left, top, w, h


def door_frames(samples) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[int, int, int, int]]]:
    """(s2 alone, s2 with the stranger s5) as RGB frames on a plain wall, and where each face is."""
    alone = np.full((480, 640, 3), 110, np.uint8)
    where = {"s2": place(alone, load_image(samples / "s2" / "9.jpg"), LEFT)}
    together = alone.copy()
    where["s5"] = place(together, load_image(samples / "s5" / "9.jpg"), RIGHT)
    return alone, together, where


def write_video(path, frames: list[np.ndarray], seconds: float = 2.5, fps: int = 10) -> None:
    """Each RGB frame held `seconds`, in turn."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    assert writer.isOpened()
    for frame in frames:
        for _ in range(int(seconds * fps)):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def middle(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The central 40% of a face's box: eyes, nose, mouth; clear of the drawn box and label."""
    x, y, w, h = box
    return rgb[y + int(h * 0.3) : y + int(h * 0.7), x + int(w * 0.3) : x + int(w * 0.7)]


def detail(rgb: np.ndarray) -> float:
    """How much fine detail a picture has: the variance of its Laplacian (edges, features)."""
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def decode(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture()
def front_door(cli, samples, recognizer, tmp_path, monkeypatch):
    """`facebot webcam` in this process (the session's models) over the door video, posting
    to a fake Bot API: call it with extra webcam options; it returns (exit code, alerts)."""
    telegram = FakeTelegram().start()
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.url,
                        "FACEBOT_ALERT_CHAT_ID": str(ALERT_CHAT)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FACEBOT_ALERT_SNAPSHOTS", raising=False)
    # The webcam shrinks the shared detector's frames, keeps only its sideways turns and takes
    # SIGTERM: put all three back after.
    monkeypatch.setattr(recognizer.detector, "max_side", recognizer.detector.max_side)
    monkeypatch.setattr(recognizer.detector, "turns", recognizer.detector.turns)
    sigterm = signal.getsignal(signal.SIGTERM)
    code, _, err = cli("enroll", "s2", samples / "s2" / "1.jpg", "--consent", "s2, test consent, door access")
    assert code == 0, err
    alone, together, where = door_frames(samples)
    video = tmp_path / "door.mp4"
    write_video(video, [alone, together])

    def watch(*options: str):
        telegram.calls.clear()
        code, out, err = cli("webcam", "--source", video, "--camera-name", "front door", *options)
        assert code == 0, err[-3000:]
        return telegram.messages(ALERT_CHAT)

    watch.frames, watch.where = (alone, together), where
    yield watch
    signal.signal(signal.SIGTERM, sigterm)
    telegram.stop()


def assert_two_alerts(alerts, methods: list[str]) -> None:
    """Welcome s2, then the stranger with the "Enroll this face…" button, sent as `methods`."""
    assert [a.method for a in alerts] == methods, [a.text for a in alerts]
    assert [a.text.split(" — ")[0] for a in alerts] == ["Welcome s2", "Unknown person"]
    assert alerts[0].buttons == []
    [enroll] = alerts[1].buttons  # it hands over the face's embedding: no photo needed
    assert enroll["text"] == "Enroll this face…" and enroll["callback_data"].startswith("cam:")


def test_all_sends_the_annotated_frame_with_every_alert(front_door):
    alerts = front_door()  # the default
    assert_two_alerts(alerts, ["sendPhoto", "sendPhoto"])
    sent, original = decode(alerts[1].photo), front_door.frames[1]
    stranger = front_door.where["s5"]
    assert detail(middle(sent, stranger)) > 0.5 * detail(middle(original, stranger))  # the face is shown as is


def test_known_sends_a_photo_only_when_every_face_is_named(front_door, monkeypatch):
    monkeypatch.setenv("FACEBOT_ALERT_SNAPSHOTS", "known")
    alerts = front_door()
    assert_two_alerts(alerts, ["sendPhoto", "sendMessage"])  # s2 alone: photo; with the stranger: text
    assert alerts[0].photo[:2] == b"\xff\xd8"
    assert alerts[1].text.endswith("\nNo photo: 1 of the 2 faces in view not recognised.")


def test_blur_hides_unknown_faces_and_keeps_named_ones(front_door, monkeypatch, recognizer):
    monkeypatch.setenv("FACEBOT_ALERT_SNAPSHOTS", "blur")
    alerts = front_door()
    assert_two_alerts(alerts, ["sendPhoto", "sendPhoto"])
    sent, original = decode(alerts[1].photo), front_door.frames[1]
    s2, s5 = front_door.where["s2"], front_door.where["s5"]
    # The stranger's face has lost its detail; s2's is the same picture as before.
    assert detail(middle(sent, s5)) < 0.05 * detail(middle(original, s5))
    assert np.abs(middle(sent, s2).astype(int) - middle(original, s2)).mean() < 4
    # FaceNet agrees: s2 is still s2, and what is left of the stranger is nobody's face.
    seen = recognizer.faces(sent)
    before = {f.box[0] < 320: f.embedding for f in recognizer.faces(original)}
    left = [f for f in seen if f.box[0] < 320]
    # The same picture re-encoded: about 0.26 (two photos of one person: 0.6-0.8).
    assert len(left) == 1 and np.linalg.norm(left[0].embedding - before[True]) < 0.4
    # The detector finds no face there; were it to, nothing like the stranger's (strangers: > 1).
    right = [f for f in seen if f.box[0] >= 320]
    assert all(np.linalg.norm(f.embedding - before[False]) > 1.0 for f in right)


def test_none_sends_text_only_and_the_option_wins_over_the_setting(front_door, monkeypatch):
    monkeypatch.setenv("FACEBOT_ALERT_SNAPSHOTS", "all")
    alerts = front_door("--snapshots", "none")
    assert_two_alerts(alerts, ["sendMessage", "sendMessage"])
    assert all("No photo" not in a.text for a in alerts)  # chosen, not withheld: nothing to explain


def test_a_mistyped_setting_is_refused_at_start_up_with_the_choices(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACEBOT_ALERT_SNAPSHOTS", "blurred")
    with pytest.raises(ConfigError) as refused:
        load_bot_config(env={"TELEGRAM_BOT_TOKEN": "1:a", "FACEBOT_ALERT_SNAPSHOTS": "blurred"})
    assert "FACEBOT_ALERT_SNAPSHOTS" in str(refused.value)
    assert all(choice in str(refused.value) for choice in ("all", "known", "blur", "none"))
    code, out, err = cli("webcam", "--dry-run", "--source", tmp_path / "missing.mp4")
    assert code == 2 and "FACEBOT_ALERT_SNAPSHOTS: 'blurred' is not one of all, known, blur, none" in err
    assert load_bot_config(env={"TELEGRAM_BOT_TOKEN": "1:a", "FACEBOT_ALERT_SNAPSHOTS": " Blur "}).alert_snapshots == "blur"
    assert load_bot_config(env={"TELEGRAM_BOT_TOKEN": "1:a"}).alert_snapshots == "all"


def test_obscure_averages_the_face_and_a_margin_around_it():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    before = photo.copy()
    obscure(photo, (100, 50, 80, 100))  # grown by a quarter per side: x 80..200, y 25..175
    assert detail(photo[25:175, 80:200]) < 0.01 * detail(before[25:175, 80:200])
    assert np.array_equal(photo[:, :80], before[:, :80]) and np.array_equal(photo[:, 200:], before[:, 200:])
    obscure(photo, (290, 190, 40, 40))  # partly outside the picture: clipped, no error


@pytest.mark.parametrize("setting", ["blur", "none"])
def test_a_recording_hides_unknown_faces_unless_every_face_may_be_shown(front_door, monkeypatch, tmp_path, setting):
    """--record writes frames to disk: with any setting but `all` an unknown face is hidden
    there as in a `blur` alert (the alert chat and the disk must not disagree)."""
    monkeypatch.setenv("FACEBOT_ALERT_SNAPSHOTS", setting)
    video = tmp_path / f"recorded-{setting}.mp4"
    front_door("--record", str(video))
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    assert frames
    last, original = frames[-1], front_door.frames[1]  # s2 and the stranger side by side
    s2, s5 = front_door.where["s2"], front_door.where["s5"]
    assert detail(middle(last, s5)) < 0.1 * detail(middle(original, s5))
    assert detail(middle(last, s2)) > 0.3 * detail(middle(original, s2))  # the named face stays
