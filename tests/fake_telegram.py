"""A fake Telegram Bot API server for tests: real HTTP on 127.0.0.1, no network beyond it.

Tests push updates (`push_photo`, `push_document`, `push_text`, `push_callback`,
`push_message`), the bot under test long-polls them with getUpdates, and every outgoing
call (sendMessage, sendPhoto with the uploaded bytes, editMessageText, ...) is recorded.
`await server.wait_for_messages(chat_id, n)` waits until the bot has sent n messages there.
`server.languages[user_id] = "es"` makes that user's updates carry language_code "es";
`server.menus()` lists the command menus the bot set or deleted (scope, language, commands).

Faults, to see what the client does when Telegram misbehaves (each failed call is recorded
with its status; 0 for a dropped connection):

- `fail_next(method, status, retry_after=..., html=True, drop=True, delay=...)`: the next
  call of `method` fails once: an error status (a JSON error, or with `html=True` the HTML
  page a proxy shows for a 502), a 429 asking to wait `retry_after` s, or (`drop=True`) a
  connection closed without an answer.
- `slow_next(method, delay, count=1)`: the call is carried out (the message is sent) but the
  answer comes `delay` s later, after the client may have given up: the "Telegram had it"
  case of a read timeout.
- `outage(seconds, status=500, ...)`: every API call (and file download) fails the same way
  for `seconds`; `methods=` limits it to some methods.
- `reject_token(status=401)`: every call is refused as Telegram refuses a revoked (401) or
  malformed (404) token; `reject_token(None)` ends it.
- `FakeTelegram.closed_url()`: an address where nothing listens (Telegram unreachable).

Usage::

    server = FakeTelegram().start()
    application = build_application(BotConfig(token=server.token, api_url=server.url, ...), service)
    async with polling(application):
        server.push_photo(...)
        await server.wait_for_messages(chat_id, 1)
    server.stop()
"""
from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

BOT_ID = 999000
# Parameters that PTB sends as raw strings; everything else is JSON-encoded.
STRING_PARAMS = {"text", "caption", "callback_query_id", "file_id", "parse_mode", "inline_message_id", "description",
                 "short_description", "name"}
MESSAGE_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageCaption",
                   "editMessageReplyMarkup"}
# What nginx in front of the Bot API answers when Telegram's backend is down: not JSON.
BAD_GATEWAY_HTML = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
DROPPED = 0  # Call.status of a call whose connection was closed without an answer


@contextlib.asynccontextmanager
async def polling(application):
    """Run a built facebot Application (facebot.bot.telegram_bot.build_application) polling as
    `facebot bot` does, then stop it, its updater and its photo workers."""
    await application.initialize()
    await application.start()
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
        application.bot_data["facebot"].executor.shutdown(wait=True)


