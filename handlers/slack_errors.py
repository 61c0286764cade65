"""What every handler says about failures: Slack's "not a member here" errors and one-line reasons."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

# chat.postMessage / files.completeUploadExternal errors that mean "this bot may not post here"
# (Slack docs, chat.postMessage "Errors"): answered by replying privately instead.
NOT_IN_CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found"})


def describe_failure(exc: BaseException) -> str:
    """A one-line, user-facing reason for an unexpected failure (no traceback, no secrets)."""
    if isinstance(exc, SlackApiError):
        return f"Slack answered `{exc.response.get('error', 'an error')}`"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
