"""End-to-end tests of the Telegram bot: the real PTB Application, polling over HTTP a fake
Bot API server on 127.0.0.1 (tests/fake_telegram.py), with the real models and sample faces."""
from __future__ import annotations

import asyncio
import json
import re
import struct
import time
import zlib

import numpy as np
import pytest

from facebot.config import BotConfig
from facebot.bot.telegram_bot import build_application
from facebot.texts import EN, ES, text
from facebot.recognition import DEFAULT_RULE, DecisionRule, decode_image, load_image
from facebot.recognition.images import encode_jpeg
from tests.fake_telegram import FakeTelegram, polling
from tests.images import face_cut_by_edge, face_shrunk_to, two_people

HR, USER, STRANGER, GROUP = 1001, 2002, 3003, -5005


def jpeg(samples, person: str, number: int) -> bytes:
    return (samples / person / f"{number}.jpg").read_bytes()


def enroll(service, samples, name: str, person: str, number: int = 1) -> None:
    service.enroll(name, load_image(samples / person / f"{number}.jpg"), actor="test")


@pytest.fixture()
def service(service_on_each_store):
    """Every bot test runs on a TinyDB gallery and on a PostgreSQL one."""
    return service_on_each_store


@pytest.fixture()
def run_bot(service, tmp_path):
    """run_bot(scenario, users=..., lang=...): start the bot against a fresh fake server, await
    scenario(server), stop everything; returns the server for inspection afterwards."""

    def runner(scenario, users=(USER,), lang="en", timeout=60.0) -> FakeTelegram:
        async def main() -> FakeTelegram:
            server = FakeTelegram().start()
            config = BotConfig(token=server.token, api_url=server.url, data_dir=str(tmp_path),
                               hr_ids=frozenset({HR}), user_ids=frozenset(users), lang=lang)
            try:
                async with polling(build_application(config, service)):
                    await asyncio.wait_for(scenario(server), timeout)
            finally:
                server.stop()
            return server

        return asyncio.run(main())

    return runner


def names(service) -> dict[str, int]:
    return {p.name: p.samples for p in service.gallery.people()}


async def consent(server, chat: int, question, user: int = HR) -> "Call":
    """Press "Consent given" under an enrollment's consent question; return the bot's answer
    (the question edited to say what was enrolled)."""
    before = len(server.messages(chat))
    assert question.buttons[0]["text"].startswith("Consent given") and question.buttons[1]["text"] == "Cancel"
    server.push_callback(user, question.result, question.buttons[0]["callback_data"])
    return (await server.wait_for_messages(chat, before + 1))[before]


CONSENT_NOTE = r"confirmed in Telegram by HR {} on \d{{4}}-\d\d-\d\d \d\d:\d\d UTC"


def test_a_photo_before_anyone_is_enrolled_says_why_every_face_is_unknown(run_bot, service, samples):
    async def scenario(server):
        server.push_photo(USER, USER, jpeg(samples, "s2", 1))
        [answer] = await server.wait_for_messages(USER, 1)
        assert answer.method == "sendPhoto" and "unknown" in answer.text
        assert "Nobody is enrolled yet" in answer.text and "/enroll" in answer.text

    run_bot(scenario)


def test_enroll_by_caption_then_identify(run_bot, service, samples):
    async def scenario(server):
        server.push_photo(HR, HR, jpeg(samples, "s2", 1), caption="/enroll Ana María")
        [question] = await server.wait_for_messages(HR, 1)  # the face found, and one question: consent
        assert question.method == "sendPhoto" and decode_image(question.photo).shape == (160, 160, 3)
        assert "Did Ana María consent" in question.text and names(service) == {}  # nothing stored yet
        reply = await consent(server, HR, question)
        assert reply.method == "editMessageCaption" and reply.text == "Enrolled Ana María: 1 sample(s) now."

        server.push_photo(USER, USER, jpeg(samples, "s2", 5))
        [answer] = await server.wait_for_messages(USER, 1)
        assert answer.method == "sendPhoto"
        assert answer.text.splitlines()[1].startswith("1. Ana María (distance 0.")
        assert decode_image(answer.photo).shape == load_image(samples / "s2" / "5.jpg").shape

        server.push_photo(USER, USER, jpeg(samples, "s5", 1))  # never enrolled
        stranger = (await server.wait_for_messages(USER, 2))[1]
        assert "unknown" in stranger.text and "Ana" not in stranger.text

    run_bot(scenario)
    actions = [(e["action"], e["actor"]) for e in service.gallery.audit_log(10)]
    assert actions == [("enroll", f"tg:{HR}"), ("identify", f"tg:{USER}"), ("identify", f"tg:{USER}")]
    [sample] = service.gallery.samples_of("Ana María")
    assert re.fullmatch(CONSENT_NOTE.format(HR), sample.consent) and sample.created_by == f"tg:{HR}"
    assert service.gallery.audit_log(10)[0]["consent"] == sample.consent


