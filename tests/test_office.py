"""Running it in a real office (issue 12): access managed from Telegram, menus and language,
attendance that lasts, naming unknown faces from a button, camera outages.

Bot tests drive the real PTB Application against the fake Bot API (tests/fake_telegram.py)
on a TinyDB gallery and on a PostgreSQL one; a restart is a new Application over the same
gallery."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from facebot.bot.telegram_bot import build_application
from facebot.config import BotConfig
from facebot.texts import EN, ES
from facebot.recognition import load_image
from tests.fake_telegram import FakeTelegram, polling

HR, USER, USER2, NEWBIE, HR2, GROUP = 1001, 2002, 2003, 4004, 5005, -7007
ALERT_CHAT = -100777


def jpeg(samples, person: str, number: int) -> bytes:
    return (samples / person / f"{number}.jpg").read_bytes()


@pytest.fixture()
def service(service_on_each_store):
    """Every test here runs on a TinyDB gallery and on a PostgreSQL one."""
    return service_on_each_store


def run_bots(service, tmp_path, *scenarios, users=(USER,), lang="en", timeout=90.0, **config) -> list[FakeTelegram]:
    """Run each scenario(server) against its own bot (a new Application over the same gallery,
    as after a restart) and fake server, one after the other; returns the servers."""

    async def main() -> list[FakeTelegram]:
        servers = []
        for scenario in scenarios:
            server = FakeTelegram().start()
            settings = BotConfig(token=server.token, api_url=server.url, data_dir=str(tmp_path), hr_ids=frozenset({HR}),
                                 user_ids=frozenset(users), lang=lang, **config)
            try:
                async with polling(build_application(settings, service)) as application:
                    server.application = application  # for scenarios that reach into the bot (its jobs)
                    await asyncio.wait_for(scenario(server), timeout)
            finally:
                server.stop()
            servers.append(server)
        return servers

    return asyncio.run(main())


async def ask(server, user: int, chat: int, text: str):
    """Send `text` as `user` in `chat` and return the bot's next message there."""
    before = len(server.messages(chat))
    server.push_text(user, chat, text)
    return (await server.wait_for_messages(chat, before + 1))[before]


async def press(server, user: int, chat: int, question, button: int = 0):
    """Press a button under the bot's `question` as `user`; return the bot's next message in `chat`."""
    before = len(server.messages(chat))
    server.push_callback(user, question.result, question.buttons[button]["callback_data"])
    return (await server.wait_for_messages(chat, before + 1))[before]


async def send_photo(server, user: int, chat: int, data: bytes):
    before = len(server.messages(chat))
    server.push_photo(user, chat, data)
    return (await server.wait_for_messages(chat, before + 1))[before]


