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
    "import [--target-site <url>] [--format <name>]"   -> ImportFile (the file shared just before)
    "audit <site> [--pages <n>]"      -> RunAudit (our site, bare host or URL)

Options take their value as the next word or after ``=`` (``--pages=50``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.agreements.model import AgreementState
from bot.audit import DEFAULT_MAX_PAGES, parse_site
from bot.errors import InputError
from bot.imports import FORMATS_BY_NAME
from bot.linkcheck.report import parse_user_url

HELP_HINT = "Type `/linkcheck help` for usage."
# The most pages `/linkcheck audit --pages N` may ask for: the crawl also stops at its time cap (300 s),
# but a typo such as --pages 5000000 should be refused rather than queue millions of URLs.
MAX_AUDIT_PAGES = 10_000


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


@dataclass(frozen=True, slots=True)
class ImportFile:
    """Import the backlink export the person shared (``linkpact import`` options, same meaning)."""

    target_site: str | None = None
    fmt: str | None = None


@dataclass(frozen=True, slots=True)
class RunAudit:
    site_url: str  # with a scheme (https:// added to a bare host)
    max_pages: int = DEFAULT_MAX_PAGES


PartnershipRequest = LogPartnership | ShowPartnership | ListPartnerships | ExportPartnerships
MonitorRequest = PreviewDigest | RecheckNow
LinkcheckRequest = (
    ShowHelp
    | CheckPage
    | TrackBacklink
    | UntrackBacklink
    | ListTracked
    | PartnershipRequest
    | MonitorRequest
    | ImportFile
    | RunAudit
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
    if verb == "import":
        return _import(args)
    if verb == "audit":
        return _audit(args)
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


def _options(verb: str, args: list[str], names: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Split ``args`` into positional words and ``--name value`` / ``--name=value`` options."""
    positional: list[str] = []
    options: dict[str, str] = {}
    rest = iter(_dashes(word) for word in args)
    for word in rest:
        if not word.startswith("--"):
            positional.append(word)
            continue
        name, has_value, value = word.partition("=")
        if name not in names:
            known = ", ".join(f"`{n}`" for n in names)
            raise InputError(f"`{verb}` takes {known}, not {name!r}. {HELP_HINT}")
        if not has_value:
            value = next(rest, "")
        if not value or value.startswith("--"):
            raise InputError(f"`{name}` needs a value. {HELP_HINT}")
        if name in options:
            raise InputError(f"`{name}` is given twice. {HELP_HINT}")
        options[name] = value
    return positional, options


def _dashes(word: str) -> str:
    """``—pages`` -> ``--pages``: some keyboards and Slack clients turn a typed ``--`` into a dash."""
    for dash in ("\u2014", "\u2013"):  # em dash, en dash
        if word.startswith(dash):
            return "--" + word[len(dash) :].lstrip("-")
    return word


def parse_import_options(text: str) -> ImportFile:
    """The ``--target-site``/``--format`` options in the text of a message that carries a file (a DM to
    the bot); other words are the person's own and ignored. Raises :class:`InputError`."""
    words = text.split()
    picked: list[str] = []
    for index, word in enumerate(words):
        if _dashes(word).startswith("--"):
            picked.append(word)
            if "=" not in word and index + 1 < len(words):
                picked.append(words[index + 1])
    return _import(picked)


def _import(args: list[str]) -> ImportFile:
    positional, options = _options("import", args, ("--target-site", "--format"))
    if positional:
        raise InputError(
            "`import` takes no file name: share the file in this conversation first, then run "
            f"`/linkcheck import` (options: `--target-site URL`, `--format NAME`). {HELP_HINT}"
        )
    target = options.get("--target-site")
    fmt = options.get("--format")
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in FORMATS_BY_NAME:
            raise InputError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS_BY_NAME)}")
    return ImportFile(target_site=parse_site(target) if target else None, fmt=fmt)


def _audit(args: list[str]) -> RunAudit:
    positional, options = _options("audit", args, ("--pages",))
    if len(positional) != 1:
        raise InputError(f"`audit` needs our site, e.g. `/linkcheck audit ours.example`. {HELP_HINT}")
    pages = DEFAULT_MAX_PAGES
    if "--pages" in options:
        raw = options["--pages"]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUDIT_PAGES:
            raise InputError(f"`--pages` takes a whole number from 1 to {MAX_AUDIT_PAGES:,}, not {raw!r}.")
        pages = int(raw)
    return RunAudit(parse_site(positional[0]), pages)


def _unwrap(word: str) -> str:
    """Slack's link markup ``<http://x.example|x.example>`` -> ``http://x.example``; other words as typed."""
    if word.startswith("<") and word.endswith(">"):
        return word[1:-1].split("|", 1)[0]
    return word
