"""A local stand-in for Slack's Web API (and its Socket Mode WebSocket): a real aiohttp server on
127.0.0.1 in its own thread.

Point ``SLACK_API_URL`` at :attr:`SlackApiStandIn.api_url`. It answers the methods Linkpact calls the
way Slack does (``{"ok": true, ...}``), records every call (method, merged query/form/JSON params, the
bytes of file uploads, headers), receives ``respond()`` posts at ``/response_url/<name>``, and can be
told to fail a method with a Slack error or with HTTP 429 and ``Retry-After``. Tests wait for calls
with :meth:`SlackApiStandIn.wait_for` (a condition variable, no sleeping).

Files people shared (:meth:`SlackApiStandIn.share_file`) are listed by ``files.list`` (filtered by
channel, user and ``ts_from``, newest first), described by ``files.info`` and downloaded from their
``url_private_download`` on the stand-in (recorded as method ``download``), which serves the bytes only
with ``Authorization: Bearer <token>`` and otherwise redirects to a sign-in page, as Slack does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

from tests.support.server import ThreadedServer, serve_in_thread

RESPONSE_URL_METHOD = "response_url"
UPLOAD_METHOD = "upload"
DOWNLOAD_METHOD = "download"  # a GET of a shared file's url_private_download
SOCKET_ACK_METHOD = "socket_ack"  # what the app sent back over the Socket Mode WebSocket
BOT_USER_ID = "U0LINKPACT"
TEAM_ID = "T0TEST"


@dataclass
class ApiCall:
    """One request the stand-in received. ``method`` is the Web API method, ``"upload"`` or
    ``"response_url"``; ``params`` merges the query string, form fields and a JSON body."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    path: str
    body: bytes = b""
    answer: dict[str, Any] = field(default_factory=dict)  # what the stand-in replied (Web API calls)

    def blocks_text(self) -> str:
        """Every text in the call's blocks (and its ``text``), joined: handy for content assertions."""
        blocks = self.params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        parts = [str(self.params.get("text", ""))]
        _collect_text(blocks, parts)
        return "\n".join(parts)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def _collect_text(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                _collect_text(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect_text(item, out)


@dataclass
class _Failure:
    error: str | None  # a Slack error code (HTTP 200, ok=false) or None for HTTP 429
    times: int
    retry_after_s: int = 0
    channel: str | None = None  # only calls about this channel, so parallel scenarios do not mix


@dataclass
class SharedFile:
    """A file someone shared. ``content``: the bytes served; ``size``: what Slack declares (default the
    content's length; set it to test a declared size without making the bytes); ``url``: overrides the
    download URL (a file hosted elsewhere); ``in_listing``: False leaves the object's url and size out of
    files.list (as Slack does for ``file_access: check_file_info``), so only files.info has them."""

    id: str
    name: str
    content: bytes
    user: str
    channel: str
    created: int
    size: int | None = None
    mimetype: str = "text/csv"
    filetype: str = "csv"
    url: str | None = None
    in_listing: bool = True

    def to_api(self, origin: str, *, complete: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "created": self.created, "timestamp": self.created, "name": self.name,
            "title": self.name, "mimetype": self.mimetype, "filetype": self.filetype, "user": self.user,
            "mode": "hosted", "is_external": False, "channels": [self.channel],
        }  # fmt: skip
        if complete:
            data["size"] = len(self.content) if self.size is None else self.size
            data["url_private_download"] = (
                self.url or f"{origin}/files-pri/{TEAM_ID}-{self.id}/download/{self.name}"
            )
        else:
            data["file_access"] = "check_file_info"
        return data


@dataclass
class SlackApiStandIn:
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[ApiCall] = field(default_factory=list)
    bot_token: str = "xoxb-test"  # the token a download must carry
    files: dict[str, SharedFile] = field(default_factory=dict)
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _files: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _envelopes: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _views: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _socket: web.WebSocketResponse | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _server: ThreadedServer | None = None

    # -- addresses ----------------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for ``SLACK_API_URL``."""
        return f"{self.origin}/api/"

    def response_url(self, name: str) -> str:
        """A response_url for one slash command; its posts are recorded as method ``response_url``."""
        return f"{self.origin}/response_url/{name}"

    # -- behaviour ----------------------------------------------------------------------------------
    def fail(self, method: str, error: str, *, times: int = 1, channel: str | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` (about ``channel``, if given) with
        ``{"ok": false, "error": error}``."""
        with self._cond:
            self._failures.setdefault(method, []).append(_Failure(error, times, channel=channel))

    def rate_limit(
        self, method: str, *, retry_after_s: int = 0, times: int = 1, channel: str | None = None
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (about ``channel``) with HTTP 429 and
        ``Retry-After: retry_after_s``."""
        with self._cond:
            self._failures.setdefault(method, []).append(_Failure(None, times, retry_after_s, channel))

    def share_file(
        self,
        name: str,
        content: bytes,
        *,
        user: str = "U0ALICE",
        channel: str = "C0TEST",
        created: int | None = None,
        **details: Any,
    ) -> SharedFile:
        """Record a file ``user`` shared in ``channel`` at ``created`` (Unix seconds, default now);
        ``details`` are :class:`SharedFile` fields (size, mimetype, filetype, url, in_listing)."""
        file_id = f"F{next(self._files):07d}"
        shared = SharedFile(
            file_id, name, content, user, channel, int(time.time()) if created is None else created, **details
        )
        with self._cond:
            self.files[file_id] = shared
        return shared

    def file_object(self, shared: SharedFile) -> dict[str, Any]:
        """The file object Slack puts in events and answers (``files`` of a file_share message)."""
        return shared.to_api(self.origin, complete=shared.in_listing)

    def clear_failures(self) -> None:
        """Forget every failure still queued by :meth:`fail` and :meth:`rate_limit`."""
        with self._cond:
            self._failures.clear()

    # -- inspection ---------------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[ApiCall]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def responses(self, name: str) -> list[ApiCall]:
        """Posts received on ``response_url(name)``."""
        with self._cond:
            return [c for c in self.calls if c.method == RESPONSE_URL_METHOD and c.path.endswith("/" + name)]

    def wait_for(self, predicate: Callable[[ApiCall], bool], *, timeout_s: float = 20.0) -> ApiCall:
        """The first recorded call matching ``predicate``, waiting up to ``timeout_s`` for it."""
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((c for c in self.calls if predicate(c)), None), timeout_s
            )
        if found is None:
            methods = [c.method for c in self.calls]
            raise AssertionError(f"no matching Slack call within {timeout_s} s; calls so far: {methods}")
        return found

    def wait_for_call(
        self, method: str, where: Callable[[ApiCall], bool] | None = None, *, timeout_s: float = 20.0
    ) -> ApiCall:
        return self.wait_for(
            lambda c: c.method == method and (where is None or where(c)), timeout_s=timeout_s
        )

    def wait_for_response(
        self, name: str, where: Callable[[ApiCall], bool] | None = None, *, timeout_s: float = 20.0
    ) -> ApiCall:
        suffix = "/" + name
        return self.wait_for(
            lambda c: (
                c.method == RESPONSE_URL_METHOD and c.path.endswith(suffix) and (where is None or where(c))
            ),
            timeout_s=timeout_s,
        )

    # -- Socket Mode --------------------------------------------------------------------------------
    def send_envelope(self, envelope_type: str, payload: dict[str, Any], *, timeout_s: float = 20.0) -> str:
        """Send a Socket Mode envelope (e.g. ``slash_commands``) to the connected app; its envelope_id.

        Waits up to ``timeout_s`` for the app to connect (``apps.connections.open`` + WebSocket).
        """
        with self._cond:
            socket = self._cond.wait_for(lambda: self._socket, timeout_s)
        if socket is None or self._loop is None:
            raise AssertionError(f"no Socket Mode connection within {timeout_s} s")
        envelope_id = f"envelope-{next(self._envelopes)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": envelope_type == "slash_commands",
        }
        asyncio.run_coroutine_threadsafe(socket.send_json(envelope), self._loop).result(timeout_s)
        return envelope_id

    def drop_socket(self, *, timeout_s: float = 20.0) -> None:
        """Close the app's Socket Mode WebSocket from Slack's side (as Slack does when it moves a
        connection); the app is expected to reconnect. Waits up to ``timeout_s`` for a connection: the app
        may say it listens a moment before the stand-in has registered its WebSocket."""
        with self._cond:
            socket = self._cond.wait_for(lambda: self._socket, timeout_s)
            self._socket = None
        if socket is None or self._loop is None:
            raise AssertionError("no Socket Mode connection to drop")
        asyncio.run_coroutine_threadsafe(socket.close(), self._loop).result(timeout_s)

    def wait_for_socket_ack(self, envelope_id: str, *, timeout_s: float = 20.0) -> ApiCall:
        """The app's acknowledgement of ``envelope_id`` (``params`` is the JSON it sent)."""
        return self.wait_for_call(
            SOCKET_ACK_METHOD, lambda c: c.params.get("envelope_id") == envelope_id, timeout_s=timeout_s
        )

    async def _socket_mode(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0LINKPACT"}}
        )
        with self._cond:
            self._socket = socket
            self._cond.notify_all()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                self._record(ApiCall(SOCKET_ACK_METHOD, data, {}, request.path, message.data.encode()))
        with self._cond:
            if self._socket is socket:
                self._socket = None
        return socket

    # -- server -------------------------------------------------------------------------------------
    def _record(self, call: ApiCall) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _take_failure(self, method: str, params: dict[str, Any]) -> _Failure | None:
        channel = params.get("channel") or params.get("channel_id")
        with self._cond:
            queue = self._failures.get(method, [])
            for failure in queue:
                if failure.channel is None or failure.channel == channel:
                    failure.times -= 1
                    if failure.times <= 0:
                        queue.remove(failure)
                    return failure
            return None

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], bytes]:
        body = await request.read()
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json" and body:
            params.update(json.loads(body))
        elif request.content_type == "application/x-www-form-urlencoded" and body:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        return params, body

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params, body = await self._params(request)
        failure = self._take_failure(method, params)
        status, headers = 200, {}
        if failure is not None and failure.error is None:
            answer: dict[str, Any] = {"ok": False, "error": "ratelimited"}
            status, headers = 429, {"Retry-After": str(failure.retry_after_s)}
        elif failure is not None:
            answer = {"ok": False, "error": failure.error}
        else:
            answer = self._answer(method, params)
        self._record(ApiCall(method, params, dict(request.headers), request.path, body, answer))
        return web.json_response(answer, status=status, headers=headers)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel") or params.get("channel_id") or "C0TEST"
        if method == "auth.test":
            return {
                "ok": True, "url": "https://stand-in.slack.test/", "team": "Test", "user": "linkpact",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": "B0LINKPACT",
                "is_enterprise_install": False,
            }  # fmt: skip
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": params.get("text"), "ts": ts},
            }
        if method == "chat.update":
            return {"ok": True, "channel": channel, "ts": params.get("ts"), "text": params.get("text")}
        if method == "chat.delete":
            return {"ok": True, "channel": channel, "ts": params.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method == "files.list":
            return self._files_list(params)
        if method == "files.info":
            shared = self.files.get(str(params.get("file") or ""))
            if shared is None:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": shared.to_api(self.origin)}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._files):07d}"
            return {"ok": True, "upload_url": f"{self.origin}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = json.loads(params.get("files") or "[]")
            return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://{self.host}:{self.port}/socket-mode"}
        if method == "views.publish":
            view = params.get("view")
            return {"ok": True, "view": json.loads(view) if isinstance(view, str) else view}
        if method == "views.open":
            # Slack answers with the view as it stored it: an id and an empty state.
            view = params.get("view")
            opened = json.loads(view) if isinstance(view, str) else dict(view or {})
            opened.update({"id": f"V{next(self._views):07d}", "state": {"values": {}}, "team_id": TEAM_ID})
            return {"ok": True, "view": opened}
        return {"ok": False, "error": "unknown_method"}

    def _files_list(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            shared = list(self.files.values())
        since = int(float(params.get("ts_from") or 0))
        found = [
            f
            for f in shared
            if (not params.get("channel") or f.channel == params["channel"])
            and (not params.get("user") or f.user == params["user"])
            and f.created >= since
        ]
        found.sort(key=lambda f: f.created, reverse=True)
        count = int(params.get("count") or 100)
        return {
            "ok": True,
            "files": [self.file_object(f) for f in found[:count]],
            "paging": {"count": count, "total": len(found), "page": 1, "pages": 1},
        }

    async def _download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"].split("-", 1)[-1]
        self._record(ApiCall(DOWNLOAD_METHOD, {"file_id": file_id}, dict(request.headers), request.path))
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            # Slack sends a request without a valid token to its sign-in page.
            return web.Response(status=302, headers={"Location": f"{self.origin}/signin"})
        shared = self.files.get(file_id)
        if shared is None:
            return web.Response(status=404, text="file not found")
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)  # chunked: no Content-Length, as a streamed overflow needs
        for start in range(0, len(shared.content), 16 * 1024):
            await response.write(shared.content[start : start + 16 * 1024])
        await response.write_eof()
        return response

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        file_id = request.match_info["file_id"]
        self._record(ApiCall(UPLOAD_METHOD, {"file_id": file_id}, dict(request.headers), request.path, body))
        return web.Response(text=f"OK - {len(body)}")

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        params, body = await self._params(request)
        self._record(ApiCall(RESPONSE_URL_METHOD, params, dict(request.headers), request.path, body))
        return web.Response(text="ok")

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{file_id}/download/{name}", self._download)
        app.router.add_post("/response_url/{name}", self._response_url)
        app.router.add_get("/socket-mode", self._socket_mode)
        return app

    def start(self) -> SlackApiStandIn:
        self._server = serve_in_thread(self._make_app, self.host, self.port, name="SlackApiStandIn")
        self.port = self._server.port
        self._loop = self._server.loop
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> SlackApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- Slack's side of requests to the app ---------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack sends: ``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret
    (Slack docs: "Verifying requests from Slack")."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
    }


def slash_command_body(
    text: str,
    *,
    response_url: str,
    channel_id: str = "C0TEST",
    team_id: str = TEAM_ID,
    user_id: str = "U0ALICE",
    command: str = "/linkcheck",
) -> bytes:
    """A form-encoded slash-command payload with the fields Slack sends (HTTP mode)."""
    fields = slash_command_fields(
        text,
        response_url=response_url,
        channel_id=channel_id,
        team_id=team_id,
        user_id=user_id,
        command=command,
    )
    return urlencode(fields).encode()


def slash_command_fields(
    text: str,
    *,
    response_url: str,
    channel_id: str = "C0TEST",
    team_id: str = TEAM_ID,
    user_id: str = "U0ALICE",
    command: str = "/linkcheck",
) -> dict[str, str]:
    """The fields of a slash-command payload (the ``payload`` of a Socket Mode envelope)."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "team_domain": "test",
        "channel_id": channel_id,
        "channel_name": "link-partnerships",
        "user_id": user_id,
        "user_name": "alice",
        "command": command,
        "text": text,
        "api_app_id": "A0LINKPACT",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "1.2.3",
    }


# -- interactivity payloads (form field ``payload``, JSON; Slack docs "Handling user interaction") --------


def interaction_body(payload: dict[str, Any]) -> bytes:
    """The form-encoded body Slack POSTs for shortcuts, block actions and view submissions."""
    return urlencode({"payload": json.dumps(payload)}).encode()


_event_ids = itertools.count(1)


def event_body(event: dict[str, Any], *, team_id: str = TEAM_ID) -> bytes:
    """An Events API ``event_callback`` (JSON body; sign it and send ``Content-Type: application/json``)."""
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "api_app_id": "A0LINKPACT",
            "type": "event_callback",
            "event_id": f"Ev{next(_event_ids):08d}",
            "event_time": 1_700_000_000,
            "event": event,
        }
    ).encode()


def file_share_event(
    files: list[dict[str, Any]], *, user_id: str = "U0ALICE", channel_id: str = "D0ALICE", text: str = ""
) -> dict[str, Any]:
    """A ``message`` event of subtype ``file_share`` in a DM with the bot (event ``message.im``)."""
    return {
        "type": "message", "subtype": "file_share", "channel_type": "im", "channel": channel_id,
        "user": user_id, "text": text, "files": files, "upload": False, "display_as_bot": False,
        "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}",
    }  # fmt: skip


def _user(user_id: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id}


def view_state_values(view: dict[str, Any], answers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``view.state.values`` as Slack sends it when a person filled ``view`` with ``answers``
    (block_id -> typed value; a select's answer is an option value). Blocks not answered keep their
    initial value, as in Slack; an ``answers`` value of "" clears a field."""
    values: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        block_id, action_id, kind = block["block_id"], element["action_id"], element["type"]
        answer = answers.get(block_id)
        state: dict[str, Any] = {"type": kind}
        if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
            state["value"] = (answer if answer is not None else element.get("initial_value")) or None
        elif kind == "static_select":
            if answer is None:
                state["selected_option"] = element.get("initial_option")
            else:
                options = {o["value"]: o for o in element.get("options", [])}
                state["selected_option"] = options.get(answer, {"value": answer}) if answer else None
        elif kind == "datepicker":
            state["selected_date"] = (answer if answer is not None else element.get("initial_date")) or None
        elif kind == "users_select":
            state["selected_user"] = (answer if answer is not None else element.get("initial_user")) or None
        else:
            raise ValueError(f"the stand-in cannot fill a {kind} element")
        values[block_id] = {action_id: state}
    return values


def view_submission_payload(
    view: dict[str, Any], answers: dict[str, str], *, user_id: str = "U0ALICE", team_id: str = TEAM_ID
) -> dict[str, Any]:
    """A ``view_submission`` payload for ``view`` (as views.open answered it) filled with ``answers``."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "test"},
        "user": _user(user_id, team_id),
        "api_app_id": "A0LINKPACT",
        "token": "legacy-verification-token",
        "trigger_id": "2.3.4",
        "view": {**view, "state": {"values": view_state_values(view, answers)}},
        "response_urls": [],
        "is_enterprise_install": False,
    }


def block_actions_payload(
    action_id: str,
    value: str,
    *,
    block_id: str = "block",
    user_id: str = "U0ALICE",
    team_id: str = TEAM_ID,
    view: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button pressed in ``view`` (default: the Home tab)."""
    view = view or {"id": "V0HOME", "type": "home", "blocks": []}
    return {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "test"},
        "user": _user(user_id, team_id),
        "api_app_id": "A0LINKPACT",
        "token": "legacy-verification-token",
        "container": {"type": "view", "view_id": view.get("id", "V0HOME")},
        "trigger_id": "3.4.5",
        "view": view,
        "actions": [
            {"type": "button", "action_id": action_id, "block_id": block_id, "value": value,
             "action_ts": "1700000000.000001"}
        ],
        "is_enterprise_install": False,
    }  # fmt: skip


def message_shortcut_payload(
    callback_id: str,
    message_text: str,
    *,
    channel_id: str = "C0TEST",
    user_id: str = "U0ALICE",
    team_id: str = TEAM_ID,
) -> dict[str, Any]:
    """A ``message_action`` payload: a message shortcut used on a message with ``message_text``."""
    return {
        "type": "message_action",
        "callback_id": callback_id,
        "trigger_id": "4.5.6",
        "response_url": f"https://hooks.slack.test/actions/{team_id}/1/x",
        "team": {"id": team_id, "domain": "test"},
        "channel": {"id": channel_id, "name": "link-partnerships"},
        "user": _user(user_id, team_id),
        "message": {"type": "message", "user": "U0BOB", "ts": "1700000000.000100", "text": message_text},
        "message_ts": "1700000000.000100",
        "action_ts": "1700000000.000200",
        "token": "legacy-verification-token",
        "is_enterprise_install": False,
    }