class ApiError(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status


@dataclass(frozen=True)
class Fault:
    """How a call fails: an error `status` (JSON, or an HTML page), a 429 with `retry_after`,
    a dropped connection, or (status 200) a correct answer sent `delay` s late."""

    status: int = 500
    retry_after: float | None = None
    html: bool = False
    drop: bool = False
    delay: float = 0.0


@dataclass
class Call:
    """One request the bot made: method, decoded parameters, uploaded photo bytes, our reply."""

    method: str
    params: dict
    photo: bytes | None = None
    result: object = None
    status: int = 200  # not 200: the fake failed this call on purpose
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[dict]:
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


class FakeTelegram:
    """The server and everything it saw. Thread-safe; the HTTP side runs in its own threads."""

    def __init__(self, token: str = "123456:TEST-fake-token"):
        self.token = token
        self.calls: list[Call] = []
        self.downloads: list[str] = []
        self.failures: dict[str, list[tuple[int, dict]]] = {}
        self._outages: list[tuple[float, frozenset[str] | None, Fault]] = []  # (until, methods, fault)
        self.token_status: int | None = None  # set: every call is refused with it (reject_token)
        self.polls = 0  # getUpdates calls answered (they are not recorded in `calls`)
        self.languages: dict[int, str] = {}  # user id -> the language_code their messages carry
        self._updates: list[dict] = []
        self._files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._stopped = False
        self._httpd: ThreadingHTTPServer | None = None

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> "FakeTelegram":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server._handle(self)

            def do_POST(self):
                server._handle(self)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 drops bursts of connections
            daemon_threads = True

        self._httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, name="fake-telegram", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    # -- what tests push ------------------------------------------------------------------------
    def _next_id(self) -> int:
        return next(self._ids)

    def _base_message(self, user_id: int, chat_id: int) -> dict:
        chat = {"id": chat_id, "type": "private", "first_name": f"user{user_id}"} if chat_id > 0 else \
               {"id": chat_id, "type": "group", "title": f"group{chat_id}"}
        return {"message_id": self._next_id(), "date": int(time.time()), "chat": chat, "from": self._user(user_id)}

    def _user(self, user_id: int) -> dict:
        """A sender; with a `language_code` when `languages` gives one for this user."""
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        if user_id in self.languages:
            user["language_code"] = self.languages[user_id]
        return user

    def _add_file(self, data: bytes, size: int | None) -> dict:
        file_id = f"file{self._next_id()}"
        self._files[file_id] = data
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data) if size is None else size}

    def push_update(self, update: dict) -> dict:
        """Queue a raw update (update_id is filled in) and return it."""
        with self._cond:
            update["update_id"] = self._next_id()
            self._updates.append(update)
            self._cond.notify_all()
        return update

    def push_message(self, user_id: int, chat_id: int, **fields) -> dict:
        """Queue a message with extra fields (e.g. sticker=..., video=...); return the message."""
        message = {**self._base_message(user_id, chat_id), **fields}
        self.push_update({"message": message})
        return message

    def push_text(self, user_id: int, chat_id: int, text: str, reply_to: dict | None = None) -> dict:
        """Queue a text message; a leading /command gets its bot_command entity."""
        fields: dict = {"text": text}
        if text.startswith("/"):
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            fields["reply_to_message"] = reply_to
        return self.push_message(user_id, chat_id, **fields)

    def push_photo(self, user_id: int, chat_id: int, jpeg: bytes, caption: str | None = None,
                   file_size: int | None = None) -> dict:
        """Queue a photo (a thumbnail size plus the full size, which holds `jpeg`)."""
        thumb = {**self._add_file(b"thumbnail", None), "width": 90, "height": 90}
        full = {**self._add_file(jpeg, file_size), "width": 640, "height": 480}
        fields: dict = {"photo": [thumb, full]}
        if caption is not None:
            fields["caption"] = caption
            if caption.startswith("/"):
                fields["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": len(caption.split()[0])}]
        return self.push_message(user_id, chat_id, **fields)

    def push_document(self, user_id: int, chat_id: int, data: bytes, file_name: str = "photo.jpg",
                      mime_type: str = "image/jpeg", caption: str | None = None, file_size: int | None = None) -> dict:
        """Queue a file sent as a document."""
        document = {**self._add_file(data, file_size), "file_name": file_name, "mime_type": mime_type}
        fields: dict = {"document": document}
        if caption is not None:
            fields["caption"] = caption
        return self.push_message(user_id, chat_id, **fields)

    def push_callback(self, user_id: int, message: dict, data: str) -> dict:
        """Queue a press on an inline button of `message` (a bot message, e.g. Call.result)."""
        query = {"id": str(self._next_id()), "chat_instance": "1", "data": data, "message": message,
                 "from": self._user(user_id)}
        return self.push_update({"callback_query": query})

    def fail_next(self, method: str, status: int, **payload) -> None:
        """Make the next call of `method` fail, e.g. fail_next("sendMessage", 429, retry_after=1).

        `html=True`: answer an HTML page instead of JSON (a proxy's 502); `drop=True`: close
        the connection without answering (status is then ignored); `delay=S`: wait S s first.
        """
        self.failures.setdefault(method, []).append((status, payload))

    def slow_next(self, method: str, delay: float, count: int = 1) -> None:
        """The next `count` calls of `method` succeed (sent messages are recorded at once) but
        are answered only after `delay` seconds."""
        for _ in range(count):
            self.failures.setdefault(method, []).append((200, {"delay": delay}))

    def outage(self, seconds: float, status: int = 500, methods=None, **payload) -> None:
        """For the next `seconds`, fail every call (of `methods`, default all, file downloads
        included as method "file") like fail_next(method, status, **payload) would."""
        fault = Fault(status, payload.get("retry_after"), payload.get("html", False), payload.get("drop", False),
                      payload.get("delay", 0.0))
        with self._cond:
            self._outages.append((time.monotonic() + seconds, frozenset(methods) if methods else None, fault))

    def reject_token(self, status: int | None = 401) -> None:
        """Refuse every call as Telegram refuses a bad token: 401 Unauthorized (a revoked token),
        404 Not Found (a malformed one); None: accept the token again."""
        self.token_status = status

    @staticmethod
    def closed_url() -> str:
        """The URL of a port on 127.0.0.1 where nothing listens: connections are refused."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def _fault_for(self, method: str) -> Fault | None:
        """The fault that applies to this call of `method`, if any (consumes a fail_next)."""
        with self._cond:
            now = time.monotonic()
            self._outages = [o for o in self._outages if o[0] > now]
            for _, methods, fault in self._outages:
                if methods is None or method in methods:
                    return fault
            queued = self.failures.get(method)
            if queued:
                status, payload = queued.pop(0)
                return Fault(status, payload.get("retry_after"), payload.get("html", False), payload.get("drop", False),
                             payload.get("delay", 0.0))
        return None

    # -- what tests inspect ---------------------------------------------------------------------
    def methods(self) -> list[str]:
        return [c.method for c in list(self.calls)]

    def menus(self) -> list[tuple[dict, str | None, list[tuple[str, str]] | None]]:
        """Every command menu the bot set (setMyCommands) or deleted (deleteMyCommands, commands
        None), in order: (scope, e.g. {"type": "chat", "chat_id": 1}; language_code or None;
        [(command, description)])."""
        found = []
        for c in list(self.calls):
            if c.method in ("setMyCommands", "deleteMyCommands") and c.status == 200:
                commands = None if c.method == "deleteMyCommands" else \
                    [(item["command"], item["description"]) for item in c.params.get("commands", [])]
                found.append((c.params.get("scope") or {"type": "default"}, c.params.get("language_code"), commands))
        return found

    def statuses(self, method: str) -> list[int]:
        """The HTTP status of every call of `method` so far (0: dropped), in order."""
        return [c.status for c in list(self.calls) if c.method == method]

    def messages(self, chat_id: int) -> list[Call]:
        """Messages sent to (or edited in) `chat_id` that succeeded, in order."""
        return [c for c in list(self.calls)
                if c.method in MESSAGE_METHODS and c.status == 200 and c.params.get("chat_id") == chat_id]

    async def wait_for_messages(self, chat_id: int, n: int, timeout: float = 15.0) -> list[Call]:
        """Wait until at least `n` messages went to `chat_id`; return them all (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(chat_id)
            if len(found) >= n:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {n} message(s) to chat {chat_id}, got {[(c.method, c.text) for c in self.messages(chat_id)]}")

    # -- HTTP side ------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(request.path).path)  # the token's ':' may arrive as %3A
        file_prefix, api_prefix = f"/file/bot{self.token}/", f"/bot{self.token}/"
        if path.startswith(file_prefix):
            file_path = path[len(file_prefix):]
            fault = self._fault_for("file")
            if fault is not None and fault.status != 200:
                self.calls.append(Call("file", {"file_path": file_path}, None, None, DROPPED if fault.drop else fault.status))
                return self._fail(request, fault)
            self.downloads.append(file_path)
            data = self._files.get(file_path.rsplit("/", 1)[-1])
            if fault is not None:
                time.sleep(fault.delay)
            if data is None:
                return self._send(request, 404, b"not found", "text/plain")
            return self._send(request, 200, data, "application/octet-stream")
        if not path.startswith(api_prefix) or self.token_status:
            status = self.token_status or 401
            if path.startswith(api_prefix):
                self.calls.append(Call(path[len(api_prefix):], {}, None, None, status))
            description = "Not Found" if status == 404 else "Unauthorized"
            return self._send_json(request, status, {"ok": False, "error_code": status, "description": description})
        method = path[len(api_prefix):]
        params, photo = self._read_params(request)
        fault = self._fault_for(method)
        if fault is not None and fault.status != 200:
            self.calls.append(Call(method, params, photo, None, DROPPED if fault.drop else fault.status))
            return self._fail(request, fault)
        if method == "getUpdates":
            self.polls += 1
            return self._send_json(request, 200, {"ok": True, "result": self._get_updates(params)})
        try:
            result = self._answer(method, params, photo)
        except ApiError as exc:
            self.calls.append(Call(method, params, photo, None, exc.status))
            return self._send_json(request, exc.status, {"ok": False, "error_code": exc.status, "description": str(exc)})
        self.calls.append(Call(method, params, photo, result))
        if fault is not None:  # done, but answered late: the client may have given up by then
            time.sleep(fault.delay)
        self._send_json(request, 200, {"ok": True, "result": result})

    def _fail(self, request: BaseHTTPRequestHandler, fault: Fault) -> None:
        """Answer a call with `fault` (after its delay): an error, an HTML page or a dropped connection."""
        time.sleep(fault.delay)
        if fault.drop:
            request.close_connection = True
            with contextlib.suppress(OSError):
                request.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault.html:
            return self._send(request, fault.status, BAD_GATEWAY_HTML, "text/html")
        body = {"ok": False, "error_code": fault.status, "description": f"fake failure {fault.status}"}
        if fault.retry_after is not None:
            body["parameters"] = {"retry_after": fault.retry_after}
        self._send_json(request, fault.status, body)

    def _read_params(self, request: BaseHTTPRequestHandler) -> tuple[dict, bytes | None]:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        ctype = request.headers.get("Content-Type", "")
        raw: dict[str, str] = {}
        photo = None
        if ctype.startswith("multipart/form-data"):
            parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            for part in parsed.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if part.get_filename() is not None or name in ("photo", "document"):
                    photo = payload
                else:
                    raw[name] = payload.decode("utf-8")
        elif ctype.startswith("application/json"):
            return (json.loads(body) if body else {}), None
        else:
            raw = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        params = {}
        for key, value in raw.items():
            if key in STRING_PARAMS:
                params[key] = value
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        return params, photo

    def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 5.0)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or self._stopped:
                    return self._updates[: int(params.get("limit") or 100)]
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)

    def _bot_message(self, params: dict, **fields) -> dict:
        chat_id = params.get("chat_id")
        chat = {"id": chat_id, "type": "private", "first_name": "x"} if isinstance(chat_id, int) and chat_id > 0 else \
               {"id": chat_id, "type": "group", "title": "g"}
        message = {"message_id": params.get("message_id") or self._next_id(), "date": int(time.time()), "chat": chat,
                   "from": {"id": BOT_ID, "is_bot": True, "first_name": "facebot", "username": "facebot_test_bot"}, **fields}
        if (params.get("reply_markup") or {}).get("inline_keyboard"):  # as Telegram: only inline keyboards come back
            message["reply_markup"] = params["reply_markup"]
        return message

    def _answer(self, method: str, params: dict, photo: bytes | None):
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "facebot", "username": "facebot_test_bot",
                    "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        if method == "getFile":
            file_id = params.get("file_id")
            if file_id not in self._files:
                raise ApiError(400, "Bad Request: invalid file_id")
            if len(self._files[file_id]) > 20 * 1024 * 1024:
                raise ApiError(400, "Bad Request: file is too big")
            return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(self._files[file_id]),
                    "file_path": f"photos/{file_id}"}
        if method in ("sendMessage", "editMessageText"):
            return self._bot_message(params, text=params.get("text", ""))
        if method == "sendPhoto":
            size = {"file_id": f"sent{self._next_id()}", "file_unique_id": "s", "width": 1, "height": 1}
            return self._bot_message(params, photo=[size], caption=params.get("caption", ""))
        if method in ("editMessageReplyMarkup", "editMessageCaption"):
            return self._bot_message(params)
        return True  # answerCallbackQuery, deleteWebhook, setMyCommands, close, ...

    @staticmethod
    def _send_json(request: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        FakeTelegram._send(request, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", ctype)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. polling stopped)
            pass