@pytest.mark.parametrize("weak, words", [
    (lambda photo, face: face_shrunk_to(photo, face.pixels, 36), ("too small", "closer photo")),
    (lambda photo, face: face_cut_by_edge(photo, face.box, 0.3), ("edge", "whole face")),
], ids=["too small", "cut by the edge"])
def test_enroll_refuses_a_face_that_would_make_a_weak_sample(run_bot, service, samples, recognizer, weak, words):
    photo = load_image(samples / "s23" / "1.jpg")
    weak_photo = weak(photo, recognizer.faces(photo)[0])

    async def scenario(server):
        server.push_photo(HR, HR, encode_jpeg(weak_photo), caption="/enroll Ana")
        [reply] = await server.wait_for_messages(HR, 1)
        assert all(word in reply.text for word in words)

    run_bot(scenario)
    assert names(service) == {}


def test_a_small_enrollment_face_gets_a_note_in_the_consent_question(run_bot, service, samples, recognizer):
    """A face under 64 px (but over the 48 px gate) is enrolled, and the consent question
    says that a closer photo would make a better sample, so HR can cancel and send one."""
    photo = load_image(samples / "s23" / "1.jpg")
    small = face_shrunk_to(photo, recognizer.faces(photo)[0].pixels, 58)

    async def scenario(server):
        server.push_photo(HR, HR, encode_jpeg(small), caption="/enroll Ana")
        [question] = await server.wait_for_messages(HR, 1)
        assert "px wide" in question.text and "closer photo" in question.text
        await consent(server, HR, question)
        server.push_photo(HR, HR, jpeg(samples, "s5", 1), caption="/enroll Bea")
        question = (await server.wait_for_messages(HR, 3))[2]
        assert "closer photo" not in question.text

    run_bot(scenario)
    assert names(service) == {"Ana": 1}


def test_a_face_chosen_in_a_group_photo_must_be_big_enough(run_bot, service, samples, recognizer):
    small = load_image(samples / "s5" / "1.jpg")
    small = face_shrunk_to(small, recognizer.faces(small)[0].pixels, 72)  # 36 px once two_people halves it
    two = two_people(load_image(samples / "s2" / "1.jpg"), small)

    async def scenario(server):
        server.push_photo(HR, HR, encode_jpeg(two), caption="/enroll Bea")
        [choice] = await server.wait_for_messages(HR, 1)
        server.push_callback(HR, choice.result, choice.buttons[1]["callback_data"])
        refusal = (await server.wait_for_messages(HR, 2))[1]
        assert "too small" in refusal.text

    run_bot(scenario)
    assert names(service) == {}


def test_enroll_with_a_photo_of_two_people_asks_which_face(run_bot, service, samples):
    two = two_people(load_image(samples / "s2" / "1.jpg"), load_image(samples / "s5" / "1.jpg"))

    async def scenario(server):
        server.push_photo(HR, HR, encode_jpeg(two), caption="/enroll Bea")
        [choice] = await server.wait_for_messages(HR, 1)  # the photo, its faces numbered biggest first
        assert choice.method == "sendPhoto" and decode_image(choice.photo).shape == two.shape
        assert "2 faces" in choice.text and "Which one is Bea" in choice.text
        assert [b["text"] for b in choice.buttons] == ["Face 1", "Face 2", "Cancel"]
        server.push_callback(USER, choice.result, choice.buttons[1]["callback_data"])  # not HR: refused
        server.push_callback(HR, choice.result, choice.buttons[1]["callback_data"])
        question = (await server.wait_for_messages(HR, 2))[1]
        assert question.method == "sendPhoto" and decode_image(question.photo).shape == (160, 160, 3)
        assert "Did Bea consent" in question.text and names(service) == {}
        assert "Bea: 1 sample" in (await consent(server, HR, question)).text
        server.push_callback(HR, choice.result, choice.buttons[0]["callback_data"])  # used up
        for _ in range(100):
            if any(c.method == "answerCallbackQuery" and "expired" in c.text for c in server.calls):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("a second face was offered from a used-up choice")
        refusals = [c.text for c in server.calls if c.method == "answerCallbackQuery" and c.text]
        assert refusals[0] == "Sorry, only HR may do that."

    run_bot(scenario)
    assert names(service) == {"Bea": 1}
    assert [r.name for r in service.identify(load_image(samples / "s5" / "9.jpg"), audit=False) if r.known] == ["Bea"]
    assert not any(r.known for r in service.identify(load_image(samples / "s2" / "9.jpg"), audit=False))


