"""`facebot bot`: the Telegram front end of the recognition core and the gallery.

Handlers are small async methods of `FaceBot`, wired in `build_application(config, service)`.
Detection, embedding and gallery access run in a small thread pool, one call at a time
(`FaceBot._core`), so the event loop stays free: `/help` answers while photos are being
processed. Replies are plain text (no parse mode), so names with markup are shown as typed.

Photos take turns (`FairGate`): at most `Limits.photo_slots` are downloaded, decoded and
recognised at once, whoever sent them, and waiting senders are served round robin. That
bounds memory (a decoded photo can be 150 MB) and keeps one person's flood of photos from
delaying everyone else; commands never wait for photos. Strangers' replies are rate-limited.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

import numpy as np
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from facebot.config import BotConfig, ConfigError, load_bot_config
from facebot.recognition.draw import face_labels
from facebot.service import (EnrollRefused, FaceCut, FaceService, FaceTooSmall, GalleryBusy, InvalidName, NoFace,
                             SeveralFaces, UnknownPerson, validate_name)
from facebot.bot.office import MAX_FACE_BUTTONS, REPLY_LANGUAGE, OfficeHandlers, language_of
from facebot.bot.privacy import Pending, PrivacyHandlers
from facebot.bot.telegram_util import (FairGate, GateClosed, JournalQueue, RateLimit, UpdateJournal, annotated_jpeg,
                                       command_argument, image_attachment)
from facebot.telegram_retry import REPLIES, RetryPolicy, token_kept_out
from facebot.texts import text
from facebot.recognition import DecisionRule, ImageError, TooManyFaces
from facebot.recognition.images import PhoneFormat, decode_photo, encode_jpeg

log = logging.getLogger(__name__)

# The largest file the Bot API lets a bot download (texts "too_big" say so); a bigger one is
# not fetched at all.
TELEGRAM_FILE_LIMIT = 20 * 1024 * 1024

T = TypeVar("T")
PENDING_TTL_S = 600  # an /enroll waiting for its photo, or a question waiting for its button
MAX_PENDING = 32  # pending questions keep a face (embedding and a small JPEG crop): cap the memory they hold
REFUSAL_EVERY_S = 60  # a stranger hears the refusal once a minute at most, not once per message
CAPTION_LIMIT, MESSAGE_LIMIT = 1024, 4000
JOURNAL_NAME = "telegram-updates.jsonl"  # in the data folder: updates received and not yet handled
REJECTED_TOKEN = "facebot: Telegram rejected TELEGRAM_BOT_TOKEN (check it with @BotFather)"


@dataclass(frozen=True)
class Limits:
    """How long the bot waits for Telegram and how it retries (tests shrink the times)."""

    read_timeout_s: float = 30.0  # how long one Telegram call may take to answer
    retry: RetryPolicy = REPLIES  # replies and downloads; start-up too
    # Photos downloaded, decoded and recognised at once. Each holds one decoded image (up to
    # 50 megapixels: 150 MB, and about as much again while decoding), so two keep a bot
    # flooded with the largest photos allowed well under 2 GB; the recogniser runs one at a
    # time anyway, so a second slot only overlaps a download or a decode with it.
    photo_slots: int = 2
    photos_waiting_per_user: int = 500  # beyond this, one "busy" reply a minute and the photo is skipped
    updates_in_hand: int = 4096  # updates PTB handles at once; waiting photos are cheap (no bytes yet)
    stranger_whoami: tuple[int, float] = (2, 60.0)  # /whoami answers per stranger per minute
    stranger_replies: tuple[int, float] = (30, 60.0)  # replies to all strangers together per minute


class FaceBot(OfficeHandlers, PrivacyHandlers):
    """The handlers, the access rules and the pending state of one running bot (the office
    handlers, access included, are in bot/office.py; consent and /samples in bot/privacy.py)."""

    def __init__(self, config: BotConfig, service: FaceService, workers: int = 2, limits: Limits = Limits()):
        self.config = config
        self.service = service
        self.limits = limits
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="facebot")
        self._core_lock: asyncio.Lock | None = None
        self.gate = FairGate(limits.photo_slots)
        self.waiting_photo: dict[tuple[int, int], tuple[str, float]] = {}  # (chat, user) -> name, since
        self.questions: dict[str, Pending] = {}
        self._refusals = RateLimit(1, REFUSAL_EVERY_S)  # per (chat, user)
        self._whoami = RateLimit(*limits.stranger_whoami)  # strangers, per (chat, user)
        self._to_strangers = RateLimit(*limits.stranger_replies)  # strangers, all together
        self._busy_notices = RateLimit(1, 60.0)  # per user whose photos exceed the waiting limit
        self.abandoned: set[int] = set()  # update ids let go at stop (see kept_if_stopped)
        self.journal: UpdateJournal | None = None  # set by build_application when there is one
        self.init_office()

    # -- helpers ----------------------------------------------------------------------------
    def t(self, key: str, **values) -> str:
        """The sentence `key` in the language of the person being answered (see bot/office.py)."""
        return text(self.reply_language(), key, **values)

    def is_hr(self, user_id: int) -> bool:
        """In FACEBOT_HR_IDS, or made HR from Telegram (/allow ID hr)."""
        return self.access_now().is_hr(user_id)

    def may_identify(self, user_id: int, chat_id: int) -> bool:
        """HR always; otherwise the user or the chat must be listed, in the environment or from
        Telegram (/allow); nobody listed: HR only."""
        return self.access_now().may_identify(user_id, chat_id)

    async def _cpu(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run pure CPU work (decoding, drawing) in the thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args, **kwargs))

    async def _core(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run model or gallery work in the thread pool, one call at a time."""
        if self._core_lock is None:
            self._core_lock = asyncio.Lock()
        async with self._core_lock:
            return await self._cpu(fn, *args, **kwargs)

    async def send(self, request: Callable[[], Awaitable[T]]) -> T:
        """Make a call that changes something in Telegram (a message, an edit, an answer)
        under the retry policy; a read timeout is not retried (see telegram_retry)."""
        return await self.limits.retry.call(request)

    async def fetch(self, request: Callable[[], Awaitable[T]]) -> T:
        """Make a call that only reads (getFile, a download), retried even after a read timeout."""
        return await self.limits.retry.call(request, idempotent=True)

    async def reply(self, message: Message, body: str, markup: InlineKeyboardMarkup | None = None) -> Message:
        """Send plain text, split into several messages when long; buttons go on the last."""
        chunks = [body[i : i + MESSAGE_LIMIT] for i in range(0, len(body), MESSAGE_LIMIT)] or [""]
        sent = None
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            sent = await self.send(lambda: message.reply_text(chunk, reply_markup=markup if last else None))
        return sent

    async def reply_photo(self, message: Message, jpeg: bytes, caption: str,
                          markup: InlineKeyboardMarkup | None = None) -> None:
        """Send a photo (with buttons, if any); a caption longer than Telegram allows follows as
        a text message."""
        short = caption if len(caption) <= CAPTION_LIMIT else caption.split("\n", 1)[0]
        await self.send(lambda: message.reply_photo(jpeg, caption=short, reply_markup=markup))
        if short != caption:
            await self.reply(message, caption.split("\n", 1)[1])

    async def refuse(self, message: Message, user_id: int) -> None:
        """The polite refusal naming /whoami, at most once a minute per person and chat (and
        within the budget of replies to strangers)."""
        if self._refusals.allow((message.chat_id, user_id)) and self._to_strangers.allow():
            await self.reply(message, self.t("refused"))

    def explain(self, exc: Exception) -> str:
        """A reply for an expected failure of enroll, identify or decode."""
        if isinstance(exc, NoFace):
            return self.t("no_face")
        if isinstance(exc, SeveralFaces):
            return self.t("several_faces", count=exc.count)
        if isinstance(exc, FaceTooSmall):
            return self.t("face_too_small", pixels=round(exc.pixels), minimum=round(exc.minimum))
        if isinstance(exc, FaceCut):
            return self.t("face_cut", visible=exc.visible)
        if isinstance(exc, InvalidName):
            return self.t("invalid_name", reason=str(exc))
        if isinstance(exc, TooManyFaces):
            return self.t("too_many_faces", reason=str(exc))
        if isinstance(exc, PhoneFormat):  # Telegram turns a photo sent as a photo into a JPEG
            return self.t("phone_format", kind=exc.kind)
        if isinstance(exc, ImageError):
            return self.t("image_error", reason=str(exc))
        if isinstance(exc, GalleryBusy):
            return self.t("busy")
        return str(exc)

    def guard(self, handler: Callable, need: str) -> Callable:
        """Wrap a message handler with the access rule `need`: "anyone", "user" or "hr"."""

        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            message, user = update.message, update.effective_user
            if message is None or user is None:
                return
            allowed = self.may_identify(user.id, message.chat_id)
            self.hr_menu_in_group(context.bot, message.chat_id, user.id)
            if need == "hr" and not self.is_hr(user.id):
                await (self.reply(message, self.t("only_hr")) if allowed else self.refuse(message, user.id))
            elif need == "user" and not allowed:
                await self.refuse(message, user.id)
            else:
                await handler(message, user.id, context)

        return self.kept_if_stopped(guarded)

    def kept_if_stopped(self, callback: Callable) -> Callable:
        """Wrap an update callback: if the bot stops while it waits for its turn (GateClosed),
        note its update as not handled, so the journal keeps it for the next start."""

        async def wrapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            try:
                await callback(update, context)
            except GateClosed:
                self.abandoned.add(update.update_id)

        return wrapped

    def keep(self, pending: Pending) -> str:
        """Remember a question for PENDING_TTL_S (at most MAX_PENDING, the oldest go first);
        returns the key its buttons carry."""
        now = time.monotonic()
        for key in [k for k, p in self.questions.items() if now - p.created > PENDING_TTL_S]:
            del self.questions[key]
        while len(self.questions) >= MAX_PENDING:
            del self.questions[next(iter(self.questions))]
        key = secrets.token_hex(6)
        pending.created = now
        self.questions[key] = pending
        return key

    def recall(self, key: str, kind: str, forget: bool = True) -> Pending | None:
        """The question `key` if it is of `kind` and not expired, else None; `forget`: it is
        answered (a second press finds nothing)."""
        pending = self.questions.pop(key, None) if forget else self.questions.get(key)
        if pending is None or pending.kind != kind or time.monotonic() - pending.created > PENDING_TTL_S:
            return None
        return pending

    async def hr_press(self, query) -> tuple[str, str, str] | None:
        """The (kind, key, choice) a press on an HR-only button carries ('kind:key:choice'), or
        None after telling someone who is not HR that only HR may do that."""
        if not self.is_hr(query.from_user.id):
            await self.send(lambda: query.answer(self.t("only_hr"), show_alert=True))
            return None
        kind, key, choice = ((query.data or "").split(":") + ["", "", ""])[:3]
        return kind, key, choice

    def ask(self, pending: Pending, yes_label: str) -> InlineKeyboardMarkup:
        """Remember a question and return its buttons (callback data 'kind:key:yes|no')."""
        key = self.keep(pending)
        return InlineKeyboardMarkup([[
            InlineKeyboardButton(yes_label, callback_data=f"{pending.kind}:{key}:yes"),
            InlineKeyboardButton(self.t("button_cancel"), callback_data=f"{pending.kind}:{key}:no"),
        ]])

    # -- images -----------------------------------------------------------------------------
    async def download(self, message: Message, attachment) -> bytes | None:
        """The file's bytes, or None after telling the user why not (too big, failed)."""
        if (attachment.file_size or 0) > TELEGRAM_FILE_LIMIT:
            await self.reply(message, self.t("too_big"))
            return None
        try:
            tg_file = await self.fetch(attachment.get_file)
            data = bytes(await self.fetch(tg_file.download_as_bytearray))
        except BadRequest as exc:
            await self.reply(message, self.t("too_big" if "too big" in str(exc).lower() else "download_failed"))
            return None
        except TelegramError as exc:
            log.warning("download failed: %s", exc)
            await self.reply(message, self.t("download_failed"))
            return None
        if len(data) > TELEGRAM_FILE_LIMIT:
            await self.reply(message, self.t("too_big"))
            return None
        return data

    async def enroll_from(self, message: Message, user_id: int, name: str, source: Message) -> None:
        """Download the photo in `source` and check that it can be enrolled as `name` (exactly
        one face; one that already matches someone else is said); then ask HR to confirm the
        person's consent (bot/privacy.py). Nothing is stored before that button."""
        try:
            async with self.gate.turn(user_id):
                data = await self.download(message, image_attachment(source))
                if data is None:
                    return
                # a big JPEG decoded at a reduced size, as for identification: the same faces
                photo = await self._cpu(decode_photo, data)
                del data  # the photo is not kept: the question holds the face only
                try:
                    name, face, clash = await self._core(self.service.check_enrollment, name, photo)
                except SeveralFaces as several:  # HR chooses which face (up to a row of buttons)
                    if len(several.faces) > MAX_FACE_BUTTONS:
                        raise
                    faces = several.faces  # `several` itself is gone after this block
                    numbered = [(f.box, str(i), False) for i, f in enumerate(faces, 1)]
                    picture = await self._cpu(annotated_jpeg, photo, numbered)
                    face = None
                del photo
        except (EnrollRefused, InvalidName, TooManyFaces, ImageError, GalleryBusy) as exc:
            await self.reply(message, self.explain(exc))
            return
        if face is None:
            await self.ask_which_face(message, name, faces, picture)
            return
        crop = await self._cpu(encode_jpeg, face.crop)
        pending = Pending("enroll", name, message.chat_id, embedding=np.array(face.embedding, np.float32), face_jpeg=crop,
                          pixels=face.pixels)
        await self.ask_consent(message, pending, clash)

    async def identify(self, user_id: int, data: bytes) -> tuple[bytes | None, str, InlineKeyboardMarkup | None]:
        """Name every face in the photo `data`: (an annotated JPEG, its caption with one line
        per face, the faces' buttons for `user_id` or None), or (None, the reason, None) when
        there is nothing to show. Sends nothing."""
        try:
            # decode_photo decodes a big JPEG at a reduced size: less memory, same faces.
            photo = await self._cpu(decode_photo, data)
            results = await self._core(self.service.identify, photo, actor=f"tg:{user_id}")
            # a new office's first photos: say why nobody was named
            nobody = not any(r.known for r in results) and await self._core(self.service.nobody_enrolled)
        except (ImageError, TooManyFaces, GalleryBusy) as exc:
            return None, self.explain(exc), None
        if not results:
            return None, self.t("no_faces_found"), None
        labels = face_labels(results, unknown=self.t("unknown_label"), numbered=True)
        lines = [self.t("face_known", index=i, name=r.name, distance=r.distance) if r.known else self.t("face_unknown", index=i)
                 for i, r in enumerate(results, 1)]
        lines += [self.t("nobody_enrolled")] if nobody else []
        jpeg = await self._cpu(annotated_jpeg, photo, labels)
        return jpeg, "\n".join([self.t("identified", count=len(results)), *lines]), self.face_buttons(results, user_id)

    # -- handlers ---------------------------------------------------------------------------
    async def on_image(self, message: Message, user_id: int, context) -> None:
        """A photo or a file: enroll it if this HR user has an /enroll waiting, else identify."""
        attachment = image_attachment(message)
        if attachment is None:
            await self.reply(message, self.t("not_image"))
            return
        waiting = self.waiting_photo.pop((message.chat_id, user_id), None)
        if waiting and self.is_hr(user_id) and time.monotonic() - waiting[1] < PENDING_TTL_S:
            await self.enroll_from(message, user_id, waiting[0], message)
            return
        if self.gate.waiting(user_id) >= self.limits.photos_waiting_per_user:
            if self._busy_notices.allow(user_id):  # one notice (and log line) a minute, not one per photo
                log.warning("user %s has %d photos waiting: skipping more", user_id, self.gate.waiting(user_id))
                await self.reply(message, self.t("busy"))
            return
        async with self.gate.turn(user_id):  # the photo's bytes and pixels exist only inside
            data = await self.download(message, attachment)
            if data is None:
                return
            jpeg, caption, markup = await self.identify(user_id, data)
            del data
        # Sent after giving the turn back: a slow Telegram does not hold up the recogniser.
        await (self.reply_photo(message, jpeg, caption, markup) if jpeg else self.reply(message, caption))

    async def on_enroll_caption(self, message: Message, user_id: int, context) -> None:
        """A photo whose caption is '/enroll NAME'."""
        if image_attachment(message) is None:
            await self.reply(message, self.t("not_image"))
            return
        try:
            name = validate_name(command_argument(message.caption))
        except InvalidName as exc:
            await self.reply(message, self.explain(exc) if command_argument(message.caption) else self.t("enroll_usage"))
            return
        await self.enroll_from(message, user_id, name, message)

    async def on_enroll(self, message: Message, user_id: int, context) -> None:
        """'/enroll NAME' as a reply to a photo, or before sending one."""
        argument = command_argument(message.text)
        if not argument:
            await self.reply(message, self.t("enroll_usage"))
            return
        try:
            name = validate_name(argument)
        except InvalidName as exc:
            await self.reply(message, self.explain(exc))
            return
        source = message.reply_to_message
        if source is not None and image_attachment(source) is not None:
            await self.enroll_from(message, user_id, name, source)
            return
        self.waiting_photo[(message.chat_id, user_id)] = (name, time.monotonic())
        await self.reply(message, self.t("enroll_send_photo", name=name))

    async def on_cancel(self, message: Message, user_id: int, context) -> None:
        """Forget a pending /enroll, or a face waiting for its name."""
        found = self.waiting_photo.pop((message.chat_id, user_id), None)
        found = self.waiting_name.pop((message.chat_id, user_id), None) or found
        await self.reply(message, self.t("enroll_cancelled" if found else "nothing_pending"))

    async def on_list(self, message: Message, user_id: int, context) -> None:
        people = await self._core(self.service.people)
        if not people:
            await self.reply(message, self.t("list_empty"))
            return
        lines = [self.t("list_line", name=p.name, samples=p.samples) for p in people]
        await self.reply(message, "\n".join([self.t("list_header", count=len(people)), *lines]))

    async def on_delete(self, message: Message, user_id: int, context) -> None:
        """'/delete NAME': ask for confirmation with buttons; nothing is removed yet."""
        name = command_argument(message.text).strip()
        if not name:
            await self.reply(message, self.t("delete_usage"))
            return
        person = await self._core(self.service.find, name)
        if person is None:
            await self.reply(message, self.t("unknown_person", name=name))
            return
        markup = self.ask(Pending("delete", person.name, message.chat_id), self.t("button_delete"))
        await self.reply(message, self.t("delete_confirm", name=person.name, samples=person.samples), markup)

    def rule_in_words(self, rule: DecisionRule) -> str:
        """The decision rule as DecisionRule.describe says it, in this update's language."""
        names, values = rule.clauses()
        return "".join(self.t(f"rule_{name}", **values) for name in names)

    async def on_threshold(self, message: Message, user_id: int, context) -> None:
        """'/threshold' shows the decision rule; '/threshold 0.7' saves a plain distance threshold."""
        argument = command_argument(message.text).strip()
        if not argument:
            rule, stored = await self._core(self.service.stored_rule)
            source = self.t(f"threshold_{stored}")
            await self.reply(message, self.t("threshold_show", rule=self.rule_in_words(rule), source=source))
            return
        try:
            value = await self._core(self.service.set_threshold, argument, actor=f"tg:{user_id}")
        except ValueError as exc:
            await self.reply(message, self.t("threshold_invalid", reason=str(exc)))
            return
        await self.reply(message, self.t("threshold_set", value=value))

    async def on_audit(self, message: Message, user_id: int, context) -> None:
        """'/audit [N]': the newest N audit entries (default 10, at most 100)."""
        argument = command_argument(message.text).strip() or "10"
        if not argument.isdigit() or not 1 <= int(argument) <= 100:
            await self.reply(message, self.t("audit_usage"))
            return
        entries = await self._core(self.service.audit_log, int(argument))
        if not entries:
            await self.reply(message, self.t("audit_empty"))
            return
        lines = []
        for entry in entries:
            details = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("time", "action", "actor"))
            lines.append(f"{entry.get('time')} {entry.get('action')} {entry.get('actor')}: {details}")
        await self.reply(message, "\n".join(lines))

    async def on_whoami(self, message: Message, user_id: int, context) -> None:
        """Anyone's ids; a stranger's at most `Limits.stranger_whoami` times a minute (and within
        the budget of replies to strangers), so a script cannot make the bot flood Telegram."""
        if not self.may_identify(user_id, message.chat_id):
            if not (self._whoami.allow((message.chat_id, user_id)) and self._to_strangers.allow()):
                return
        await self.reply(message, self.t("whoami", user_id=user_id, chat_id=message.chat_id))

    async def on_help(self, message: Message, user_id: int, context) -> None:
        if self.is_hr(user_id):
            await self.reply(message, self.t("help_hr"))
        elif self.may_identify(user_id, message.chat_id):
            await self.reply(message, self.t("help_user"))
        else:
            await self.refuse(message, user_id)

    async def on_unknown_command(self, message: Message, user_id: int, context) -> None:
        await self.reply(message, self.t("unknown_command"))

    async def on_other(self, message: Message, user_id: int, context) -> None:
        """Text, stickers, videos and the like in a private chat: say what the bot reads."""
        await self.reply(message, self.t("text_hint" if message.text else "unsupported"))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """'Consent given' / 'Delete' / 'Cancel' under a question asked by `ask`."""
        query = update.callback_query
        press = await self.hr_press(query)
        if press is None:
            return
        kind, key, choice = press
        pending = self.recall(key, kind)
        await self.send(query.answer)
        if pending is None:
            await self.edit(query, self.t("expired"))
            return
        if choice != "yes":
            await self.edit(query, self.t("cancelled"))
            return
        actor = f"tg:{query.from_user.id}"
        if kind == "enroll":
            await self.confirm_enroll(query, pending, query.from_user.id)
        elif kind == "sample":
            await self.confirm_sample_delete(query, pending, actor)
        else:
            await self.confirm_delete(query, pending, actor)

    async def confirm_delete(self, query, pending: Pending, actor: str) -> None:
        try:
            removed = await self._core(self.service.delete, pending.name, actor=actor)
        except UnknownPerson:
            await self.send(lambda: query.edit_message_text(self.t("unknown_person", name=pending.name)))
            return
        await self.send(lambda: query.edit_message_text(self.t("deleted", name=pending.name, samples=removed)))

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log every failure; tell the sender something went wrong. Never re-raises.

        A Telegram call that failed for good (outage outlasting the retries, or a send whose
        answer timed out and may have arrived) gets no "something went wrong" message: it
        would fail the same way, or follow an answer the person already has."""
        error = context.error
        if isinstance(error, GateClosed):  # stopping: the photo waited in vain, nothing to say
            return
        if isinstance(error, (NetworkError, RetryAfter)) and not isinstance(error, BadRequest):
            log.warning("Telegram error: %s", error)
            return
        if isinstance(error, TelegramError):
            log.warning("Telegram refused a request: %s", error)
        else:
            log.error("handling an update failed", exc_info=error)
        if isinstance(update, Update) and update.effective_message and update.effective_user:
            if self.may_identify(update.effective_user.id, update.effective_message.chat_id):
                try:
                    await self.reply(update.effective_message, self.t("busy" if isinstance(error, GalleryBusy) else "error"))
                except TelegramError:
                    pass

    async def on_start(self, application: Application) -> None:
        """Before the first update is handled: read the access list (so nobody allowed is
        refused at start), publish the command menus (in the background) and schedule the
        daily summary and the daily retention check."""
        await self.load_access()
        self.publish_menus_soon(application.bot)
        self.schedule_summary(application)
        self.schedule_retention(application)

    def stopping(self) -> None:
        """The bot is stopping: photos still waiting for their turn are let go (PTB's stop
        waits for every update in hand, and a flood would hold the shutdown for minutes)."""
        self.stop_menus()
        abandoned = self.gate.close()
        if abandoned:
            log.warning("stopping: %d photo(s) were still waiting and were not answered", abandoned)

    def handled(self, update: object) -> None:
        """PTB is done with `update`: cross it off the journal, unless it was let go at stop."""
        if self.journal is None or not isinstance(update, Update):
            return
        if update.update_id in self.abandoned:
            self.abandoned.discard(update.update_id)
            return
        self.journal.done(update.update_id)

    async def close(self, application: Application | None = None) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.journal is not None:
            self.journal.close()


class FaceBotApplication(Application):
    """PTB's Application, telling the FaceBot when an update has been handled (for the
    journal), letting it read the access list and publish its menus before the first update
    and replaying the journal's unhandled updates when it starts, and telling the FaceBot
    when it stops (see FaceBot.stopping)."""

    async def process_update(self, update: object) -> None:
        # Every reply to this update speaks its sender's language (each update has its own task).
        REPLY_LANGUAGE.set(language_of(update))
        try:
            await super().process_update(update)
        finally:
            facebot = self.bot_data.get("facebot")
            if facebot is not None:
                facebot.handled(update)

    async def start(self) -> None:
        facebot = self.bot_data.get("facebot")
        if facebot is not None:  # before the first update is handled (post_init runs only in run_polling)
            await facebot.on_start(self)
        await super().start()
        if isinstance(self.update_queue, JournalQueue):
            replayed = await self.update_queue.replay(self.bot)
            if replayed:
                log.info("handling %d update(s) left unhandled by the last run", replayed)

    async def stop(self) -> None:
        facebot = self.bot_data.get("facebot")
        if facebot is not None:
            facebot.stopping()
        await super().stop()


def build_application(config: BotConfig, service: FaceService, workers: int = 2, limits: Limits = Limits(),
                      journal: str | Path | None = None) -> Application:
    """Wire a FaceBot's handlers into a python-telegram-bot Application (not started).

    `journal`: a file where updates wait until they are handled (see UpdateJournal), so a
    killed bot answers them after its restart; None: no journal. The FaceBot is kept in
    `application.bot_data["facebot"]`.
    """
    bot = FaceBot(config, service, workers=workers, limits=limits)
    builder = ApplicationBuilder()
    if journal is not None:
        bot.journal = UpdateJournal(journal)
        builder = builder.update_queue(JournalQueue(bot.journal))
    application = (
        builder
        .application_class(FaceBotApplication)
        .token(config.token)
        .base_url(f"{config.api_url}/bot")
        .base_file_url(f"{config.api_url}/file/bot")
        .concurrent_updates(limits.updates_in_hand)  # heavy work is bounded by bot.gate, not here
        .connect_timeout(10).read_timeout(limits.read_timeout_s).write_timeout(60).media_write_timeout(120)
        .post_shutdown(bot.close)
        .build()
    )
    application.bot_data["facebot"] = bot
    message = filters.UpdateType.MESSAGE
    image = filters.PHOTO | filters.Document.ALL
    commands = {"start": (bot.on_help, "anyone"), "help": (bot.on_help, "anyone"), "whoami": (bot.on_whoami, "anyone"),
                "enroll": (bot.on_enroll, "hr"), "cancel": (bot.on_cancel, "hr"), "list": (bot.on_list, "hr"),
                "delete": (bot.on_delete, "hr"), "threshold": (bot.on_threshold, "hr"), "audit": (bot.on_audit, "hr"),
                "allow": (bot.on_allow, "hr"), "revoke": (bot.on_revoke, "hr"), "users": (bot.on_users, "hr"),
                "attendance": (bot.on_attendance, "hr"), "samples": (bot.on_samples, "hr"),
                "export": (bot.on_export, "hr")}
    # Faces' buttons (wrong:, face:, cam:) and a /samples list's (samples:) before the questions'
    # (enroll:, delete:, sample:).
    application.add_handler(CallbackQueryHandler(bot.kept_if_stopped(bot.on_face_button), pattern=r"^(wrong|face|same|cam):"))
    application.add_handler(CallbackQueryHandler(bot.kept_if_stopped(bot.on_sample_button), pattern=r"^samples:"))
    application.add_handler(CallbackQueryHandler(bot.kept_if_stopped(bot.on_pick_button), pattern=r"^pick:"))
    application.add_handler(CallbackQueryHandler(bot.kept_if_stopped(bot.on_button)))
    # The name of a face HR asked to enroll; any other text goes on to group 0 as before.
    application.add_handler(MessageHandler(message & filters.TEXT & ~filters.COMMAND, bot.on_name_reply), group=-1)
    application.add_handler(MessageHandler(message & image & filters.CaptionRegex(r"^/enroll(@\w+)?(\s|$)"),
                                           bot.guard(bot.on_enroll_caption, "hr")))
    for name, (handler, need) in commands.items():
        application.add_handler(CommandHandler(name, bot.guard(handler, need), filters=message))
    application.add_handler(MessageHandler(message & filters.COMMAND, bot.guard(bot.on_unknown_command, "user")))
    application.add_handler(MessageHandler(message & image, bot.guard(bot.on_image, "user")))
    application.add_handler(MessageHandler(message & filters.ChatType.PRIVATE & ~filters.StatusUpdate.ALL,
                                           bot.guard(bot.on_other, "user")))
    application.add_error_handler(bot.on_error)
    return application


def warm_up(service: FaceService) -> None:
    """Run both models once on a blank picture, so the first user does not wait for TensorFlow's set-up."""
    try:
        service.recognizer.warm_up()
    except Exception:  # only an optimisation
        log.warning("model warm-up failed", exc_info=True)


