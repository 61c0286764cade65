"""Parse the text of ``/linkcheck`` into one typed request (pure).

Grammar (words split on whitespace; URLs bare or in Slack's ``<https://x|x>`` markup)::

    ""  | "help"                      -> ShowHelp
    "<url>" | "check <url>"           -> CheckPage
    "track <source> <target>"         -> TrackBacklink
    "untrack <source> <target>"       -> UntrackBacklink
    "tracked [<target>]"              -> ListTracked
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import InputError
from bot.report import parse_user_url

HELP_HINT = "Type `/linkcheck help` for usage."


@dataclass(frozen=True, slots=True)
class ShowHelp:
    pass


@dataclass(frozen=True, slots=True)
class CheckPage:
    url: str


@dataclass(frozen=True, slots=True)
class TrackBacklink:
    source_url: str
    target_url: str


@dataclass(frozen=True, slots=True)
class UntrackBacklink:
    source_url: str
    target_url: str


@dataclass(frozen=True, slots=True)
class ListTracked:
    target_url: str | None = None


LinkcheckRequest = ShowHelp | CheckPage | TrackBacklink | UntrackBacklink | ListTracked


def parse_linkcheck_text(text: str) -> LinkcheckRequest:
    """The request in the command's text. Raises :class:`bot.errors.InputError` (message for the user)."""
    words = text.split()
    if not words or (len(words) == 1 and words[0].lower() in ("help", "-h", "--help", "?")):
        return ShowHelp()
    verb, args = words[0].lower(), words[1:]
    if verb in ("track", "untrack"):
        if len(args) != 2:
            raise InputError(f"`{verb}` needs two URLs: the source page and our target. {HELP_HINT}")
        source, target = parse_user_url(args[0]), parse_user_url(args[1])
        return TrackBacklink(source, target) if verb == "track" else UntrackBacklink(source, target)
    if verb == "tracked":
        if len(args) > 1:
            raise InputError(f"`tracked` takes at most one target URL. {HELP_HINT}")
        return ListTracked(parse_user_url(args[0]) if args else None)
    if verb == "check":
        words = args
    if len(words) != 1:
        raise InputError(f"give exactly one URL to check. {HELP_HINT}")
    return CheckPage(parse_user_url(words[0]))