def test_enroll_by_reply_and_by_following_photo(run_bot, service, samples):
    async def scenario(server):
        photo = server.push_photo(HR, HR, jpeg(samples, "s11", 1))
        await server.wait_for_messages(HR, 1)  # identified as unknown first
        server.push_text(HR, HR, "/enroll Bob", reply_to=photo)
        question = (await server.wait_for_messages(HR, 2))[1]
        assert "Bob: 1 sample" in (await consent(server, HR, question)).text

        server.push_text(HR, HR, "/enroll  bob ")
        prompt = (await server.wait_for_messages(HR, 4))[3]
        assert "send one photo of bob" in prompt.text.lower()
        server.push_photo(HR, HR, jpeg(samples, "s11", 5))
        question = (await server.wait_for_messages(HR, 5))[4]
        assert question.method == "sendPhoto" and "Did bob consent" in question.text
        assert "Bob: 2 sample" in (await consent(server, HR, question)).text

    run_bot(scenario)
    assert names(service) == {"Bob": 2}


def test_group_picture_gets_one_label_per_face(run_bot, service, samples):
    from facebot.lab.demo import mosaic

    for name, person in [("Ana", "s2"), ("Bob", "s11"), ("Carla", "s23")]:
        enroll(service, samples, name, person)
    group = mosaic([load_image(samples / p / "13.jpg") for p in ("s2", "s11", "s23", "s5")])

    async def scenario(server):
        server.push_photo(USER, GROUP, encode_jpeg(group))  # the group chat is allowed, not the user
        [answer] = await server.wait_for_messages(GROUP, 1)
        lines = answer.text.splitlines()
        assert lines[0] == "4 face(s):"
        labels = sorted(line.split(". ", 1)[1].split(" (")[0] for line in lines[1:])
        assert labels == ["Ana", "Bob", "Carla", "unknown"]
        assert decode_image(answer.photo).shape == group.shape

    run_bot(scenario, users=(GROUP,))


def test_non_hr_enroll_is_refused_and_changes_nothing(run_bot, service, samples):
    async def scenario(server):
        server.push_photo(USER, USER, jpeg(samples, "s2", 1), caption="/enroll Eve")
        server.push_text(USER, USER, "/enroll Eve")
        server.push_text(USER, USER, "/delete Eve")
        replies = await server.wait_for_messages(USER, 3)
        assert all(r.text == EN["only_hr"] for r in replies)

    server = run_bot(scenario)
    assert names(service) == {} and service.gallery.audit_log(10) == []
    assert "getFile" not in server.methods() and server.downloads == []


def test_stranger_is_refused_once_and_nothing_is_downloaded(run_bot, service, samples):
    async def scenario(server):
        server.push_photo(STRANGER, STRANGER, jpeg(samples, "s2", 1))
        [refusal] = await server.wait_for_messages(STRANGER, 1)
        assert "/whoami" in refusal.text and "not allowed" in refusal.text
        server.push_document(STRANGER, STRANGER, jpeg(samples, "s2", 5))
        server.push_text(STRANGER, STRANGER, "/whoami")
        replies = await server.wait_for_messages(STRANGER, 2)
        await asyncio.sleep(0.3)
        assert [r.text for r in server.messages(STRANGER)][1] == f"Your user id: {STRANGER}\nThis chat's id: {STRANGER}"
        assert len(server.messages(STRANGER)) == 2 == len(replies)  # no second refusal

    server = run_bot(scenario)
    assert "getFile" not in server.methods() and server.downloads == []
    assert service.gallery.audit_log(10) == []


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that claims width x height pixels: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64  # an iPhone photo sent as a file