def limits_for(config: BotConfig) -> Limits:
    """The bot's Limits, with config.telegram_retry_s (FACEBOT_TELEGRAM_RETRY_S) as how long a
    reply, a download or the start-up keeps retrying through a Telegram outage."""
    if config.telegram_retry_s is None:
        return Limits()
    return Limits(retry=replace(REPLIES, total_s=config.telegram_retry_s))


async def check_token(config: BotConfig, policy: RetryPolicy = REPLIES) -> None:
    """Ask Telegram who the bot is (getMe), retried under `policy` while Telegram is
    unreachable or failing.

    Raises InvalidToken when Telegram rejects the token (its message holds the token: never
    print it), or the last TelegramError once the policy gives up.
    """
    from telegram import Bot

    bot = Bot(config.token, base_url=f"{config.api_url}/bot", base_file_url=f"{config.api_url}/file/bot")
    try:
        await policy.call(bot.initialize, idempotent=True)
    finally:
        await bot.shutdown()


def run_bot(args: argparse.Namespace) -> int:
    """`facebot bot`: load settings, check the token, load the models, then poll Telegram until
    interrupted. Exit 2 for a bad setting or a rejected token, 1 when Telegram cannot be reached."""
    try:
        config = load_bot_config()
    except ConfigError as exc:
        print(f"facebot: {exc}", file=sys.stderr)
        return 2
    with token_kept_out(config.token):  # logs, tracebacks, stdout/stderr, escaping exceptions
        return _run_bot(args, config, limits_for(config))