# -- 1. access managed from Telegram --------------------------------------------------------------
def test_access_from_telegram_applies_at_once_and_survives_a_restart(service, tmp_path, samples):
    service.enroll("Ana", load_image(samples / "s2" / "1.jpg"), actor="test")
    photo = jpeg(samples, "s2", 5)

    async def first(server):
        refusal = await send_photo(server, NEWBIE, NEWBIE, photo)
        assert "not allowed" in refusal.text and "/whoami" in refusal.text
        assert (await ask(server, NEWBIE, NEWBIE, "/whoami")).text.startswith(f"Your user id: {NEWBIE}")
        assert (await ask(server, USER, USER, "/allow 4004")).text == EN["only_hr"]
        assert (await ask(server, HR, HR, "/allow")).text.startswith("Usage: /allow ID [hr]")
        assert (await ask(server, HR, HR, "/allow 4004")).text == "4004 is now user."
        answer = await send_photo(server, NEWBIE, NEWBIE, photo)  # at once, no restart
        assert answer.method == "sendPhoto" and "Ana" in answer.text
        assert (await ask(server, NEWBIE, NEWBIE, "/users")).text == EN["only_hr"]

    async def after_restart(server):
        answer = await send_photo(server, NEWBIE, NEWBIE, photo)
        assert answer.method == "sendPhoto" and "Ana" in answer.text
        assert (await ask(server, HR, HR, "/revoke 4004")).text == "4004 may no longer use the bot."
        assert "not allowed" in (await send_photo(server, NEWBIE, NEWBIE, photo)).text  # at once

    async def second_restart(server):
        assert "not allowed" in (await send_photo(server, NEWBIE, NEWBIE, photo)).text
        fixed = (await ask(server, HR, HR, "/revoke 1001")).text
        assert "FACEBOT_HR_IDS" in fixed and "cannot be revoked from Telegram" in fixed
        assert (await ask(server, HR, HR, "/revoke 4004")).text == "4004 is not on the list."
        assert "a group chat" in (await ask(server, HR, HR, f"/allow {GROUP} hr")).text
        assert (await ask(server, HR, HR, f"/allow {HR2} hr")).text == "5005 is now HR."
        assert (await ask(server, HR, HR, f"/allow {GROUP}")).text == f"{GROUP} is now user."
        assert "Ana" in (await ask(server, HR2, HR2, "/list")).text  # the new HR, at once
        listing = (await ask(server, HR2, HR2, "/users")).text
        assert listing.startswith(f"HR: {HR} (env), {HR2}\nUsers and chats: {GROUP}, {USER} (env)")
        kept = (await ask(server, HR2, HR2, f"/revoke {USER}")).text
        assert "FACEBOT_USER_IDS" in kept

    servers = run_bots(service, tmp_path, first, after_restart, second_restart)
    assert all(s.downloads.count(p) <= 1 for s in servers for p in s.downloads)
    entries = [(e["action"], e["actor"], e.get("id"), e.get("role")) for e in service.audit_log(100)
               if e["action"].startswith("access")]
    assert entries == [("access-allow", f"tg:{HR}", NEWBIE, "user"), ("access-revoke", f"tg:{HR}", NEWBIE, "user"),
                       ("access-allow", f"tg:{HR}", HR2, "hr"), ("access-allow", f"tg:{HR}", GROUP, "user")]
    assert service.access().to_setting() == {"users": [GROUP], "hr": [HR2]}


# -- 2. menus and language ----------------------------------------------------------------------
async def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_menus_per_scope_and_language_follow_hr_changes(service, tmp_path):
    chat = lambda user_id: {"type": "chat", "chat_id": user_id}  # noqa: E731

    async def scenario(server):
        await wait_for(lambda: len(server.menus()) >= 6)  # default and HR's chat, 3 languages each
        menus = server.menus()
        by_scope = {(s.get("chat_id"), lang): commands for s, lang, commands in menus}
        assert [s["type"] for s, _, _ in menus] == ["default"] * 3 + ["chat"] * 3
        assert by_scope[(None, "en")] == [("help", "what I can do for you"), ("whoami", "your user id and this chat's id")]
        assert by_scope[(None, "es")] == [("help", "lo que puedo hacer por ti"), ("whoami", "tu id de usuario y el id de este chat")]
        assert by_scope[(None, None)] == by_scope[(None, "en")]  # any other language: FACEBOT_LANG
        hr_menu = dict(by_scope[(HR, "es")])
        assert {"enroll", "samples", "allow", "revoke", "users"} <= set(hr_menu) and hr_menu["list"] == "personas registradas y sus muestras"
        assert all(description and description != command for _, _, commands in menus for command, description in commands)

        await ask(server, HR, HR, f"/allow {HR2} hr")
        await wait_for(lambda: len(server.menus()) >= 9)
        assert [(s, lang) for s, lang, c in server.menus()[6:] if c] == [(chat(HR2), "en"), (chat(HR2), "es"), (chat(HR2), None)]
        await ask(server, HR, HR, f"/revoke {HR2}")  # back to the users' menu
        await wait_for(lambda: len(server.menus()) >= 12)
        assert [(s, lang, c) for s, lang, c in server.menus()[9:]] == [(chat(HR2), lang, None) for lang in ("en", "es", None)]
        await ask(server, HR, HR, f"/allow {USER}")  # a user: no menu of their own
        await asyncio.sleep(0.3)
        assert len(server.menus()) == 12

    run_bots(service, tmp_path, scenario)



