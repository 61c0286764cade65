"""manifest.yml is a valid Slack app manifest (slackapi/manifest-schema in ../shared/slack) and asks for
exactly what the code uses."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from handlers.commands.linkcheck import COMMAND
from tests.support.shared import shared_path

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"
# The scopes the code needs, and why: /linkcheck; post/update/delete its messages; upload the CSVs;
# read the members of an admin user group (LINKPACT_ADMINS, prune approvals); find and download the
# export a person shared for /linkcheck import (files.list, files.info, url_private_download); receive
# the message.im events of files sent to the bot in a DM (im:history).
NEEDED_BOT_SCOPES = {"commands", "chat:write", "files:write", "usergroups:read", "files:read", "im:history"}
# The events the code listens to (handlers/events), each with the scope it needs above.
NEEDED_BOT_EVENTS = {"app_home_opened", "message.im"}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """Validation errors against the versioned schema that ``_metadata.major_version`` selects
    (1.0.0 when absent, as ../shared/slack/NOTICE.md says)."""
    major = (manifest.get("_metadata") or {}).get("major_version", 1)
    schema = json.loads(shared_path("slack", f"manifest.schema.{major}.0.0.json").read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def test_manifest_is_valid_against_slacks_schema(manifest: dict[str, Any]) -> None:
    assert schema_errors(manifest) == []


def test_schema_check_catches_a_broken_manifest(manifest: dict[str, Any]) -> None:
    broken = copy.deepcopy(manifest)
    broken["features"]["slash_commands"][0]["command"] = "linkcheck"  # no leading slash
    broken["display_information"]["name"] = ""
    errors = schema_errors(broken)
    assert any("features/slash_commands/0/command" in e for e in errors)
    assert any("display_information/name" in e for e in errors)


def test_manifest_declares_linkpact_and_the_command_the_code_registers(manifest: dict[str, Any]) -> None:
    assert manifest["display_information"]["name"] == "Linkpact"
    assert manifest["features"]["bot_user"]["display_name"] == "Linkpact"
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == [COMMAND]


def test_manifest_asks_for_the_needed_scopes_and_no_more(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes["bot"]) == NEEDED_BOT_SCOPES
    assert len(scopes["bot"]) == len(NEEDED_BOT_SCOPES)
    assert not scopes.get("user")


def test_manifest_subscribes_to_the_events_the_code_handles_and_no_more(manifest: dict[str, Any]) -> None:
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) == NEEDED_BOT_EVENTS and len(events) == len(NEEDED_BOT_EVENTS)
    # Files are sent to the bot in its Messages tab, so the tab must take messages.
    app_home = manifest["features"]["app_home"]
    assert app_home["messages_tab_enabled"] is True and app_home["messages_tab_read_only_enabled"] is False
    hint = manifest["features"]["slash_commands"][0]["usage_hint"]
    assert "import [--target-site URL] [--format F]" in hint and "audit <site> [--pages N]" in hint


def test_manifest_enables_socket_mode_interactivity_and_the_home_tab(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    # The Home tab is published on app_home_opened, so the event must be subscribed when the tab is on.
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
