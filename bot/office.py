"""The bot's office handlers: access managed from Telegram (/allow, /revoke, /users), command
menus and the language of each reply, attendance (/attendance and the daily summary), and
buttons under replies and camera alerts to name unknown faces or report a wrong name.

`OfficeHandlers` is mixed into `FaceBot` (telegram_bot.py), which wires the handlers in
`build_application`; it uses FaceBot's helpers (`reply`, `t`, `_core`, `config`, `service`).

Access: the environment's FACEBOT_HR_IDS / FACEBOT_USER_IDS are the bootstrap (fixed until a
restart); HR adds and removes everyone else from Telegram. The list lives in the gallery
(the service's "access" setting), so it survives restarts and is shared with every process
on the gallery. The bot keeps a copy: its own changes apply at once, changes made elsewhere
within ACCESS_TTL_S (the copy is refreshed in the background, so no message ever waits for
the gallery just to be let in).

Language: each person is answered in their Telegram app's language (the update's
`language_code`) when it is English or Spanish, else in FACEBOT_LANG. The language of the
update being handled is kept in REPLY_LANGUAGE (a context variable: PTB handles each update
in its own task), so every `t()` follows it without being told.

Menus (setMyCommands): the users' commands for everyone, the HR menu in each HR person's
private chat, each in English and Spanish and, for any other app language, FACEBOT_LANG.

Attendance: the cameras record sightings in the gallery; /attendance [date] shows a day, and
a PTB JobQueue job posts the day's summary of all cameras to FACEBOT_ALERT_CHAT_ID at
FACEBOT_SUMMARY_AT in FACEBOT_TZ, once a day (the gallery remembers the day it went out, so a
restart or a second bot does not send it again).

Closing the loop: under an identify reply, HR gets "Enroll face #i…" for each unknown face and
everyone "#i is not NAME" for each named one. The bot keeps those faces in memory (FACE_TTL_S,
at most MAX_FACES; the embedding of unknown ones, never the photo). A press on "Enroll…" asks
for the name; the HR person's next text message in that chat is the name, and once HR confirms
the person's consent (bot/privacy.py) the face's embedding is enrolled. A camera's
unknown-face alert carries "Enroll this face…" too: the camera keeps the embedding in the
gallery (the service's pending faces, 24 h), the bot handles the press. "Not NAME" records
the report in the audit log.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from contextvars import ContextVar
from datetime import date, datetime

import numpy as np
from telegram import (BotCommand, BotCommandScopeChat, BotCommandScopeChatMember, BotCommandScopeDefault, ForceReply, InlineKeyboardButton,
                      InlineKeyboardMarkup, Message)
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from facebot.bot.privacy import Pending
from facebot.bot.telegram_util import command_argument
from facebot.office import Access, AccessRefused, AttendanceRow, FixedAccess, NotListed, local_zone
from facebot.service import InvalidName, makes_a_sample
from facebot.texts import text

log = logging.getLogger(__name__)

ACCESS_TTL_S = 5.0  # how stale the bot's copy of the access list may get (changes made by others)
MENU_LANGUAGES = ("en", "es")  # the catalog's languages (texts.py)
USER_COMMANDS = ("help", "whoami")
HR_COMMANDS = ("help", "whoami", "enroll", "list", "samples", "export", "delete", "threshold", "audit", "cancel", "allow", "revoke", "users",
               "attendance")
SUMMARY_JOB = "daily-summary"
FACE_TTL_S = 24 * 3600  # faces of replies kept for their buttons
MAX_FACES = 300  # ... at most (2 KB each)
MAX_FACE_BUTTONS = 8  # buttons under one reply
# An unknown face whose nearest person lies within this distance is offered to HR as that
# person ("This is Ana: add a sample…"): a second sample is what names a person's next
# photos from the wild (README, "Enroll two photos"). Past `high` (0.96) it spans most press
# photos the rule refuses (LFW: 5.1% of genuine pairs lie in 0.95-1.05, 6.4% beyond 0.95),
# and 1.5% (Georgia Tech) / 0.4% (LFW) of pairs of different people: an offer, which HR
# accepts by sight and with the person's consent, never a name given to anyone.
SUGGEST_UP_TO = 1.05
NAME_WAIT_S = 600  # how long the bot waits for the name after "Enroll…"
MESSAGE_LIMIT = 4000

# The language of the update being handled ("en", "es"), or None: FACEBOT_LANG.
REPLY_LANGUAGE: ContextVar[str | None] = ContextVar("facebot_reply_language", default=None)


def language_of(update: object) -> str | None:
    """"en" or "es" from the sender's app language (an IETF tag: "es", "es-419", "en-GB"), or
    None for any other language or none given."""
    user = getattr(update, "effective_user", None)
    primary = ((getattr(user, "language_code", None) or "").split("-")[0]).lower()
    return primary if primary in MENU_LANGUAGES else None


def parse_chat_id(text: str) -> int | None:
    """A Telegram user or chat id ('12345', '-100123'), or None."""
    text = text.strip()
    digits = text[1:] if text.startswith("-") else text
    return int(text) if digits.isdigit() and len(digits) <= 20 else None


@dataclass
class RememberedFace:
    """A face of an identify reply, for its button: its number in the reply, the name it was
    given (None: unknown) and distance, and (unknown faces only) its embedding and the
    nearest person HR is offered (None: nobody near enough)."""

    index: int
    name: str | None
    distance: float
    embedding: np.ndarray | None = None
    created: float = 0.0
    nearest: str | None = None
    pixels: float = float("nan")  # unknown faces: the face's width, for the consent question's note


class OfficeHandlers:
    """Access rules and handlers; FaceBot calls `init_office()` from its __init__."""

    def init_office(self) -> None:
        self._stored_access = Access()
        self._access_read_at = float("-inf")  # monotonic time of the last read from the gallery
        self._access_generation = 0  # bumped by this bot's own changes: an older read is stale
        self._access_task: asyncio.Task | None = None
        self._menu_task: asyncio.Task | None = None
        # HR person -> the groups where this bot gave them the HR menu (this run; see hr_menu_in_group)
        self._group_menus: dict[int, set[int]] = {}
        self._group_menu_tasks: set[asyncio.Task] = set()
        self.faces: OrderedDict[str, RememberedFace] = OrderedDict()  # button key -> face, oldest first
        self.waiting_name: dict[tuple[int, int], tuple[str, str, float]] = {}  # (chat, user) -> kind, key, since

    # -- access ------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> Access:
        """The environment's ids (FACEBOT_HR_IDS, FACEBOT_USER_IDS): fixed until a restart."""
        return Access(self.config.user_ids, self.config.hr_ids)

    def access_now(self) -> Access:
        """Who may use the bot now: the bootstrap and the stored list. Never waits: a copy older
        than ACCESS_TTL_S is answered as it is and refreshed in the background."""
        if time.monotonic() - self._access_read_at > ACCESS_TTL_S:
            self._refresh_access_soon()
        return self.bootstrap | self._stored_access

    def _refresh_access_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not in the bot's event loop (a test calling a helper)
            return
        if self._access_task is None or self._access_task.done():
            self._access_task = loop.create_task(self.load_access())

    async def load_access(self) -> Access:
        """Read the stored access list from the gallery into the bot's copy; returns it. A read
        that fails keeps the old copy (logged), so a busy gallery locks nobody out."""
        generation = self._access_generation
        try:
            stored = await self._core(self.service.access)
        except Exception as exc:  # a busy, unreadable or closing gallery: keep what we have
            log.warning("could not read the access list (%s); keeping the last one", exc)
            self._access_read_at = time.monotonic()
            return self._stored_access
        if generation == self._access_generation:  # else a change of ours came after this read
            self._stored_access = stored
            self._access_read_at = time.monotonic()
        return self._stored_access

    def _access_changed(self, stored: Access) -> None:
        """This bot changed the list: use it from the next message on."""
        self._access_generation += 1
        self._stored_access = stored
        self._access_read_at = time.monotonic()

    def _role_text(self, role: str) -> str:
        return self.t("role_hr" if role == "hr" else "role_user")

    # -- handlers ----------------------------------------------------------------------------
    async def on_allow(self, message: Message, user_id: int, context) -> None:
        """'/allow ID' lets a user (or a group chat) identify; '/allow ID hr' makes a user HR."""
        words = command_argument(message.text).split()
        target = parse_chat_id(words[0]) if words else None
        if target is None or len(words) > 2 or (len(words) == 2 and words[1].lower() != "hr"):
            await self.reply(message, self.t("allow_usage"))
            return
        hr, was_hr = len(words) == 2, self.is_hr(target)
        try:
            stored = await self._core(self.service.allow, target, hr=hr, actor=f"tg:{user_id}")
        except AccessRefused as exc:
            await self.reply(message, self.t("allow_refused", reason=str(exc)))
            return
        self._access_changed(stored)
        role, fixed = ("hr" if hr else "user"), self.bootstrap.role(target)
        if fixed == "hr" and role != "hr":  # the environment keeps them HR whatever we store
            await self.reply(message, self.t("allowed_but_env", id=target, role=self._role_text(role),
                                             fixed=self._role_text(fixed), variable="FACEBOT_HR_IDS"))
        else:
            await self.reply(message, self.t("allowed", id=target, role=self._role_text(role)))
        if self.is_hr(target) != was_hr:
            await self.hr_menu_changed(context.bot, target)

    async def on_revoke(self, message: Message, user_id: int, context) -> None:
        """'/revoke ID': take back what was given from Telegram (not the environment's ids)."""
        target = parse_chat_id(command_argument(message.text))
        if target is None:
            await self.reply(message, self.t("revoke_usage"))
            return
        was_hr = self.is_hr(target)
        try:
            stored = await self._core(self.service.revoke, target, actor=f"tg:{user_id}", bootstrap=self.bootstrap)
        except FixedAccess as exc:
            await self.reply(message, self.t("revoke_fixed", id=target, role=self._role_text(exc.role), variable=exc.variable))
            return
        except NotListed:
            await self.reply(message, self.t("revoke_not_listed", id=target))
            return
        self._access_changed(stored)
        fixed = self.bootstrap.role(target)
        if fixed:
            await self.reply(message, self.t("revoked_but_env", id=target, role=self._role_text(fixed),
                                             variable="FACEBOT_HR_IDS" if fixed == "hr" else "FACEBOT_USER_IDS"))
        else:
            await self.reply(message, self.t("revoked", id=target))
        if self.is_hr(target) != was_hr:
            await self.hr_menu_changed(context.bot, target)

    async def on_users(self, message: Message, user_id: int, context) -> None:
        """'/users': HR and users (and group chats), the environment's marked (env)."""
        stored, boot = await self.load_access(), self.bootstrap

        def listing(ids: set[int], fixed: frozenset[int]) -> str:
            return ", ".join(f"{i} (env)" if i in fixed else str(i) for i in sorted(ids)) or self.t("users_none")

        hr = boot.hr | stored.hr
        users = (boot.users | stored.users) - hr
        await self.reply(message, self.t("users_list", hr=listing(hr, boot.hr), users=listing(users, boot.users)))

    # -- menus -------------------------------------------------------------------------------
    def reply_language(self) -> str:
        """The language of the reply being written: the sender's (en, es), else FACEBOT_LANG."""
        return REPLY_LANGUAGE.get() or self.config.lang

    def menu(self, names: tuple[str, ...], lang: str) -> list[BotCommand]:
        """The commands `names` with their descriptions in `lang` (texts.py "cmd_NAME")."""
        return [BotCommand(name, text(lang, f"cmd_{name}")) for name in names]

    def publish_menus_soon(self, bot) -> None:
        """Publish the menus in the background: with many HR people that is many calls, and
        nobody's message should wait for them."""
        self._menu_task = asyncio.get_running_loop().create_task(self.publish_menus(bot))

    async def publish_menus(self, bot) -> None:
        """Publish the command menus, best effort (a menu is a convenience; a failure is logged
        and not retried): users' commands for everyone (BotCommandScopeDefault), the HR menu in
        each HR person's private chat (BotCommandScopeChat)."""
        if await self._set_menu(bot, BotCommandScopeDefault(), USER_COMMANDS):
            for user_id in sorted(self.access_now().hr):
                if not await self._set_menu(bot, BotCommandScopeChat(user_id), HR_COMMANDS):
                    return

    async def _set_menu(self, bot, scope, names: tuple[str, ...] | None) -> bool:
        """Set the menu of `scope` to `names` (None: delete it) for English, Spanish and every
        other language (FACEBOT_LANG); False when Telegram refused (logged)."""
        try:
            for lang in (*MENU_LANGUAGES, None):
                if names is None:
                    await bot.delete_my_commands(scope=scope, language_code=lang)
                else:
                    await bot.set_my_commands(self.menu(names, lang or self.config.lang), scope=scope, language_code=lang)
        except TelegramError as exc:
            log.warning("could not set the command menu: %s", exc)
            return False
        return True

    def stop_menus(self) -> None:
        """The bot is stopping: menu calls still under way are dropped (they are a convenience)."""
        for task in [self._menu_task, *self._group_menu_tasks]:
            if task is not None and not task.done():
                task.cancel()

    async def hr_menu_changed(self, bot, user_id: int) -> None:
        """Someone became HR or stopped being HR: their private chat gets the HR menu, or loses
        it (and shows the users' menu again), and so do the groups where they had it. Groups
        are never HR."""
        if user_id <= 0:
            return
        hr = self.is_hr(user_id)
        await self._set_menu(bot, BotCommandScopeChat(user_id), HR_COMMANDS if hr else None)
        if not hr:
            for chat_id in sorted(self._group_menus.pop(user_id, ())):
                await self._set_menu(bot, BotCommandScopeChatMember(chat_id, user_id), None)

    def hr_menu_in_group(self, bot, chat_id: int, user_id: int) -> None:
        """An HR person wrote in the group `chat_id`: give them the HR menu there (the group's
        own menu, for everyone, is the users'), once per group and run, in the background so
        that their message does not wait. Telegram keeps it across restarts; a later run
        only sets it again."""
        if chat_id >= 0 or not self.is_hr(user_id) or chat_id in self._group_menus.get(user_id, ()):
            return
        self._group_menus.setdefault(user_id, set()).add(chat_id)
        task = asyncio.get_running_loop().create_task(
            self._set_menu(bot, BotCommandScopeChatMember(chat_id, user_id), HR_COMMANDS))
        self._group_menu_tasks.add(task)  # a reference until it is done, or the loop may drop it
        task.add_done_callback(self._group_menu_tasks.discard)

    # -- attendance -------------------------------------------------------------------------
    @property
    def zone(self):
        """The time zone of attendance days and of the summary: FACEBOT_TZ, else the machine's."""
        return self.config.tz or local_zone()

    def attendance_text(self, rows: list[AttendanceRow], day: date, header: str, lang: str | None = None) -> str:
        """A day's rows as chat lines "Ana: 08:58–17:31 (front door, lobby)" under `header`."""
        lang = lang or self.reply_language()
        if not rows:
            return text(lang, "attendance_nobody", date=day.isoformat())
        lines = [f"{r.name}: {r.first:%H:%M}–{r.last:%H:%M} ({', '.join(r.cameras)})" for r in rows]
        return "\n".join([text(lang, header, date=day.isoformat(), count=len(rows)), *lines])

    async def on_attendance(self, message: Message, user_id: int, context) -> None:
        """'/attendance [YYYY-MM-DD]': who the cameras saw that day (default today), all cameras."""
        argument = command_argument(message.text).strip()
        try:
            day = date.fromisoformat(argument) if argument else datetime.now(self.zone).date()
        except ValueError:
            await self.reply(message, self.t("attendance_usage"))
            return
        rows = await self._core(self.service.attendance, day, self.zone)
        await self.reply(message, self.attendance_text(rows, day, "attendance_header"))

    def schedule_summary(self, application) -> None:
        """Run `send_daily_summary` every day at FACEBOT_SUMMARY_AT in FACEBOT_TZ (PTB's
        JobQueue, which python-telegram-bot[job-queue] installs); nothing when it is unset."""
        if self.config.summary_at is None:
            return
        if application.job_queue is None:
            log.error("FACEBOT_SUMMARY_AT is set, but python-telegram-bot's job queue is not installed "
                      "(pip install 'python-telegram-bot[job-queue]'): no daily summary")
            return
        at = self.config.summary_at.replace(tzinfo=self.zone)
        application.job_queue.run_daily(self.send_daily_summary, time=at, name=SUMMARY_JOB)
        log.info("the daily attendance summary goes to chat %s at %s (%s)", self.config.alert_chat_id,
                 self.config.summary_at.strftime("%H:%M"), self.zone)

    async def send_daily_summary(self, context) -> None:
        """The job: post today's attendance of all cameras to the alert chat in FACEBOT_LANG,
        unless it went out already today (this bot before a restart, or another one); then note
        it in the gallery (audited). A failure is logged by the error handler; the next day's
        job runs regardless."""
        day = datetime.now(self.zone).date()
        if await self._core(self.service.summary_sent, day):
            log.info("the summary of %s was sent already", day)
            return
        rows = await self._core(self.service.attendance, day, self.zone)
        body = self.attendance_text(rows, day, "summary_header", lang=self.config.lang)
        for start in range(0, len(body), MESSAGE_LIMIT):
            chunk = body[start : start + MESSAGE_LIMIT]
            await self.send(lambda: context.bot.send_message(self.config.alert_chat_id, chunk))
        await self._core(self.service.mark_summary_sent, day, len(rows), actor="tg:summary")

    # -- closing the loop: naming unknown faces, reporting wrong names ------------------------
    def remember_face(self, face: RememberedFace) -> str:
        """Keep a face of a reply (its embedding if unknown; never the photo) for FACE_TTL_S,
        at most MAX_FACES (the oldest go first); returns the key its buttons carry."""
        now = time.monotonic()
        while self.faces and (len(self.faces) >= MAX_FACES or now - next(iter(self.faces.values())).created > FACE_TTL_S):
            self.faces.popitem(last=False)
        key = secrets.token_hex(6)
        face.created = now
        self.faces[key] = face
        return key

    def recalled_face(self, key: str) -> RememberedFace | None:
        face = self.faces.get(key)
        return face if face is not None and time.monotonic() - face.created <= FACE_TTL_S else None

    def face_buttons(self, results, user_id: int) -> InlineKeyboardMarkup | None:
        """Buttons under an identify reply: "#i is not NAME" under each named face, for anyone
        allowed; under each unknown face, for HR only, "Enroll face #i…" and, when someone is
        within SUGGEST_UP_TO, "#i is NAME: add a sample…" first. None when there are none."""
        rows = []
        one = len(results) == 1
        for index, result in enumerate(results, 1):
            if len(rows) >= MAX_FACE_BUTTONS:
                break
            if result.known:
                key = self.remember_face(RememberedFace(index, result.name, result.distance))
                rows.append([InlineKeyboardButton(self.t("button_not_person", index=index, name=result.name),
                                                  callback_data=f"wrong:{key}")])
            elif self.is_hr(user_id) and result.embedding is not None and makes_a_sample(result.pixels, result.visible):
                # (a face too small or too cut to enroll gets no enroll button: the service would refuse it)
                nearest = result.name if result.name and result.distance <= SUGGEST_UP_TO else None
                key = self.remember_face(RememberedFace(index, None, result.distance, np.array(result.embedding, np.float32),
                                                        nearest=nearest, pixels=result.pixels))
                if nearest:
                    label = (self.t("button_add_to_this", name=nearest) if one
                             else self.t("button_add_to_face", index=index, name=nearest))
                    rows.append([InlineKeyboardButton(label, callback_data=f"same:{key}")])
                label = self.t("button_enroll_this") if one else self.t("button_enroll_face", index=index)
                rows.append([InlineKeyboardButton(label, callback_data=f"face:{key}")])
        return InlineKeyboardMarkup(rows) if rows else None

    async def on_face_button(self, update, context) -> None:
        """A press on "#i is not NAME" (wrong:KEY), "Enroll face #i…" (face:KEY) or a camera
        alert's "Enroll this face…" (cam:ID): record the report, or ask HR for the name."""
        query = update.callback_query
        kind, _, key = (query.data or "").partition(":")
        user_id, chat_id = query.from_user.id, query.message.chat.id if query.message else query.from_user.id
        if kind == "wrong":
            face = self.recalled_face(key)
            if not self.may_identify(user_id, chat_id):
                await self.send(lambda: query.answer(self.t("refused"), show_alert=True))
                return
            if face is None:
                await self.send(lambda: query.answer(self.t("face_expired"), show_alert=True))
                return
            del self.faces[key]  # one report per face
            await self._core(self.service.report_wrong_name, face.name, face.distance, actor=f"tg:{user_id}", where="photo")
            await self.send(lambda: query.answer(self.t("report_recorded", index=face.index, name=face.name), show_alert=True))
            return
        if not self.is_hr(user_id):
            await self.send(lambda: query.answer(self.t("only_hr"), show_alert=True))
            return
        if kind == "same":
            await self.add_to_nearest(query, key, chat_id)
            return
        if kind == "face":
            face = self.recalled_face(key)
            prompt = self.t("ask_face_name", index=face.index) if face else None
        else:  # "cam": a camera's alert; the face waits in the gallery
            pending = await self._core(self.service.pending_face, key)
            prompt = self.t("ask_camera_face_name", camera=pending.camera,
                            time=f"{pending.time.astimezone(self.zone):%Y-%m-%d %H:%M}") if pending else None
        if prompt is None:
            await self.send(lambda: query.answer(self.t("face_expired"), show_alert=True))
            return
        self.waiting_name[(chat_id, user_id)] = (kind, key, time.monotonic())
        await self.send(query.answer)
        # ForceReply: the answer comes back as a reply, which a bot in a group receives even in privacy mode.
        await self.send(lambda: context.bot.send_message(chat_id, prompt, reply_markup=ForceReply()))

    async def add_to_nearest(self, query, key: str, chat_id: int) -> None:
        """HR pressed "This is NAME: add a sample…" under an unknown face: ask to confirm the
        person's consent before the face becomes NAME's next sample (bot/privacy.py)."""
        face = self.recalled_face(key)
        if face is None or face.nearest is None:
            await self.send(lambda: query.answer(self.t("face_expired"), show_alert=True))
            return
        await self.send(query.answer)
        name, clash = await self._core(self.service.check_face_enrollment, face.nearest, face.embedding)
        await self.ask_consent(query.message, Pending("enroll", name, chat_id, embedding=face.embedding, source="photo",
                                                      face=("face", key), pixels=face.pixels), clash)

    async def on_name_reply(self, update, context) -> None:
        """The next text message of an HR person asked for a face's name (in that chat): enroll
        that face as the name. Other messages go on to the usual handlers (ApplicationHandlerStop
        is raised only for a name taken here)."""
        message, user = update.message, update.effective_user
        if message is None or user is None or not message.text:
            return
        key = (message.chat_id, user.id)
        waiting = self.waiting_name.get(key)
        if waiting is None:
            return
        del self.waiting_name[key]
        kind, face_key, since = waiting
        if time.monotonic() - since > NAME_WAIT_S or not self.is_hr(user.id):
            return
        if kind == "face":
            face = self.recalled_face(face_key)
            embedding, source, pixels = (face.embedding if face else None), "photo", (face.pixels if face else float("nan"))
        else:
            pending = await self._core(self.service.pending_face, face_key)
            embedding, source = (pending.embedding if pending else None), f"camera:{pending.camera}" if pending else ""
            pixels = pending.pixels if pending else float("nan")
        if embedding is None:
            await self.reply(message, self.t("face_expired"))
            raise ApplicationHandlerStop
        try:
            name, clash = await self._core(self.service.check_face_enrollment, message.text, embedding)
        except InvalidName as exc:  # ask again
            self.waiting_name[key] = waiting
            await self.reply(message, self.explain(exc))
            raise ApplicationHandlerStop
        if clash is not None:
            await self.reply(message, self.t("face_conflict", other=clash.name, distance=clash.distance))
            raise ApplicationHandlerStop
        # Enrolled only once HR confirms the person's consent (bot/privacy.py); the face is
        # forgotten then.
        await self.ask_consent(message, Pending("enroll", name, message.chat_id, embedding=embedding, source=source,
                                                face=(kind, face_key), pixels=pixels))
        raise ApplicationHandlerStop