def _run_bot(args: argparse.Namespace, config: BotConfig, limits: Limits) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request URL
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    if not args.verbose:
        logging.getLogger("bot").setLevel(logging.INFO)
    try:  # before the models load: a wrong token should not take a minute to find out
        asyncio.run(check_token(config, limits.retry))
    except TelegramError as exc:
        return _telegram_failure(exc, config)

    from facebot.service import open_service, service_options

    log.info("loading models (%s + FaceNet, comparing with %s)", args.detector, args.model)
    service = open_service(**service_options(args))
    warm_up(service)
    application = build_application(config, service, limits=limits, journal=Path(args.data_dir) / JOURNAL_NAME)
    log.info("polling %s for updates; gallery in %s", config.api_url, args.data_dir)
    try:
        # Telegram may fail between the check and here (the models take a while to load):
        # PTB retries its own start-up calls once a second, for as long as a reply would.
        retries = int(limits.retry.total_s) if limits.retry.total_s is not None else -1
        application.run_polling(allowed_updates=["message", "callback_query"], bootstrap_retries=retries)
    except (InvalidToken, NetworkError) as exc:
        return _telegram_failure(exc, config)
    return 0


def _telegram_failure(exc: TelegramError, config: BotConfig) -> int:
    """Say why the bot cannot run, in one line on stderr, and return its exit code: 2 for a
    token Telegram rejects (never printed: the exception's own message holds it), 1 when
    Telegram cannot be reached."""
    if isinstance(exc, InvalidToken):
        print(REJECTED_TOKEN, file=sys.stderr)
        return 2
    print(f"facebot: cannot reach the Telegram Bot API at {config.api_url}: {exc}", file=sys.stderr)
    return 1


def add_command(subparsers) -> None:
    """Add the `bot` subcommand to the facebot command line."""
    p = subparsers.add_parser("bot", help="run the Telegram bot (settings from the environment or .env)")
    p.set_defaults(func=run_bot)
