"""HTTP mode's front door: every request to ``/slack/events`` is vetted before Bolt sees it.

Bolt's aiohttp adapter decodes and parses a body before checking its signature, and a timestamp that
is not a number, a body that is not UTF-8, malformed JSON or a ``payload`` that is not a JSON object
each end in a 500 with a traceback. Here the order is the one Slack's "Verifying requests from Slack"
page implies, and each step that can fail answers a 4xx with one log line:

1. headers: ``X-Slack-Request-Timestamp`` is decimal digits within :data:`MAX_REQUEST_AGE_S` of now,
   ``X-Slack-Signature`` is ``v0=`` and 64 hex digits; else **401**;
2. the body is read up to :data:`MAX_REQUEST_BODY_BYTES`; more is **413**;
3. the signature: HMAC-SHA256 of ``v0:{timestamp}:{body bytes}`` with the signing secret, compared in
   constant time; else **401**. Nothing is parsed before this;
4. the body must be UTF-8, of a type Slack sends (``application/json`` for the Events API,
   ``application/x-www-form-urlencoded`` for commands and interactivity), parse, and be a JSON object
   (a form's ``payload`` field too); else **400**;
5. the fields Bolt and the handlers read to route a request (``type``, ``team``, ``user``, ``channel``,
   ``event``, ``view``, ``actions``, ...) must have the types Slack gives them (:func:`envelope_problem`);
   else **400**.

Only then is the request handed to Bolt, with the body this module parsed (Bolt's own form parser
reads any body that contains the letters "payload" as an interactivity payload, so a slash command
whose text contains that word would reach no listener).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

logger = logging.getLogger(__name__)

# Slack refuses to count on a request older (or newer) than 5 minutes ("Verifying requests from Slack":
# protects against replay attacks).
MAX_REQUEST_AGE_S = 5 * 60
# Slack's payloads are small (a modal submission with 100 blocks stays far below this); aiohttp's default
# cap, stated here so that the limit is ours and is checked before the signature can be.
MAX_REQUEST_BODY_BYTES = 1024 * 1024
# Unix seconds need 10 digits until 2286; a longer "number" is not a timestamp (and Python refuses to
# convert more than 4,300 digits at all).
MAX_TIMESTAMP_DIGITS = 12
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

_TIMESTAMP = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

# Fields whose value Slack gives as a string, or as an object whose "id" is a string (Bolt reads both).
_ID_FIELDS = ("team", "enterprise", "user", "channel")
# Fields Slack always gives as strings when present.
_STRING_FIELDS = (
    "type", "team_id", "enterprise_id", "user_id", "channel_id", "event_id", "api_app_id",
    "response_url", "trigger_id", "command", "text", "callback_id", "thread_ts", "challenge",
    "action_id", "block_id", "subtype", "channel_type", "bot_id", "user_team",
)  # fmt: skip
# Nested objects Bolt or the handlers read with the same rules.
_OBJECT_FIELDS = ("event", "view", "message", "previous_message", "item", "container", "assistant_thread")
# Lists whose items Bolt or the handlers read as objects.
_OBJECT_LIST_FIELDS = ("authorizations", "actions", "response_urls", "files")
# The ``type`` of every payload Slack sends to a request URL (Events API envelopes; interactivity
# payloads, Slack docs "Interaction payloads"). A slash command has no type, a ``command`` instead.
PAYLOAD_TYPES = frozenset(
    {
        "event_callback", "url_verification", "app_rate_limited",
        "block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut",
        "message_action", "interactive_message", "dialog_submission", "dialog_cancellation",
        "dialog_suggestion", "workflow_step_edit",
    }
)  # fmt: skip
# Interaction payloads give the user, team and channel as objects (Slack docs, "Interaction payloads").
_INTERACTION_TYPES = frozenset(
    {
        "block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut", "message_action",
        "interactive_message", "dialog_submission", "dialog_cancellation", "dialog_suggestion",
    }
)  # fmt: skip
# The string field Bolt's listener matching reads from each kind of payload.
_NEEDED_STRINGS = {
    "url_verification": "challenge",
    "block_suggestion": "action_id",
    "shortcut": "callback_id",
    "message_action": "callback_id",
    "interactive_message": "callback_id",
    "dialog_submission": "callback_id",
    "dialog_cancellation": "callback_id",
    "dialog_suggestion": "callback_id",
    "workflow_step_edit": "callback_id",
}
# How deep the object rules follow nested objects (event -> message -> ...); Slack nests 3 levels at most.
MAX_CHECKED_DEPTH = 4


class Refusal(Exception):
    """A request this gate answers itself: the HTTP status and a short reason (logged and sent back)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify_signature(headers: Mapping[str, str], body: bytes, *, signing_secret: str, now_s: float) -> None:
    """Raise :class:`Refusal` (401) unless ``body`` was signed with ``signing_secret`` less than
    :data:`MAX_REQUEST_AGE_S` seconds from ``now_s`` (Unix seconds).

    Slack docs, "Verifying requests from Slack": ``X-Slack-Signature`` is ``v0=`` + the hex HMAC-SHA256 of
    ``v0:{X-Slack-Request-Timestamp}:{raw body}``. The headers' form is checked first, so a malformed
    timestamp is a 401 like any other unsigned request, never a parsing error.
    """
    verify_signature_headers(headers, now_s=now_s)
    timestamp = headers["X-Slack-Request-Timestamp"]
    signature = headers["X-Slack-Signature"]
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Refusal(401, "the request signature does not match")


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The JSON object a signed Slack request carries; raises :class:`Refusal` (400) otherwise.

    ``application/json``: the body is that object (Events API). ``application/x-www-form-urlencoded``:
    the form's ``payload`` field holds a JSON object (interactivity: shortcuts, actions, views), or the
    fields themselves are the object (slash commands). Slack docs: "Handling user interaction",
    "Implementing slash commands", "The Events API".
    """
    if not body:
        raise Refusal(400, "the request body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "the request body is not UTF-8") from None
    if content_type == JSON_TYPE:
        return _json_object(text, "the JSON body")
    if content_type == FORM_TYPE:
        fields = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" in fields:
            return _json_object(fields["payload"], "the form's payload")
        return fields
    raise Refusal(400, f"unsupported content type {content_type or '(none)'!r}")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise Refusal(400, f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise Refusal(400, f"{what} is a JSON {_json_kind(value)}, not an object")
    return value


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def envelope_problem(body: Mapping[str, Any], *, where: str = "body", depth: int = 0) -> str | None:
    """What is wrong with the types of the routing fields of a Slack payload, or None.

    Only the fields that Bolt reads to route a request and build its context (team, user, channel,
    enterprise, the event, the view, the actions) and that the handlers read are checked, with the
    types Slack's payload references give them; unknown fields are left alone.
    """
    for name in _ID_FIELDS:
        value = body.get(name)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, dict) or not isinstance(value.get("id", ""), str):
            return f"{where}.{name} is neither an ID nor an object with a string id"
    for name in _STRING_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            return f"{where}.{name} is not a string"
    for name in _OBJECT_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"{where}.{name} is not an object"
        if depth < MAX_CHECKED_DEPTH:
            problem = envelope_problem(value, where=f"{where}.{name}", depth=depth + 1)
            if problem:
                return problem
    for name in _OBJECT_LIST_FIELDS:
        if name not in body:  # Bolt takes a present key for a list (``len(body["response_urls"])``)
            continue
        value = body[name]
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            return f"{where}.{name} is not a list of objects"
        if depth < MAX_CHECKED_DEPTH:
            for i, item in enumerate(value):
                problem = envelope_problem(item, where=f"{where}.{name}[{i}]", depth=depth + 1)
                if problem:
                    return problem
    if depth == 0:
        return _kind_problem(body)
    return None


def _kind_problem(body: Mapping[str, Any]) -> str | None:
    """Whether ``body`` is a kind of request Slack sends, with the fields its kind needs for Bolt's
    listener matching."""
    kind = body.get("type")
    if kind is None and not isinstance(body.get("command"), str) and "ssl_check" not in body:
        return "neither a slash command nor a typed payload"
    if kind is not None and kind not in PAYLOAD_TYPES:
        return "an unknown payload type"
    if kind == "event_callback" and not isinstance((body.get("event") or {}).get("type"), str):
        return "an event_callback without an event type"
    if kind == "block_actions" and not (
        body.get("actions") and all(isinstance(a.get("action_id"), str) for a in body["actions"])
    ):
        return "block_actions without actions that have an action_id"
    if kind in ("view_submission", "view_closed") and not all(
        isinstance((body.get("view") or {}).get(name), str) for name in ("type", "callback_id")
    ):
        return f"{kind} without a view that has a type and a callback_id"
    if kind in _INTERACTION_TYPES:
        for name in ("user", "team", "channel"):
            if body.get(name) is not None and not isinstance(body[name], dict):
                return f"body.{name} of a {kind} payload is not an object"
    needed = _NEEDED_STRINGS.get(kind) if isinstance(kind, str) else None
    if needed and not isinstance(body.get(needed), str):
        return f"{kind} without {needed}"
    return None


def bolt_request(body: dict[str, Any], text: str, request: web.Request) -> AsyncBoltRequest:
    """An HTTP-mode Bolt request whose parsed body is ``body`` (as parsed here, not by Bolt)."""
    bolt_req = AsyncBoltRequest(
        body="", query=request.query_string, headers={name: value for name, value in request.headers.items()}
    )
    # Bolt keeps the raw text for its own signature check (kept on: a second line of defence) and the
    # parsed body for routing; both are set after construction so that Bolt's parser never runs.
    bolt_req.raw_body = text
    bolt_req.body = body
    bolt_req.context = build_async_context(AsyncBoltContext({}), body)
    return bolt_req


def build_web_app(
    app: AsyncApp,
    *,
    signing_secret: str,
    path: str,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """An aiohttp application that serves ``app`` at ``path`` (POST) behind the checks of this module.

    ``clock`` gives Unix seconds (tests inject one). Every refusal is one WARNING line naming the reason
    and the status, never the body or a header's value.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            if request.content_length is not None and request.content_length > MAX_REQUEST_BODY_BYTES:
                verify_signature_headers(request.headers, now_s=clock())
                raise Refusal(413, f"the request body is over {MAX_REQUEST_BODY_BYTES} bytes")
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise Refusal(413, f"the request body is over {MAX_REQUEST_BODY_BYTES} bytes") from None
            verify_signature(request.headers, raw, signing_secret=signing_secret, now_s=clock())
            body = parse_body(raw, request.content_type)
            problem = envelope_problem(body)
            if problem:
                raise Refusal(400, f"malformed Slack payload: {problem}")
            try:
                bolt_req = bolt_request(body, raw.decode("utf-8"), request)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
                # Bolt's context builder met a shape envelope_problem does not know: still the sender's fault.
                raise Refusal(400, f"malformed Slack payload ({type(exc).__name__})") from None
        except Refusal as refusal:
            logger.warning("refused a request to %s: %s (HTTP %d)", path, refusal.reason, refusal.status)
            return web.Response(status=refusal.status, text=refusal.reason)
        bolt_resp = await app.async_dispatch(bolt_req)
        return await to_aiohttp_response(bolt_resp)

    web_app = web.Application(client_max_size=MAX_REQUEST_BODY_BYTES)
    web_app.router.add_post(path, handle)
    return web_app


def verify_signature_headers(headers: Mapping[str, str], *, now_s: float) -> None:
    """The header checks of :func:`verify_signature` alone (before a body too large to read is refused,
    so that an unsigned client learns only that it is unsigned)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        raise Refusal(401, "the request is not signed")
    if not _TIMESTAMP.fullmatch(timestamp) or abs(now_s - int(timestamp)) > MAX_REQUEST_AGE_S:
        raise Refusal(401, "the request timestamp is missing, malformed or more than 5 minutes from now")
    if not _SIGNATURE.fullmatch(signature):
        raise Refusal(401, "the request signature is malformed")
