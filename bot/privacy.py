"""The bot's privacy handlers: HR confirms a person's consent before any face is enrolled from
Telegram, lists and deletes a person's samples one at a time (/samples NAME), and hands HR
everything stored about a person (/export NAME).

`PrivacyHandlers` is mixed into `FaceBot` (telegram_bot.py), which wires the handlers in
`build_application`; it uses FaceBot's helpers (`reply`, `reply_photo`, `send`, `t`, `_core`,
`ask`, `keep`, `recall`, `explain`, `is_hr`, `service`) and, after an enrollment, the faces
remembered by bot/office.py.

Consent (GDPR Art. 9): every enrollment from the bot (/enroll with a photo, "Enroll this
face…" under a reply or a camera alert) first checks the face (exactly one; a face that
already matches someone else is said in the same question), then asks "Did NAME consent…?"
with "Consent given" (or "Consent given, enroll anyway") and "Cancel". Only that button
enrolls: the sample's consent note, and its audit entry, say which HR user confirmed it and
when ("confirmed in Telegram by HR 1001 on 2026-11-25 14:03 UTC"). The question keeps the
face's embedding and the cropped face shown with it (never the photo), like every question
asked with buttons (`FaceBot.ask`: in memory, PENDING_TTL_S at most).

Samples: /samples NAME lists the person's samples, oldest first, with the date, who added
each and the consent recorded, and a button "Delete sample N (date)" per sample. A press asks
to confirm (Delete / Cancel); Delete removes that one sample (service.delete_sample, audited
"delete-sample" in the same transaction). The list's buttons carry the key of one remembered
list (kind "samples") and a number, so they fit Telegram's 64 bytes of callback data whatever
the name.
"""
from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timezone

import numpy as np
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message

from facebot.bot.telegram_util import command_argument
from facebot.recognition.images import encode_jpeg
from facebot.service import (GOOD_ENROLL_FACE, ConflictingPerson, FaceCut, FaceTooSmall, GalleryBusy, InvalidConsent,
                             InvalidName, UnknownPerson, UnknownSample, small_sample)

log = logging.getLogger(__name__)

RETENTION_JOB = "daily-retention"
RETENTION_AT = time(3, 30)  # FACEBOT_TZ; a quiet hour
MAX_SAMPLE_BUTTONS = 50  # Telegram takes 100 buttons under a message; people have a handful of samples


@dataclass
class Pending:
    """A question asked with buttons (FaceBot.ask), or a /samples list whose buttons pick a sample.

    kind "enroll": enroll `embedding` as `name` once HR confirms consent; "delete": erase
    `name`; "sample": delete sample `sample_id` of `name`; "samples": the ids a list numbered;
    "pick": the faces of an enrollment photo of several people, one of which is `name`.
    """

    kind: str  # "enroll" | "delete" | "sample" | "samples" | "pick"
    name: str
    chat_id: int
    created: float = 0.0
    embedding: np.ndarray | None = None  # enroll: the face (never the photo)
    face_jpeg: bytes = b""  # enroll: the cropped face, shown with the question ("" for a remembered face)
    source: str = "photo"  # enroll: where the face came from, for the audit ("photo", "camera:NAME")
    forced: bool = False  # enroll: HR was told it matches someone else and enrolls anyway
    face: tuple[str, str] | None = None  # enroll: ("face" | "cam", key) of a remembered face, forgotten once enrolled
    pixels: float = float("nan")  # enroll: the face's width (nan: not measured), for the question's note
    sample_id: int = 0  # sample: the one to delete, numbered `index` in the list, added on `date`
    index: int = 0
    date: str = ""
    by: str = ""
    samples: list[int] = field(default_factory=list)  # samples: the ids, as numbered from 1
    # pick: (embedding, cropped face, its width in px, its share inside the photo), biggest first
    choices: list[tuple[np.ndarray, bytes, float, float]] = field(default_factory=list)