def test_hr_gets_the_hr_menu_in_the_groups_they_write_in(service, tmp_path):
    """A group shows everyone the users' menu; an HR person who writes there gets the HR menu
    for that group (BotCommandScopeChatMember), once, and loses it with their HR role."""
    member = lambda user_id: {"type": "chat_member", "chat_id": GROUP, "user_id": user_id}  # noqa: E731

    async def scenario(server):
        await wait_for(lambda: len(server.menus()) >= 6)  # default and HR's private chat
        start = len(server.menus())
        await ask(server, HR, GROUP, "/whoami")
        await wait_for(lambda: len(server.menus()) >= start + 3)
        added = server.menus()[start:]
        assert [(scope, lang) for scope, lang, _ in added] == [(member(HR), "en"), (member(HR), "es"), (member(HR), None)]
        assert {"enroll", "samples", "export"} <= {command for command, _ in added[0][2]}
        await ask(server, HR, GROUP, "/whoami")  # already there: not set again
        await ask(server, USER, GROUP, "/whoami")  # not HR: the group's menu stays the users'
        await ask(server, HR, HR, f"/allow {HR2} hr")
        await ask(server, HR2, GROUP, "/whoami")
        await wait_for(lambda: any(scope == member(HR2) for scope, _, _ in server.menus()))
        await ask(server, HR, HR, f"/revoke {HR2}")
        await wait_for(lambda: len([1 for scope, _, _ in server.menus() if scope == member(HR2)]) >= 6)
        assert [c is None for scope, _, c in server.menus() if scope == member(HR2)] == [False] * 3 + [True] * 3
        assert len([1 for scope, _, _ in server.menus() if scope == member(HR)]) == 3

    run_bots(service, tmp_path, scenario, users=(USER, GROUP))


def test_each_person_is_answered_in_their_language(service, tmp_path, samples):
    async def scenario(server):
        server.languages.update({USER: "es-419", NEWBIE: "es", HR: "fr"})
        assert (await ask(server, USER, USER, "/help")).text == ES["help_user"]
        answer = await send_photo(server, USER, USER, jpeg(samples, "s5", 1))
        assert answer.text.splitlines() == ["1 cara(s):", "1. desconocido", ES["nobody_enrolled"]]  # nobody yet
        assert "no tienes permiso" in (await send_photo(server, NEWBIE, NEWBIE, jpeg(samples, "s5", 1))).text
        assert (await ask(server, HR, HR, "/list")).text == EN["list_empty"]  # French: FACEBOT_LANG
        assert (await ask(server, USER2, USER2, "/help")).text == EN["help_user"]  # no language given

    run_bots(service, tmp_path, scenario, users=(USER, USER2))


def test_facebot_lang_is_the_default_for_other_languages(service, tmp_path):
    async def scenario(server):
        server.languages.update({USER: "en-GB", USER2: "de"})
        assert (await ask(server, USER, USER, "/help")).text == EN["help_user"]
        assert (await ask(server, USER2, USER2, "/help")).text == ES["help_user"]

    run_bots(service, tmp_path, scenario, users=(USER, USER2), lang="es")


# -- 3. attendance that lasts -------------------------------------------------------------------
def test_watcher_asks_for_one_sighting_per_person_per_minute():
    from datetime import datetime, timedelta

    from facebot.camera.watcher import Watcher
    from facebot.recognition import Identification

    watcher = Watcher(k=3, m=5)
    t0 = datetime(2026, 11, 23, 9, 0)
    due = []
    for second in range(200):  # Ana all along; Bob from 30 s on, beside her
        faces = [Identification((100, 100, 80, 100), "Ana", 0.5, True)]
        if second >= 30:
            faces.append(Identification((400, 100, 80, 100), "Bob", 0.5, True))
        now = t0 + timedelta(seconds=second)
        watcher.update(faces, now)
        due += [(name, second) for name in watcher.sightings(now)]
    # Confirmed on the 3rd frame (3 of 5 votes), then once a minute each, on the clock passed in.
    assert due == [("Ana", 2), ("Bob", 32), ("Ana", 62), ("Bob", 92), ("Ana", 122), ("Bob", 152), ("Ana", 182)]
    watcher.update([Identification((100, 100, 80, 100), "Ana", 0.5, True)], t0)  # the clock set back an hour
    assert watcher.sightings(t0) == ["Ana"]


