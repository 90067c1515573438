"""`facebot webcam`: watch a camera, a video file or a stream and post who it sees to Telegram.

The original project's real-time mode ("Bienvenido Ana" / "Usuario desconocido") as a
headless companion of the bot: same gallery, same settings, alerts to FACEBOT_ALERT_CHAT_ID.
Attendance is recorded in the gallery as it happens (a sighting per person at most once a
minute), so a restart loses nothing; the bot sends the daily summary for all cameras.
"""
from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

from facebot.texts import text


def add_command(sub) -> None:
    p = sub.add_parser("webcam", help="watch a camera and post who it sees to the alert chat")
    from facebot.config import ALERT_SNAPSHOTS, setting

    # From the environment too, so a camera URL with a password need not be on a command line.
    p.add_argument("--source", default=setting("FACEBOT_CAMERA_SOURCE", "0") or "0",
                   help="camera index, video file, or rtsp/http URL (default: $FACEBOT_CAMERA_SOURCE or 0)")
    p.add_argument("--camera-name", default="camera", help="name used in alerts")
    p.add_argument("--record", metavar="OUT.mp4", help="write the annotated stream to a video file "
                   "(unknown faces hidden unless --snapshots is all)")
    p.add_argument("--no-unknown-alerts", action="store_true", help="do not alert on unknown faces")
    # No default here: load_bot_config reads FACEBOT_ALERT_SNAPSHOTS (checked at start-up);
    # the option, when given, wins.
    p.add_argument("--snapshots", choices=tuple(ALERT_SNAPSHOTS),
                   help="what alerts show: all (the annotated frame), known (a photo only when every face is "
                        "named), blur (unknown faces blurred), none (text only) "
                        "(default: $FACEBOT_ALERT_SNAPSHOTS or all)")
    p.add_argument("--cooldown", type=float, default=600.0, help="seconds between alerts for one person (default 600)")
    p.add_argument("--votes", type=int, nargs=2, default=(3, 5), metavar=("K", "M"),
                   help="announce a name after K of the last M frames agree (default 3 5)")
    p.add_argument("--detect-size", type=int, default=320, help="longest side frames are shrunk to for detection")
    p.add_argument("--summary-at", metavar="HH:MM",
                   help="deprecated and ignored: the bot posts the daily summary of every camera (FACEBOT_SUMMARY_AT)")
    p.add_argument("--dry-run", action="store_true", help="print alerts instead of sending them")
    p.add_argument("--sighting-every", type=float, default=60.0, metavar="SECONDS",
                   help="attendance: record a person seen at most once this often (default 60, at least 60)")
    p.add_argument("--offline-after", type=float, default=10.0, metavar="SECONDS",
                   help="post 'camera offline' after this long without a frame from a live source (default 10)")
    p.add_argument("--flush-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="at the end, how long to keep trying to deliver queued alerts (default 30)")
    p.set_defaults(func=run)


def run(args) -> int:
    """`facebot webcam`. Exit 0 when the source ended or a stop signal came; 2 for a bad
    setting, a file source that is missing or no video, or a token Telegram rejected; 1 when
    the video could not be opened or alerts were left undelivered."""
    from facebot.camera.source import SourceError, check_source, parse_source
    from facebot.config import ConfigError, load_bot_config
    from facebot.telegram_retry import token_kept_out

    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request URL
    try:
        config = load_bot_config(require_token=not args.dry_run)
        if not args.dry_run and config.alert_chat_id is None:
            raise ConfigError("FACEBOT_ALERT_CHAT_ID is not set (the chat or channel that receives alerts)")
    except (ConfigError, ValueError) as exc:
        print(f"facebot webcam: {exc}", file=sys.stderr)
        return 2
    if args.summary_at:  # one summary for all cameras now comes from the bot
        print("facebot webcam: --summary-at is deprecated and ignored; set FACEBOT_SUMMARY_AT for the bot, "
              "which posts one daily summary for every camera", file=sys.stderr)
    try:  # before the models load: a mistyped path should not wait for them, nor reconnect forever
        check_source(parse_source(args.source))
    except SourceError as exc:
        print(f"facebot webcam: {exc}", file=sys.stderr)
        return 2
    with token_kept_out(config.token):  # logs, tracebacks, stdout/stderr, escaping exceptions
        return _watch(args, config)


@dataclass
class SkippedFrames:
    """Frames the camera could not look at: more faces than a photo may hold (a crowd, a
    poster), or a gallery it cannot read just now (a PostgreSQL server restarting). Told at
    most once a minute, with the count so far: a crowd in view would otherwise log every frame."""

    count: int = 0
    told_at: float = float("-inf")

    def add(self, reason: Exception, now: float) -> None:
        """Count one skipped frame (`now`: a monotonic clock's seconds); warn if a minute has passed."""
        self.count += 1
        if now - self.told_at >= 60.0:
            log.warning("frame skipped (%d so far): %s", self.count, reason)
            self.told_at = now


def _watch(args, config) -> int:
    """Load the models, watch the source until it ends or a stop signal; the exit code."""
    from facebot.camera.alerts import Alert, AlertSender
    from facebot.camera.source import FrameSource, parse_source, redact_url
    from facebot.service import open_service, service_options
    from facebot.camera.watcher import Watcher
    from facebot.camera.snapshots import shown_frame, take_snapshot
    from facebot.recognition import TooManyFaces
    from facebot.recognition.detect import CAMERA_TURNS
    from facebot.service import GalleryBusy

    # Started first: it checks the token with Telegram while the models load.
    sender = None if args.dry_run else AlertSender(config.token, config.api_url, config.alert_chat_id).start()
    service = open_service(**service_options(args))
    recognizer = service.recognizer
    if hasattr(recognizer.detector, "max_side"):
        recognizer.detector.max_side = args.detect_size
        recognizer.detector.turns = CAMERA_TURNS  # every empty frame would try them all
    recognizer.warm_up()

    def post(text: str, photo: bytes | None = None, buttons: tuple[tuple[str, str], ...] = ()) -> None:
        if sender:
            sender.send(Alert(text, photo, buttons))
        else:
            print(f"ALERT: {text}", flush=True)

    def enroll_button(event) -> tuple[tuple[str, str], ...]:
        """An unknown face's "Enroll this face…" button: the face's embedding waits in the
        gallery (24 h) for the bot, which answers the press; the camera only posts."""
        if sender is None or event.name is not None or event.embedding is None:
            return ()
        try:
            face_id = service.add_pending_face(event.embedding, args.camera_name, pixels=event.pixels,
                                               visible=event.visible)
        except Exception as exc:  # a gallery that cannot be written: the alert still goes out
            log.error("could not keep the unknown face for HR to name: %s", exc)
            return ()
        if face_id is None:  # too small to enroll
            return ()
        return ((text(config.lang, "button_enroll_this"), f"cam:{face_id}"),)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The reader thread only queues outages; this loop posts and audits them (one thread writes).
    outages: queue.SimpleQueue = queue.SimpleQueue()
    source = FrameSource(parse_source(args.source), offline_after_s=args.offline_after,
                         on_status=lambda online, seconds: outages.put((online, seconds, datetime.now().astimezone()))).start()

    def report_outages() -> None:
        """Post "offline" / "back online" (once per outage, in FACEBOT_LANG) and audit it."""
        while True:
            try:
                online, seconds, when = outages.get_nowait()
            except queue.Empty:
                return
            key = "camera_online" if online else "camera_offline"
            since = when if online else when - timedelta(seconds=seconds)
            post(text(config.lang, key, camera=args.camera_name, source=redact_url(args.source),
                      time=f"{since:%Y-%m-%d %H:%M:%S}", duration=_duration(seconds)))
            service.record_camera_status(args.camera_name, online, seconds)

    skipped = SkippedFrames()
    watcher = Watcher(k=args.votes[0], m=args.votes[1], cooldown_s=args.cooldown, unknown_alerts=not args.no_unknown_alerts,
                      same_face=service.same_face, sighting_every_s=max(60.0, args.sighting_every))
    writer = None
    index, processed, window_start, window_count = 0, 0, time.monotonic(), 0
    watcher_day = datetime.now().astimezone().date()
    snapshots = args.snapshots or config.alert_snapshots
    log.info("watching %s as %r (alert snapshots: %s)", redact_url(args.source), args.camera_name, snapshots)
    try:
        while not stop.is_set():
            if sender and sender.fatal:  # e.g. a rejected token: alerts can never go out
                break
            report_outages()
            index, frame = source.latest(index, timeout=0.5)
            if frame is None:
                if source.finished.is_set():
                    break
                continue
            now = datetime.now().astimezone()
            try:
                results = service.identify(frame, audit=False)
            except (TooManyFaces, GalleryBusy) as exc:  # this frame only: the camera goes on watching
                skipped.add(exc, time.monotonic())
                continue
            events = watcher.update(results, now)
            if events or args.record:  # drawn once, for the recording and every alert of this frame
                shown = shown_frame(snapshots, frame, results, text(config.lang, "unknown_label"))
            if events:  # one snapshot for every alert of this frame, as FACEBOT_ALERT_SNAPSHOTS allows
                snapshot = take_snapshot(snapshots, shown, results, text(config.lang, "snapshot_withheld"))
            for event in events:
                key = "camera_known" if event.name else "camera_unknown"
                message = text(config.lang, key, name=event.name, camera=args.camera_name, time=f"{event.when:%Y-%m-%d %H:%M:%S}")
                # The button hands over the face's embedding, never the photo: it works without one.
                post(f"{message}\n{snapshot.note}" if snapshot.note else message, snapshot.photo, enroll_button(event))
                service.record_alert(args.camera_name, event.name, event.distance)
            for name in watcher.sightings(now):  # attendance, in the gallery: at most once a minute each
                service.record_sighting(args.camera_name, name)
            if args.record:
                writer = writer or _open_writer(args.record, frame.shape)
                writer.write(shown[:, :, ::-1])
            processed += 1
            window_count += 1
            if time.monotonic() - window_start >= 10:
                log.info("processing %.1f frames/s (%d read, %d reconnects)", window_count / (time.monotonic() - window_start),
                         source.frames_read, source.reconnects)
                window_start, window_count = time.monotonic(), 0
            if now.date() != watcher_day:  # the end-of-run report covers today only
                watcher.forget_before(now.date())
                watcher_day = now.date()
    except KeyboardInterrupt:
        pass
    finally:
        source.stop()
        if writer is not None:
            writer.release()
        undelivered = sender.close(args.flush_timeout) if sender else 0
    print(f"processed {processed} of {source.frames_read} frames; {source.reconnects} reconnect(s)")
    today = datetime.now().astimezone().date()
    for name, first, last in watcher.seen_today(today):
        print(f"seen {name}: {first:%H:%M:%S}–{last:%H:%M:%S}")
    if sender and sender.fatal:
        print(f"facebot webcam: {sender.fatal}", file=sys.stderr)
        return 2
    if source.error:
        print(f"facebot webcam: {source.error}", file=sys.stderr)
        return 1
    if undelivered:
        print(f"facebot webcam: {undelivered} alert(s) could not be delivered to Telegram", file=sys.stderr)
        return 1
    return 0


def _duration(seconds: float) -> str:
    """'45 s', '12 min', '2 h 5 min' (the same in English and Spanish)."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _open_writer(path: str, shape):
    import cv2

    height, width = shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video to {path}")
    return writer