def consent_note(user_id: int, now: datetime | None = None) -> str:
    """The consent note stored with a sample enrolled from Telegram: which HR user confirmed
    the person's consent, and when (UTC, to the minute)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"confirmed in Telegram by HR {user_id} on {now:%Y-%m-%d %H:%M} UTC"


class PrivacyHandlers:
    """Consent before enrollment, /samples, /export and the daily retention check; FaceBot
    provides the helpers it uses (hr_press, keep, recall, ask, reply, send...)."""

    # -- consent ------------------------------------------------------------------------------
    async def ask_consent(self, message: Message, pending: Pending, clash: ConflictingPerson | None = None) -> None:
        """Ask HR, in reply to `message`, to confirm that `pending.name` consented before the
        face is enrolled: one question with "Consent given" and "Cancel" (a face that already
        matches `clash` says so, and its button enrolls anyway). Sends the cropped face with
        the question when there is one. Stores nothing."""
        question = self.t("consent_ask", name=pending.name)
        if small_sample(pending.pixels):  # HR may cancel and send a closer photo
            question = self.t("small_face_note", pixels=f"{pending.pixels:.0f}", name=pending.name,
                              good=GOOD_ENROLL_FACE) + "\n\n" + question
        if clash is not None:
            question = self.t("conflict", other=clash.name, distance=clash.distance, name=pending.name) + "\n\n" + question
        pending.forced = clash is not None
        markup = self.ask(pending, self.t("button_consent_anyway" if clash is not None else "button_consent"))
        if pending.face_jpeg:
            await self.reply_photo(message, pending.face_jpeg, question, markup)
        else:
            await self.reply(message, question, markup)

    async def ask_which_face(self, message: Message, name: str, faces: list, picture: bytes) -> None:
        """An enrollment photo shows several people: reply with `picture` (their faces boxed and
        numbered, biggest first) and one button per face; the chosen face goes on to the
        consent question (on_pick_button). Only the faces' embeddings and crops are kept."""
        crops = [await self._cpu(encode_jpeg, f.crop) for f in faces]
        key = self.keep(Pending("pick", name, message.chat_id,
                                choices=[(np.array(f.embedding, np.float32), c, f.pixels, f.visible)
                                         for f, c in zip(faces, crops)]))
        markup = InlineKeyboardMarkup([
            [InlineKeyboardButton(self.t("button_face_number", index=i), callback_data=f"pick:{key}:{i}")
             for i in range(1, len(faces) + 1)],
            [InlineKeyboardButton(self.t("button_cancel"), callback_data=f"pick:{key}:no")]])
        await self.reply_photo(message, picture, self.t("pick_face", count=len(faces), name=name), markup)

    async def on_pick_button(self, update, context) -> None:
        """A press on "Face N" (pick:KEY:N) under a photo of several people sent to /enroll:
        ask HR to confirm consent for that face; the other faces are forgotten."""
        query = update.callback_query
        press = await self.hr_press(query)
        if press is None:
            return
        _, key, number = press
        pending = self.recall(key, "pick")
        if pending is not None and number == "no":
            await self.send(query.answer)
            await self.edit(query, self.t("cancelled"))
            return
        if pending is None or not number.isdigit() or not 1 <= int(number) <= len(pending.choices):
            await self.send(lambda: query.answer(self.t("expired"), show_alert=True))
            return
        await self.send(query.answer)
        embedding, crop, pixels, visible = pending.choices[int(number) - 1]
        try:
            name, clash = await self._core(self.service.check_face_enrollment, pending.name, embedding, pixels, visible)
        except (InvalidName, FaceTooSmall, FaceCut, GalleryBusy) as exc:
            await self.reply(query.message, self.explain(exc))
            return
        await self.ask_consent(query.message, Pending("enroll", name, pending.chat_id, embedding=embedding,
                                                      face_jpeg=crop, pixels=pixels), clash)

    async def confirm_enroll(self, query, pending: Pending, user_id: int) -> None:
        """HR `user_id` pressed "Consent given": enroll the question's face with a note of who
        confirmed consent and when, and say so in place of the question."""
        try:
            name, samples = await self._core(self.service.enroll_embedding, pending.name, pending.embedding,
                                             actor=f"tg:{user_id}", source=pending.source, force=pending.forced,
                                             consent=consent_note(user_id))
        except ConflictingPerson as clash:  # someone with this face was enrolled after the question
            await self.edit(query, self.t("face_conflict", other=clash.name, distance=clash.distance))
            return
        except (InvalidName, InvalidConsent, GalleryBusy) as exc:
            await self.edit(query, self.explain(exc))
            return
        if pending.face is not None:  # a face from a reply or an alert is used up
            kind, key = pending.face
            if kind == "face":
                self.faces.pop(key, None)
            else:
                await self._core(self.service.forget_pending_face, key)
        await self.edit(query, self.t("enrolled", name=name, samples=samples))

    async def edit(self, query, body: str) -> None:
        """Replace the text of the message whose button was pressed: its caption when it is a
        photo (a consent question showing the face), else its text."""
        if query.message is not None and getattr(query.message, "photo", None):
            await self.send(lambda: query.edit_message_caption(body))
        else:
            await self.send(lambda: query.edit_message_text(body))

    # -- retention -----------------------------------------------------------------------------
    def schedule_retention(self, application) -> None:
        """Run `enforce_retention` every day at RETENTION_AT in FACEBOT_TZ (PTB's JobQueue)."""
        if application.job_queue is None:
            log.warning("python-telegram-bot's job queue is not installed: old audit entries are deleted "
                        "only when the audit is written (pip install 'python-telegram-bot[job-queue]')")
            return
        application.job_queue.run_daily(self.enforce_retention, time=RETENTION_AT.replace(tzinfo=self.zone),
                                        name=RETENTION_JOB)

    async def enforce_retention(self, context) -> None:
        """The job: delete what is past FACEBOT_RETENTION_DAYS (service.enforce_retention)."""
        await self._core(self.service.enforce_retention, actor="tg:retention")

    # -- access requests ----------------------------------------------------------------------
    async def on_export(self, message: Message, user_id: int, context) -> None:
        """'/export NAME': everything stored about the person (service.export, embeddings
        included, audited), sent to HR as a JSON file, as `facebot export NAME` prints it."""
        name = command_argument(message.text).strip()
        if not name:
            await self.reply(message, self.t("export_usage"))
            return
        try:
            export = await self._core(self.service.export, name, actor=f"tg:{user_id}")
        except UnknownPerson:
            await self.reply(message, self.t("unknown_person", name=name))
            return
        person = export["person"]["name"]
        data = json.dumps(export, ensure_ascii=False, indent=2).encode("utf-8")
        # a file name Telegram and every file system accept, whatever the script of the name
        filename = "facebot-export-" + (re.sub(r"[^\w.-]+", "_", person).strip("_") or "person") + ".json"
        caption = self.t("export_caption", name=person, samples=len(export["samples"]), entries=len(export["audit"]))
        await self.send(lambda: message.reply_document(InputFile(io.BytesIO(data), filename=filename), caption=caption))

    # -- samples ------------------------------------------------------------------------------
    async def on_samples(self, message: Message, user_id: int, context) -> None:
        """'/samples NAME': the person's samples, oldest first (date, who added each, the consent
        recorded), each with a button to delete it."""
        name = command_argument(message.text).strip()
        if not name:
            await self.reply(message, self.t("samples_usage"))
            return
        try:
            person, samples = await self._core(self.service.samples, name)
        except UnknownPerson:
            await self.reply(message, self.t("unknown_person", name=name))
            return
        lines = [self.t("samples_header", name=person.name, count=len(samples))]
        lines += [self.t("samples_line", index=i, date=s.created[:10], by=s.created_by,
                         consent=s.consent or self.t("samples_no_consent")) for i, s in enumerate(samples, 1)]
        markup = None
        if samples:
            shown = samples[:MAX_SAMPLE_BUTTONS]
            if len(samples) > len(shown):
                lines.append(self.t("samples_more", count=len(shown)))
            key = self.keep(Pending("samples", person.name, message.chat_id, samples=[s.id for s in shown]))
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(
                self.t("button_delete_sample", index=i, date=s.created[:10]), callback_data=f"samples:{key}:{i}")]
                for i, s in enumerate(shown, 1)])
        await self.reply(message, "\n".join(lines), markup)

    async def on_sample_button(self, update, context) -> None:
        """A press on "Delete sample N (date)" under a /samples list (samples:KEY:N): ask HR to
        confirm with Delete / Cancel. The list stays, its buttons usable again."""
        query = update.callback_query
        press = await self.hr_press(query)
        if press is None:
            return
        _, key, number = press
        listing = self.recall(key, "samples", forget=False)
        if listing is None or not number.isdigit() or not 1 <= int(number) <= len(listing.samples):
            await self.send(lambda: query.answer(self.t("expired"), show_alert=True))
            return
        index, sample_id = int(number), listing.samples[int(number) - 1]
        try:  # read again: the sample may have gone since the list was sent
            _, samples = await self._core(self.service.samples, listing.name)
        except UnknownPerson:
            samples = []
        sample = next((s for s in samples if s.id == sample_id), None)
        if sample is None:
            await self.send(lambda: query.answer(self.t("sample_gone", name=listing.name), show_alert=True))
            return
        await self.send(query.answer)
        chat_id = query.message.chat.id if query.message else query.from_user.id
        pending = Pending("sample", listing.name, chat_id, sample_id=sample_id, index=index,
                          date=sample.created[:10], by=sample.created_by)
        markup = self.ask(pending, self.t("button_delete"))
        question = self.t("sample_delete_confirm", index=index, name=listing.name, date=pending.date, by=pending.by)
        await self.send(lambda: context.bot.send_message(chat_id, question, reply_markup=markup))

    async def confirm_sample_delete(self, query, pending: Pending, actor: str) -> None:
        """HR pressed Delete under "Delete sample N of NAME?": delete it (audited) and say what is left."""
        try:
            removal = await self._core(self.service.delete_sample, pending.name, pending.sample_id, actor=actor)
        except (UnknownPerson, UnknownSample):
            await self.edit(query, self.t("sample_gone", name=pending.name))
            return
        key = "sample_deleted" if removal.left else "sample_deleted_last"
        await self.edit(query, self.t(key, index=pending.index, name=removal.name, left=removal.left))