def test_bad_input_gets_a_reply_and_the_bot_carries_on(run_bot, samples):
    good = jpeg(samples, "s2", 1)
    cases = [  # (push, expected words in the reply)
        (lambda s: s.push_photo(USER, USER, good[: len(good) // 2]), "truncated"),
        (lambda s: s.push_document(USER, USER, b"%PDF-1.4 hello", "cv.pdf", "application/pdf"), "not an image"),
        (lambda s: s.push_photo(USER, USER, b"x", file_size=25 * 1024 * 1024), "too big"),
        (lambda s: s.push_document(USER, USER, png_header(60000, 60000), "bomb.png", "image/png"), "too large"),
        (lambda s: s.push_document(USER, USER, b"\0garbage" * 100, "x.jpg", "image/jpeg"), "not a supported image"),
        (lambda s: s.push_message(USER, USER, sticker={"file_id": "st", "file_unique_id": "st", "width": 512,
                                                         "height": 512, "is_animated": False, "is_video": False,
                                                         "type": "regular"}), "only read photos"),
        (lambda s: s.push_message(USER, USER, video={"file_id": "v", "file_unique_id": "v", "width": 1,
                                                       "height": 1, "duration": 3}), "only read photos"),
        (lambda s: s.push_text(USER, USER, "/frobnicate"), "do not know that command"),
        (lambda s: s.push_photo(USER, USER, b"\xff\xd8\xff" + b"\0" * 2000 + b"\xff\xd9"), "could not use"),
        (lambda s: s.push_document(USER, USER, HEIC, "IMG_0042.HEIC", "image/heic"), "send it as a photo"),
    ]

    async def scenario(server):
        for i, (push, expected) in enumerate(cases, 1):
            push(server)
            reply = (await server.wait_for_messages(USER, i))[-1]
            assert expected in reply.text, (expected, reply.text)
        server.push_photo(USER, USER, good)  # still answered
        answer = (await server.wait_for_messages(USER, len(cases) + 1))[-1]
        assert answer.method == "sendPhoto" and "1 face(s)" in answer.text

    server = run_bot(scenario)
    # Only the files that could be images were fetched; not the PDF, not the 25 MB photo.
    assert server.methods().count("getFile") == 6


def test_a_failing_handler_is_reported_and_the_bot_carries_on(run_bot, service, samples, monkeypatch):
    real_identify = service.identify
    calls = []

    def flaky_identify(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_identify(*args, **kwargs)

    monkeypatch.setattr(service, "identify", flaky_identify)

    async def scenario(server):
        server.push_photo(USER, USER, jpeg(samples, "s2", 1))
        [error] = await server.wait_for_messages(USER, 1)
        assert error.text == EN["error"]
        server.push_photo(USER, USER, jpeg(samples, "s2", 1))
        answer = (await server.wait_for_messages(USER, 2))[1]
        assert answer.method == "sendPhoto" and "1 face(s)" in answer.text

    run_bot(scenario)


def test_eight_concurrent_identifications_and_help_stays_quick(run_bot, service, samples):
    enroll(service, samples, "Ana", "s2")
    users = list(range(100, 108))
    photos = [("s2", 5), ("s5", 1), ("s2", 9), ("s11", 1), ("s2", 13), ("s23", 1), ("s5", 5), ("s37", 1)]

    async def scenario(server):
        gaps = []

        async def ticker():  # how long the event loop is ever kept from running
            while True:
                start = time.monotonic()
                await asyncio.sleep(0.005)
                gaps.append(time.monotonic() - start)

        ticking = asyncio.create_task(ticker())
        for user, (person, number) in zip(users, photos):
            server.push_photo(user, user, jpeg(samples, person, number))
        await asyncio.sleep(0.2)  # the photos are being downloaded and processed
        asked = time.monotonic()
        server.push_text(HR, HR, "/help")
        [help_reply] = await server.wait_for_messages(HR, 1)
        answers = [(await server.wait_for_messages(user, 1, timeout=40))[0] for user in users]
        ticking.cancel()
        print(f"help answered in {help_reply.at - asked:.3f} s; longest event-loop stall {max(gaps):.3f} s")
        assert help_reply.at < max(a.at for a in answers)  # answered while photos were in work
        assert help_reply.at - asked < 0.5 and max(gaps) < 0.25  # the event loop never waited for a model
        for (person, _), answer in zip(photos, answers):
            assert answer.method == "sendPhoto"
            assert ("Ana" in answer.text) == (person == "s2"), answer.text

    run_bot(scenario, users=users)
    assert len(service.gallery.audit_log(20)) == 1 + 8


def test_conflicting_face_asks_with_buttons(run_bot, service, samples):
    enroll(service, samples, "Ana", "s2")

    async def scenario(server):
        server.push_photo(HR, HR, jpeg(samples, "s2", 5), caption="/enroll Bob")
        [question] = await server.wait_for_messages(HR, 1)
        assert "already matches Ana" in question.text and "Did Bob consent" in question.text  # one question
        cancel, anyway = question.buttons[1], question.buttons[0]
        assert anyway["text"] == "Consent given, enroll anyway" and cancel["text"] == "Cancel"
        assert names(service) == {"Ana": 1}

        server.push_callback(HR, question.result, cancel["callback_data"])
        edited = (await server.wait_for_messages(HR, 2))[1]
        assert edited.method == "editMessageCaption" and edited.text == EN["cancelled"]

        server.push_photo(HR, HR, jpeg(samples, "s2", 5), caption="/enroll Bob")
        question = (await server.wait_for_messages(HR, 3))[2]
        server.push_callback(USER, question.result, question.buttons[0]["callback_data"])  # not HR: ignored
        while "answerCallbackQuery" not in server.methods()[-1:]:
            await asyncio.sleep(0.02)
        assert names(service) == {"Ana": 1}
        assert (await consent(server, HR, question)).text == "Enrolled Bob: 1 sample(s) now."

    run_bot(scenario)
    assert names(service) == {"Ana": 1, "Bob": 1}
    assert [e.get("forced") for e in service.gallery.audit_log(10) if e["action"] == "enroll"] == [False, True]
    assert re.fullmatch(CONSENT_NOTE.format(HR), service.gallery.samples_of("Bob")[0].consent)


def test_consent_can_be_refused_and_only_hr_confirms_it(run_bot, service, samples):
    async def scenario(server):
        server.push_photo(HR, GROUP, jpeg(samples, "s2", 1), caption="/enroll Ana")
        [question] = await server.wait_for_messages(GROUP, 1)
        server.push_callback(USER, question.result, question.buttons[0]["callback_data"])  # a user: refused
        while "answerCallbackQuery" not in server.methods():
            await asyncio.sleep(0.02)
        assert [c.params.get("text") for c in server.calls if c.method == "answerCallbackQuery"] == [EN["only_hr"]]
        server.push_callback(HR, question.result, question.buttons[1]["callback_data"])  # Cancel
        assert (await server.wait_for_messages(GROUP, 2))[1].text == EN["cancelled"]
        server.push_callback(HR, question.result, question.buttons[0]["callback_data"])  # too late
        assert (await server.wait_for_messages(GROUP, 3))[2].text == EN["expired"]

    run_bot(scenario, users=(USER, GROUP))
    assert names(service) == {} and [e["action"] for e in service.gallery.audit_log(10)] == []


def test_hr_lists_a_persons_samples_and_deletes_one(run_bot, service, samples):
    """/samples NAME: every sample, oldest first, with its date, who added it and the consent
    recorded; a button per sample, a confirmation, then that sample alone is gone (audited)."""
    service.enroll("Ana María", load_image(samples / "s2" / "1.jpg"), actor="cli:hr", consent="Ana María, form HR-7")
    service.enroll("Ana María", load_image(samples / "s2" / "5.jpg"), actor="test")  # no consent recorded
    first, second = service.gallery.samples_of("Ana María")
    day1, day2 = first.created[:10], second.created[:10]

    async def scenario(server):
        listing = await ask(server, HR, "/samples  ana maría")
        assert listing.text.splitlines() == ["Ana María: 2 sample(s), oldest first:",
                                             f"1. {day1}, added by cli:hr; consent: Ana María, form HR-7",
                                             f"2. {day2}, added by test; consent: none recorded"]
        assert [b["text"] for b in listing.buttons] == [f"Delete sample 1 ({day1})", f"Delete sample 2 ({day2})"]
        assert (await ask(server, HR, "/samples")).text == "Usage: /samples NAME"
        assert (await ask(server, HR, "/samples Nobody")).text == "Nobody called Nobody is enrolled."
        assert (await ask(server, USER, "/samples Ana María", chat=USER)).text == EN["only_hr"]

        pick = listing.buttons[1]["callback_data"]
        server.push_callback(HR, listing.result, pick)
        question = (await server.wait_for_messages(HR, 4))[3]
        assert question.text == f"Delete sample 2 of Ana María ({day2}, added by test)? This cannot be undone."
        assert [b["text"] for b in question.buttons] == ["Delete", "Cancel"]
        server.push_callback(HR, question.result, question.buttons[1]["callback_data"])
        assert (await server.wait_for_messages(HR, 5))[4].text == EN["cancelled"]
        assert len(service.gallery.samples_of("Ana María")) == 2

        server.push_callback(HR, listing.result, pick)  # the list's buttons still work
        question = (await server.wait_for_messages(HR, 6))[5]
        server.push_callback(HR, question.result, question.buttons[0]["callback_data"])
        done = (await server.wait_for_messages(HR, 7))[6]
        assert done.method == "editMessageText" and done.text == "Deleted sample 2 of Ana María: 1 sample(s) left."
        server.push_callback(HR, listing.result, pick)  # gone: said in an alert, the list stays
        await wait_until(lambda: server.methods().count("answerCallbackQuery") == 5)  # pick, cancel, pick, delete, pick
        alert = [c for c in server.calls if c.method == "answerCallbackQuery"][-1].params
        assert alert["text"] == "That sample is no longer there. Send /samples Ana María again." and alert["show_alert"]

        server.push_callback(HR, listing.result, listing.buttons[0]["callback_data"])  # the last one
        question = (await server.wait_for_messages(HR, 8))[7]
        server.push_callback(HR, question.result, question.buttons[0]["callback_data"])
        last = (await server.wait_for_messages(HR, 9))[8]
        assert last.text.startswith("Deleted sample 1 of Ana María: no samples left") and "/delete Ana María" in last.text
        assert (await ask(server, HR, "/samples Ana María")).text == "Ana María: 0 sample(s), oldest first:"

    run_bot(scenario)
    assert service.gallery.samples_of("Ana María") == []
    entries = [e for e in service.gallery.audit_log(10) if e["action"] == "delete-sample"]
    assert [(e["actor"], e["name"], e["sample"], e["samples"]) for e in entries] == [
        (f"tg:{HR}", "Ana María", second.id, 1), (f"tg:{HR}", "Ana María", first.id, 0)]
    assert entries[1]["consent"] == "Ana María, form HR-7"  # what the deleted sample had recorded



def test_hr_exports_everything_stored_about_a_person_as_a_json_document(run_bot, service, samples):
    """/export NAME: a data-subject access request answered from Telegram, as facebot export does."""
    service.enroll("Ana María", load_image(samples / "s2" / "1.jpg"), actor="cli:hr", consent="Ana María, form HR-7")

    async def scenario(server):
        sent = await ask(server, HR, "/export  ana maría")
        assert sent.method == "sendDocument" and "Ana María" in sent.text
        export = json.loads(sent.photo.decode("utf-8"))
        assert export["person"]["name"] == "Ana María" and export["person"]["samples"] == 1
        assert export["samples"][0]["consent"] == "Ana María, form HR-7" and export["samples"][0]["embedding"]
        assert any(e["action"] == "enroll" for e in export["audit"])
        assert (await ask(server, HR, "/export")).text == EN["export_usage"]
        assert (await ask(server, HR, "/export Nobody")).text == "Nobody called Nobody is enrolled."
        assert (await ask(server, USER, "/export Ana María", chat=USER)).text == EN["only_hr"]

    run_bot(scenario)
    exports = [e for e in service.gallery.audit_log(10) if e["action"] == "export"]
    assert [(e["actor"], e["name"]) for e in exports] == [(f"tg:{HR}", "Ana María")]  # the refused ones left no export



def test_a_daily_job_deletes_audit_entries_past_their_retention_even_when_nothing_is_written(tmp_path, recognizer):
    """Retention by age is enforced on every audit write, and by the bot once a day, so a quiet
    gallery does not keep old entries (sightings, identifications) past FACEBOT_RETENTION_DAYS."""
    from facebot.service import FaceService
    from facebot.storage import Gallery

    service = FaceService(Gallery(tmp_path / "g", retention_days=1 / 86400), recognizer)  # one second
    service.gallery.audit("identify", "tg:1", name="Ana")

    async def main():
        server = FakeTelegram().start()
        config = BotConfig(token=server.token, api_url=server.url, data_dir=str(tmp_path / "g"), hr_ids=frozenset({HR}))
        application = build_application(config, service)
        try:
            async with polling(application):
                assert "daily-retention" in [job.name for job in application.job_queue.jobs()]
                await asyncio.sleep(2.5)  # audit times are whole seconds: past the cutoff for sure
                await application.bot_data["facebot"].enforce_retention(None)  # what the job runs
        finally:
            server.stop()

    asyncio.run(main())
    actions = [e["action"] for e in service.gallery.audit_log(10)]
    assert "identify" not in actions and actions[-1] == "retention"


async def ask(server, user: int, text: str, chat: int = HR):
    """Send `text` as `user` in `chat`; return the bot's next message there."""
    before = len(server.messages(chat))
    server.push_text(user, chat, text)
    return (await server.wait_for_messages(chat, before + 1))[before]


async def wait_until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_delete_needs_confirmation(run_bot, service, samples):
    enroll(service, samples, "Ana", "s2", 1)
    enroll(service, samples, "Ana", "s2", 5)

    async def scenario(server):
        server.push_text(HR, HR, "/delete Nobody")
        [missing] = await server.wait_for_messages(HR, 1)
        assert missing.text == "Nobody called Nobody is enrolled."
        server.push_text(HR, HR, "/delete ana")
        question = (await server.wait_for_messages(HR, 2))[1]
        assert "Delete Ana and all 2 sample(s)?" in question.text and len(question.buttons) == 2
        assert names(service) == {"Ana": 2}
        data = question.buttons[0]["callback_data"]
        server.push_callback(HR, question.result, data)
        done = (await server.wait_for_messages(HR, 3))[2]
        assert done.method == "editMessageText" and done.text == "Deleted Ana: 2 sample(s) removed."
        server.push_callback(HR, question.result, data)  # a second press finds nothing to do
        again = (await server.wait_for_messages(HR, 4))[3]
        assert again.text == EN["expired"]

    run_bot(scenario)
    assert names(service) == {}
    assert service.gallery.audit_log(1)[0]["action"] == "delete"


def test_list_threshold_audit_whoami_help(run_bot, service, samples):
    enroll(service, samples, "Ana María", "s2")
    commands = [
        (HR, HR, "/list", "1 person(s) enrolled:\nAna María: 1 sample(s)"),
        (HR, HR, "/threshold", f"Decision (default): known at distance <= {DEFAULT_RULE.low:.3f}, or <= "
                               f"{DEFAULT_RULE.high:.3f} when the distance is at most {DEFAULT_RULE.ratio:.3f} times "
                               f"the next person's; never beyond {DEFAULT_RULE.cohort_ratio:.3f} x the distance to the "
                               f"nearest background face; up to {DEFAULT_RULE.high + DEFAULT_RULE.small_slack:.3f} for "
                               f"faces under {DEFAULT_RULE.small_face:.0f} px. Smaller is stricter."),
        (HR, HR, "/threshold 0.6", "The distance threshold is now 0.600."),
        (HR, HR, "/threshold 3", "That is not a valid threshold: the threshold must be between 0 and 2."),
        (HR, HR, "/threshold abc", "That is not a valid threshold"),
        (HR, HR, "/threshold", "Decision (saved): threshold 0.600."),
        (HR, HR, "/audit 2", "threshold tg:1001: low=0.6, high=0.6"),
        (HR, HR, "/audit x", "Usage: /audit"),
        (HR, HR, "/help", "/enroll NAME"),
        (USER, USER, "/help", "Send a photo"),
        (USER, USER, "/list", EN["only_hr"]),
        (HR, GROUP, "/whoami", f"Your user id: {HR}\nThis chat's id: {GROUP}"),
        (USER, USER, "hello", EN["text_hint"]),
    ]

    async def scenario(server):
        for user, chat, command, expected in commands:
            before = len(server.messages(chat))
            server.push_text(user, chat, command)
            reply = (await server.wait_for_messages(chat, before + 1))[-1]
            assert expected in reply.text, (command, reply.text)
        user_help = [c.text for c in server.messages(USER) if "Send a photo" in c.text][0]
        assert "/enroll" not in user_help

    run_bot(scenario)
    assert service.rule == DecisionRule.from_threshold(0.6)


def test_names_with_markup_are_refused_and_replies_are_plain_text(run_bot, service):
    commands = [("/enroll <b>Eve</b>", "may not contain '<'"), ("/enroll " + "x" * 80, "longer than 64"),
                ("/enroll", "Usage: /enroll NAME"), ("/enroll *Eve* [x](e.vil) _y_", "Now send one photo of *Eve* [x](e.vil) _y_")]

    async def scenario(server):
        for i, (command, expected) in enumerate(commands, 1):
            server.push_text(HR, HR, command)
            reply = (await server.wait_for_messages(HR, i))[-1]
            assert expected in reply.text, reply.text

    server = run_bot(scenario)
    assert all("parse_mode" not in c.params for c in server.calls)
    assert names(service) == {}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB's own RetryAfter.retry_after notice
def test_flood_control_and_server_errors_are_retried(run_bot):
    async def scenario(server):
        server.fail_next("sendMessage", 429, retry_after=1)
        server.fail_next("sendMessage", 502)
        server.push_text(USER, USER, "/whoami")
        [reply] = await server.wait_for_messages(USER, 1, timeout=10)
        assert reply.text.startswith("Your user id")
        assert server.methods().count("sendMessage") == 3  # two failures, then the reply

    run_bot(scenario)


def test_spanish_texts(run_bot):
    async def scenario(server):
        rule = await ask(server, HR, "/threshold")
        assert rule.text.startswith("Decisión (por defecto): conocido a distancia <=") and "known" not in rule.text
        assert f"para caras de menos de {DEFAULT_RULE.small_face:.0f} px" in rule.text
        server.push_text(USER, USER, "/help")
        server.push_text(STRANGER, STRANGER, "/start")
        [help_reply] = await server.wait_for_messages(USER, 1)
        [refusal] = await server.wait_for_messages(STRANGER, 1)
        assert help_reply.text == ES["help_user"] and "/whoami" in refusal.text and "permiso" in refusal.text

    run_bot(scenario, lang="es")
    assert set(EN) == set(ES)
    values = dict(user_id=1, chat_id=2, name="Ana", samples=1, count=2, reason="r", other="Bob", distance=0.5,
                  index=1, value=0.7, source="s", rule="r", camera="door", time="09:00",
                  id=4, role="HR", fixed="HR", variable="FACEBOT_HR_IDS", hr="1", users="2", date="2026-01-02",
                  duration="5 min", by="cli:hr", consent="form HR-7", left=1, unknown=1, total=2, entries=3,
                  low=0.8, high=0.9, ratio=0.8, cohort=0.8, small_high=1.0, small_face=64, pixels=30, minimum=48, visible=0.7, good=64,
                  kind="HEIC")
    for key in EN:
        assert text("es", key, **values) and text("en", key, **values)


@pytest.mark.parametrize("env, expected", [
    ({}, "TELEGRAM_BOT_TOKEN is not set"),
    ({"TELEGRAM_BOT_TOKEN": "12345:SECRET", "FACEBOT_LANG": "fr"}, "FACEBOT_LANG must be"),
    ({"TELEGRAM_BOT_TOKEN": "12345:SECRET", "FACEBOT_HR_IDS": "12,abc"}, "FACEBOT_HR_IDS: 'abc'"),
    ({"TELEGRAM_BOT_TOKEN": "12345:SECRET", "TELEGRAM_API_URL": "ftp://x"}, "TELEGRAM_API_URL must start"),
])
def test_config_errors_give_one_line(env, expected, monkeypatch, tmp_path, capsys):
    from facebot.cli.main import main

    monkeypatch.chdir(tmp_path)  # no .env here
    for key in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "FACEBOT_LANG", "FACEBOT_HR_IDS", "FACEBOT_USER_IDS",
                "FACEBOT_ALERT_CHAT_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["--data-dir", str(tmp_path / "data"), "bot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "SECRET" not in err and "Traceback" not in err


def test_rejected_token_gives_one_line_without_the_token(monkeypatch, tmp_path, capsys, recognizer):
    import facebot.recognition as recognition
    from facebot.cli.main import main

    server = FakeTelegram(token="1:right").start()
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(recognition, "Recognizer", lambda detector="mtcnn", **_: recognizer)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "777:WRONG-token")
        monkeypatch.setenv("TELEGRAM_API_URL", server.url)
        assert main(["--data-dir", str(tmp_path / "data"), "bot"]) == 2
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert "rejected TELEGRAM_BOT_TOKEN" in err and "WRONG" not in err