def test_attendance_from_a_camera_in_the_cli_the_bot_and_the_daily_summary(service, tmp_path, samples):
    """A camera over a video of two enrolled people records both in the gallery; `facebot
    attendance` and HR's /attendance show the same table; the bot's daily summary job sends one
    message for every camera, once, even after a restart."""
    import json
    import os
    import subprocess
    import sys
    from datetime import datetime, time as dtime
    from zoneinfo import ZoneInfo

    from tests.test_webcam import REPO, write_video

    zone = ZoneInfo("America/Bogota")
    service.enroll("Ana", load_image(samples / "s2" / "1.jpg"), actor="test")
    service.enroll("Bob", load_image(samples / "s11" / "1.jpg"), actor="test")
    video = tmp_path / "door.mp4"
    write_video(video, [load_image(samples / p / "9.jpg") for p in ("s2", "s11")], seconds=3.0)
    env = {**os.environ, "FACEBOT_TZ": "America/Bogota", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = datetime.now(zone).replace(microsecond=0)
    camera = subprocess.run([sys.executable, "-m", "facebot", *service.cli_args, "webcam", "--source", str(video),
                             "--camera-name", "front door", "--dry-run", "--summary-at", "18:00"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert camera.returncode == 0, camera.stderr[-3000:]
    assert "--summary-at is deprecated" in camera.stderr
    service.record_sighting("lobby", "Ana")  # a second camera saw Ana too
    sightings = [(e["actor"], e["camera"], e["name"]) for e in service.audit_log(100) if e["action"] == "sighting"]
    assert sightings == [("camera:front door", "front door", "Ana"), ("camera:front door", "front door", "Bob"),
                         ("camera:lobby", "lobby", "Ana")]  # 3 s each: one sighting per person per camera

    def facebot(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "facebot", *service.cli_args, "attendance", *args],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    table = json.loads(facebot("--json"))
    assert table["date"] == started.date().isoformat() and table["timezone"] == "America/Bogota"
    people = {p["name"]: p for p in table["people"]}
    assert list(people) == ["Ana", "Bob"]
    assert people["Ana"]["cameras"] == ["front door", "lobby"] and people["Bob"]["cameras"] == ["front door"]
    for person in people.values():
        first, last = datetime.fromisoformat(person["first"]), datetime.fromisoformat(person["last"])
        assert started <= first <= last <= datetime.now(zone) and first.utcoffset() == zone.utcoffset(first)
    assert people["Ana"]["last"] > people["Bob"]["first"]  # the lobby saw her after the door saw Bob
    csv_lines = facebot("--csv").splitlines()
    assert csv_lines[0] == "name,cameras,first,last" and csv_lines[1].startswith("Ana,front door;lobby,")
    assert json.loads(facebot("--json", "--date", "2020-01-01"))["people"] == []

    hhmm = lambda iso: datetime.fromisoformat(iso).strftime("%H:%M")  # noqa: E731
    expected = [f"Ana: {hhmm(people['Ana']['first'])}–{hhmm(people['Ana']['last'])} (front door, lobby)",
                f"Bob: {hhmm(people['Bob']['first'])}–{hhmm(people['Bob']['last'])} (front door)"]

    async def scenario(server):
        shown = await ask(server, HR, HR, "/attendance")
        assert shown.text.splitlines() == [f"Seen on {started.date()} (2):", *expected]
        assert (await ask(server, HR, HR, "/attendance 2020-01-01")).text == "Nobody was seen on 2020-01-01."
        assert (await ask(server, HR, HR, "/attendance yesterday")).text == EN["attendance_usage"]
        assert (await ask(server, USER, USER, "/attendance")).text == EN["only_hr"]
        application = server.application
        [job] = application.job_queue.get_jobs_by_name("daily-summary")
        assert job.next_t.astimezone(zone).time() == dtime(18, 0)
        await job.run(application)  # as the scheduler would at 18:00
        [summary] = await server.wait_for_messages(ALERT_CHAT, 1)
        assert summary.text.splitlines() == [f"Attendance on {started.date()}, all cameras (2):", *expected]
        await job.run(application)  # a second run the same day sends nothing
        await asyncio.sleep(0.3)
        assert len(server.messages(ALERT_CHAT)) == 1

    async def after_restart(server):
        [job] = server.application.job_queue.get_jobs_by_name("daily-summary")
        await job.run(server.application)
        await asyncio.sleep(0.3)
        assert server.messages(ALERT_CHAT) == []  # it went out before the restart

    run_bots(service, tmp_path, scenario, after_restart, summary_at=dtime(18, 0), tz=zone, alert_chat_id=ALERT_CHAT)
    assert [e["date"] for e in service.audit_log(100) if e["action"] == "summary"] == [started.date().isoformat()]


# -- 4. closing the loop ------------------------------------------------------------------------
def test_an_unknown_face_near_someone_can_be_added_to_them_in_two_taps(service, tmp_path, samples):
    """A strict threshold leaves Ana's second photo unknown, though she is its nearest person:
    HR is offered "This is Ana: add a sample…" (users are not told whom it resembles); one
    tap, then consent, and Ana has two samples. A face far from everyone gets no offer."""
    service.enroll("Ana", load_image(samples / "s2" / "1.jpg"), actor="test", consent="form HR-1")
    service.set_threshold(0.3, actor="test")

    async def scenario(server):
        reply = await send_photo(server, HR, HR, jpeg(samples, "s2", 9))
        assert reply.text.splitlines()[1] == "1. unknown" and "Ana" not in reply.text
        assert [b["text"] for b in reply.buttons] == ["This is Ana: add a sample…", "Enroll this face…"]
        seen_by_user = await send_photo(server, USER, USER, jpeg(samples, "s2", 9))
        assert "Ana" not in str(seen_by_user.params.get("reply_markup")) and "Ana" not in seen_by_user.text
        question = await press(server, HR, HR, reply)  # tap 1
        assert question.text.startswith("Did Ana consent") and question.buttons[0]["text"] == "Consent given"
        assert (await press(server, HR, HR, question)).text == "Enrolled Ana: 2 sample(s) now."  # tap 2
        stranger = await send_photo(server, HR, HR, jpeg(samples, "s37", 1))
        assert [b["text"] for b in stranger.buttons] == ["Enroll this face…"]

    run_bots(service, tmp_path, scenario)
    assert [s.created_by for s in service.samples("Ana")[1]] == ["test", f"tg:{HR}"]


def test_a_face_too_small_to_enroll_is_offered_no_enrollment(service, tmp_path, samples, recognizer):
    """A face under 48 px wide would be refused (service.MIN_ENROLL_FACE): HR gets no
    "Enroll this face…" under it in a reply, and a camera keeps no such face to be named."""
    from facebot.recognition.images import encode_jpeg
    from tests.images import face_shrunk_to

    photo = load_image(samples / "s37" / "1.jpg")
    far = face_shrunk_to(photo, recognizer.faces(photo)[0].pixels, 36)

    async def scenario(server):
        reply = await send_photo(server, HR, HR, encode_jpeg(far))
        assert reply.text.splitlines()[1] == "1. unknown" and reply.buttons == []

    run_bots(service, tmp_path, scenario)
    embedding = recognizer.faces(far)[0].embedding
    assert service.add_pending_face(embedding, "door", pixels=36) is None
    assert service.add_pending_face(embedding, "door", pixels=120) is not None
    kept = service.add_pending_face(embedding, "door", pixels=60)
    assert service.pending_face(kept).pixels == 60  # enrolled with the consent question's small-face note
    assert service.add_pending_face(embedding, "door", pixels=120, visible=0.6) is None  # cut by the frame's edge


def test_an_unknown_face_is_enrolled_from_its_button_and_named_in_the_next_photo(service, tmp_path, samples):
    async def scenario(server):
        reply = await send_photo(server, HR, HR, jpeg(samples, "s5", 1))
        assert reply.text.splitlines()[1] == "1. unknown"
        [button] = reply.buttons
        assert button["text"] == "Enroll this face…" and button["callback_data"].startswith("face:")
        server.push_callback(USER, reply.result, button["callback_data"])  # not HR: refused
        await wait_for(lambda: "answerCallbackQuery" in server.methods())
        assert [c.params.get("text") for c in server.calls if c.method == "answerCallbackQuery"] == [EN["only_hr"]]

        server.push_callback(HR, reply.result, button["callback_data"])  # tap 1
        prompt = (await server.wait_for_messages(HR, 2))[1]
        assert prompt.text == "Who is face #1? Reply with the name (or /cancel)."
        assert prompt.params["reply_markup"]["force_reply"] is True
        assert (await ask(server, HR, HR, "<b>Eve</b>")).text.startswith("That name cannot be used")  # asked again
        question = await ask(server, HR, HR, "Eve")  # send the name
        assert question.text.startswith("Did Eve consent") and question.buttons[0]["text"] == "Consent given"
        assert service.people() == []  # nothing enrolled before HR confirms consent
        assert (await press(server, HR, HR, question)).text == "Enrolled Eve: 1 sample(s) now."  # tap 2
        assert (await ask(server, HR, HR, "hello")).text == EN["text_hint"]  # the next text is text again

        named = await send_photo(server, USER, USER, jpeg(samples, "s5", 9))  # another photo of her
        assert named.text.splitlines()[1].startswith("1. Eve (distance")
        [report] = named.buttons  # users get "not this person", never "enroll"
        assert report["text"] == "#1 is not Eve"
        server.push_callback(USER, named.result, report["callback_data"])
        await wait_for(lambda: len([c for c in server.calls if c.method == "answerCallbackQuery"]) == 4)
        answer = [c for c in server.calls if c.method == "answerCallbackQuery"][-1]
        assert answer.params["text"] == "Thank you: your report that face #1 is not Eve was recorded."

    run_bots(service, tmp_path, scenario)
    assert {p.name: p.samples for p in service.people()} == {"Eve": 1}
    entries = [e for e in service.audit_log(20) if e["action"] in ("enroll", "report-wrong-name")]
    assert [(e["action"], e["actor"], e["name"]) for e in entries] == [("enroll", f"tg:{HR}", "Eve"),
                                                                         ("report-wrong-name", f"tg:{USER}", "Eve")]
    assert entries[0]["source"] == "photo" and entries[0]["added"] == 1
    assert entries[0]["consent"].startswith(f"confirmed in Telegram by HR {HR} on ")
    assert [s.consent for s in service.gallery.samples_of("Eve")] == [entries[0]["consent"]]


def test_a_camera_alert_face_is_named_by_hr_through_the_bot(service, tmp_path, samples):
    from datetime import datetime, timedelta, timezone

    embedding = service.recognizer.faces(load_image(samples / "s37" / "1.jpg"))[0].embedding
    face_id = service.add_pending_face(embedding, "front door")  # what the camera does for an unknown face
    stale = service.add_pending_face(embedding, "lobby", now=datetime.now(timezone.utc) - timedelta(hours=25))
    assert service.pending_face(stale) is None and service.pending_face(face_id).camera == "front door"
    alert = {"message_id": 77, "date": 0, "chat": {"id": ALERT_CHAT, "type": "supergroup", "title": "alerts"},
             "caption": "Unknown person — front door", "reply_markup": {"inline_keyboard": [[
                 {"text": "Enroll this face…", "callback_data": f"cam:{face_id}"}]]}}

    async def scenario(server):
        server.push_callback(HR, alert, f"cam:{face_id}")
        [prompt] = await server.wait_for_messages(ALERT_CHAT, 1)
        assert prompt.text.startswith("Who is this face (front door, ")
        server.push_text(HR, ALERT_CHAT, "Zoe", reply_to=prompt.result)
        question = (await server.wait_for_messages(ALERT_CHAT, 2))[1]
        assert question.text.startswith("Did Zoe consent")
        assert (await press(server, HR, ALERT_CHAT, question)).text == "Enrolled Zoe: 1 sample(s) now."
        server.push_callback(HR, alert, f"cam:{face_id}")  # the face was used: gone
        await wait_for(lambda: server.methods().count("answerCallbackQuery") == 3)  # cam, consent, cam
        assert [c.params.get("text") for c in server.calls if c.method == "answerCallbackQuery"][-1] == EN["face_expired"]
        named = await send_photo(server, USER, USER, jpeg(samples, "s37", 5))
        assert named.text.splitlines()[1].startswith("1. Zoe (distance")

    run_bots(service, tmp_path, scenario, users=(USER, ALERT_CHAT))
    assert service.pending_face(face_id) is None
    [entry] = [e for e in service.audit_log(20) if e["action"] == "enroll"]
    assert entry["name"] == "Zoe" and entry["source"] == "camera:front door"


# -- 5. deployment: passwords out of logs and alerts, camera outages ----------------------------
@pytest.mark.parametrize("url, shown", [
    ("rtsp://admin:s3cret@10.0.0.20/stream1", "rtsp://admin:***@10.0.0.20/stream1"),
    ("rtsp://admin:p@ss:w0rd@cam.local:554/h264?channel=1", "rtsp://admin:***@cam.local:554/h264?channel=1"),
    ("http://cam.local/video.mjpg?user=admin&password=s3cret&res=hd", "http://cam.local/video.mjpg?user=admin&password=***&res=hd"),
    ("rtsp://10.0.0.20/stream1", "rtsp://10.0.0.20/stream1"),
    ("0", "0"),
    ("visit.mp4", "visit.mp4"),
])
def test_camera_urls_are_shown_without_their_password(url, shown):
    from facebot.camera.source import redact_url

    assert redact_url(url) == shown


def connection(frames: int | None):
    """A stand-in camera connection: `frames` frames, then nothing; None: it fails to open."""
    from tests.test_webcam import FlakyCamera

    return FlakyCamera(frames is not None, frames or 0)


def test_an_outage_is_reported_once_and_the_password_never_logged(caplog):
    import time

    from facebot.camera.source import FrameSource

    url = "rtsp://admin:s3cret@10.0.0.20/stream1"
    # 5 frames; 4 failed reconnects and one that opens but gives nothing (one outage); 3 frames;
    # a second outage; 4 frames.
    plan = iter([5, None, None, 0, None, None, 3, None, None, 4])
    events = []
    source = FrameSource(url, opener=lambda _: connection(next(plan, None)), max_backoff=0.02,
                         on_status=lambda online, seconds: events.append(online), offline_after_s=0.0).start()
    deadline = time.monotonic() + 10
    while source.frames_read < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    source.stop()
    assert source.frames_read == 12
    assert events[:4] == [False, True, False, True]  # one pair per outage, whatever the reconnects
    assert "s3cret" not in caplog.text and "admin:***@10.0.0.20" in caplog.text


def test_an_unreachable_camera_is_posted_offline_once_without_its_password(tmp_path, service):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from tests.test_webcam import REPO

    with socket.socket() as probe:  # a port where nothing listens: the camera refuses connections
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"rtsp://admin:s3cret@127.0.0.1:{port}/stream1"
    server = FakeTelegram().start()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": server.token, "TELEGRAM_API_URL": server.url,
           "FACEBOT_ALERT_CHAT_ID": str(ALERT_CHAT), "FACEBOT_CAMERA_SOURCE": url, "TF_CPP_MIN_LOG_LEVEL": "3"}
    camera = subprocess.Popen([sys.executable, "-m", "facebot", *service.cli_args, "-v", "webcam", "--camera-name", "lobby",
                               "--offline-after", "1"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 180
        while not server.messages(ALERT_CHAT) and time.monotonic() < deadline and camera.poll() is None:
            time.sleep(0.2)
        time.sleep(3)  # more failed reconnects: still one message
        camera.send_signal(signal.SIGTERM)
        out, err = camera.communicate(timeout=60)
    finally:
        if camera.poll() is None:
            camera.kill()
        server.stop()
    alerts = [a.text for a in server.messages(ALERT_CHAT)]
    assert len(alerts) == 1, (alerts, err[-2000:])
    assert alerts[0].startswith(f"Camera lobby (rtsp://admin:***@127.0.0.1:{port}/stream1) is offline since ")
    assert "unavailable; retrying" in err and "s3cret" not in err + out  # logs, with -v, and OpenCV's own
    assert [e["action"] for e in service.audit_log(10)] == ["camera-offline"]
