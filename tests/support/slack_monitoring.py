"""The Slack stand-in with what monitoring needs on top: user groups (``usergroups.users.list``), the app
ID in ``auth.test``, and ``block_actions`` payloads for buttons on a posted message, signed as Slack signs
them. Tests drive the Bolt app in-process, so the engine's clock can be injected."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from slack_bolt.request.async_request import AsyncBoltRequest

from tests.support.slack_api import TEAM_ID, ApiCall, SlackApiStandIn, sign

APP_ID = "A0LINKPACT"
_clicks = itertools.count(1)


@dataclass
class MonitoringSlackStandIn(SlackApiStandIn):
    """``usergroups``: group ID -> member user IDs. ``app_id``: what auth.test reports (None: nothing,
    as for a token whose auth.test answer has no app_id)."""

    usergroups: dict[str, list[str]] = field(default_factory=dict)
    app_id: str | None = APP_ID

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "usergroups.users.list":
            group = params.get("usergroup", "")
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(self.usergroups[group])}
        answer = super()._answer(method, params)
        if method == "auth.test" and self.app_id:
            answer = {**answer, "app_id": self.app_id}
        return answer


def button_payload(
    message: ApiCall,
    action_id: str,
    value: str,
    *,
    user_id: str,
    response_url: str,
    team_id: str = TEAM_ID,
    app_id: str = APP_ID,
    blocks: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a button pressed on ``message`` (the chat.postMessage call that
    posted it, as the stand-in recorded it; ``blocks`` overrides the blocks Slack would send along)."""
    channel = message.answer["channel"]
    ts = message.answer["ts"]
    block_id = next(
        (
            b.get("block_id", "")
            for b in (blocks or message.blocks)
            for e in b.get("elements", [])
            if isinstance(e, dict) and e.get("action_id") == action_id and e.get("value") == value
        ),
        "",
    )
    thread = {"thread_ts": message.params["thread_ts"]} if message.params.get("thread_ts") else {}
    return {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "test"},
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": app_id,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"9.{next(_clicks)}",
        "channel": {"id": channel, "name": "link-partnerships"},
        "message": {
            "type": "message", "user": "U0LINKPACT", "bot_id": "B0LINKPACT", "ts": ts,
            "text": message.params.get("text", ""), "blocks": list(blocks or message.blocks), **thread,
        },
        "response_url": response_url,
        "actions": [
            {"type": "button", "action_id": action_id, "block_id": block_id, "value": value,
             "action_ts": f"{time.time():.6f}"}
        ],
        "state": {"values": {}},
        "is_enterprise_install": False,
    }  # fmt: skip


def signed_request(secret: str, payload: dict[str, Any]) -> AsyncBoltRequest:
    """The form-encoded ``payload=`` body of an interaction, signed with ``secret`` now."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers: dict[str, str | Sequence[str]] = {**sign(secret, body, int(time.time()))}
    return AsyncBoltRequest(body=body.decode(), headers=headers)


def command_request(secret: str, fields: dict[str, str]) -> AsyncBoltRequest:
    """A slash command (form-encoded ``fields``) signed with ``secret`` now."""
    body = urlencode(fields).encode()
    headers: dict[str, str | Sequence[str]] = {**sign(secret, body, int(time.time()))}
    return AsyncBoltRequest(body=body.decode(), headers=headers)
