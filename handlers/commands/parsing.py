"""Parse the text of ``/linkcheck`` into one typed request (pure).

Grammar (words split on whitespace; URLs bare or in Slack's ``<https://x|x>`` markup)::

    ""  | "help"                      -> ShowHelp
    "<url>" | "check <url>"           -> CheckPage
    "track <source> <target>"         -> TrackBacklink
    "untrack <source> <target>"       -> UntrackBacklink
    "tracked [<target>]"              -> ListTracked
    "partner"                         -> LogPartnership (opens the modal)
    "partner <id|domain>"             -> ShowPartnership
    "partners [<state>]"              -> ListPartnerships
    "partners export"                 -> ExportPartnerships
    "digest"                          -> PreviewDigest (ephemeral, posts nothing)
    "recheck [<id|domain>]"           -> RecheckNow (everything, or one agreement)
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.agreements import AgreementState
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


@dataclass(frozen=True, slots=True)
class LogPartnership:
    pass


@dataclass(frozen=True, slots=True)
class ShowPartnership:
    ref: str  # an agreement id or the partner's domain (or URL)


@dataclass(frozen=True, slots=True)
class ListPartnerships:
    state: AgreementState | None = None


@dataclass(frozen=True, slots=True)
class ExportPartnerships:
    pass


@dataclass(frozen=True, slots=True)
class PreviewDigest:
    pass


@dataclass(frozen=True, slots=True)
class RecheckNow:
    agreement_ref: str | None = None  # an agreement id or partner domain; None: everything


PartnershipRequest = LogPartnership | ShowPartnership | ListPartnerships | ExportPartnerships
MonitorRequest = PreviewDigest | RecheckNow
LinkcheckRequest = (
    ShowHelp | CheckPage | TrackBacklink | UntrackBacklink | ListTracked | PartnershipRequest | MonitorRequest
)

# How people type states: "one-sided" and "one sided" as well as "one_sided".
_STATE_ALIASES = {state.value.replace("_", "-"): state for state in AgreementState}


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
    if verb == "partner":
        if not args:
            return LogPartnership()
        if len(args) != 1:
            raise InputError(f"`partner` takes one agreement id or partner domain. {HELP_HINT}")
        return ShowPartnership(_unwrap(args[0]))
    if verb == "partners":
        return _partners(args)
    if verb == "digest":
        if args:
            raise InputError(f"`digest` takes nothing after it. {HELP_HINT}")
        return PreviewDigest()
    if verb == "recheck":
        if len(args) > 1:
            raise InputError(f"`recheck` takes at most one agreement id or partner domain. {HELP_HINT}")
        return RecheckNow(_unwrap(args[0]) if args else None)
    if verb == "check":
        words = args
    if len(words) != 1:
        raise InputError(f"give exactly one URL to check. {HELP_HINT}")
    return CheckPage(parse_user_url(words[0]))


def _partners(args: list[str]) -> ListPartnerships | ExportPartnerships:
    word = "-".join(args).lower().replace("_", "-")
    if not word:
        return ListPartnerships()
    if word == "export":
        return ExportPartnerships()
    state = _STATE_ALIASES.get(word)
    if state is None:
        states = ", ".join(s.value for s in AgreementState)
        raise InputError(f"`partners` takes a state ({states}) or `export`, not {word!r}. {HELP_HINT}")
    return ListPartnerships(state)


def _unwrap(word: str) -> str:
    """Slack's link markup ``<http://x.example|x.example>`` -> ``http://x.example``; other words as typed."""
    if word.startswith("<") and word.endswith(">"):
        return word[1:-1].split("|", 1)[0]
    return word
