"""Value types that flow between the pipeline's stages.

fetch (:class:`FetchResult`) -> extract (:class:`ExtractedPage`, :class:`ExtractedLink`)
-> resolve (:class:`ResolvedLink`) -> filter (:class:`ResolvedLink` with a skip reason or none)
-> check (:class:`LinkCheck`, one per unique URL) -> report (:class:`Report`).

All types are immutable; lists are tuples. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    """The closed set of outbound-link verdicts. Every verdict comes with a reason string."""

    OK = "ok"  # 2xx, possibly after redirects
    BROKEN = "broken"  # 4xx/5xx final (but 503), NXDOMAIN, redirect loop, TLS error
    UNKNOWN = "unknown"  # timeout, reset, 429 after retries, 503, bot wall: never call these broken
    SKIPPED = "skipped"  # mailto:, tel:, javascript:, data:, other schemes, refused by the address policy


class InboundVerdict(StrEnum):
    """State of a tracked backlink (source page -> our target)."""

    LIVE = "live"
    LOST = "lost"
    UNKNOWN = "unknown"


class Placement(StrEnum):
    """Where on the page a link sits, from its ancestors (semantic tags, ARIA roles, id/class words)."""

    MAIN = "main"
    NAV = "nav"
    HEADER = "header"
    ASIDE = "aside"
    FOOTER = "footer"
    COMMENTS = "comments"


class FetchErrorKind(StrEnum):
    """Why a request produced no usable HTTP response. The check stage maps these to verdicts."""

    INVALID_URL = "invalid_url"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    BLOCKED_ADDRESS = "blocked_address"  # the address policy refused the resolved (or literal) address
    DNS_NOT_FOUND = "dns_not_found"  # the name does not exist (NXDOMAIN)
    DNS_FAILURE = "dns_failure"  # resolution failed for another reason (temporary)
    CONNECT_REFUSED = "connect_refused"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    TIMEOUT = "timeout"  # a phase timeout or the total deadline
    CONNECTION_RESET = "connection_reset"
    REDIRECT_LOOP = "redirect_loop"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BODY_TOO_LARGE = "body_too_large"  # decoded body exceeded max_body_bytes
    DECODE_ERROR = "decode_error"  # broken Content-Encoding
    PROTOCOL_ERROR = "protocol_error"


@dataclass(frozen=True, slots=True)
class FetchError:
    kind: FetchErrorKind
    message: str


@dataclass(frozen=True, slots=True)
class Hop:
    """One redirect hop: the URL requested, the status it answered, and where it pointed."""

    url: str
    status: int
    location: str


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one request with redirects followed by our code.

    ``status`` and ``headers`` are the final response's (``None``/empty when ``error`` is set before any
    response). ``body`` is the decoded body (at most ``max_body_bytes``) when it was asked for, else
    ``b""``. ``headers`` keys are lower-case; repeated headers are joined with ``", "``.
    """

    url: str
    final_url: str
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    redirects: tuple[Hop, ...] = ()
    error: FetchError | None = None
    elapsed_s: float = 0.0
    method: str = "GET"

    @property
    def truncated(self) -> bool:
        """True when the server answered but the body was cut at ``max_body_bytes`` (``body`` holds the
        first ``max_body_bytes``): a page that can be read only in part."""
        error = self.error
        return error is not None and error.kind is FetchErrorKind.BODY_TOO_LARGE and self.status is not None

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case (``"text/html"``), or ``""``."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip('"').lower()
        return None


@dataclass(frozen=True, slots=True)
class ExtractedLink:
    """One ``<a href>`` or ``<area href>`` occurrence, in document order.

    ``url`` is absolute (resolved against the first ``<base href>`` or the page URL) and keeps its
    fragment for display; ``None`` when the href cannot be resolved to a URL at all. ``anchor`` is the
    whitespace-normalised text, or an image's alt text. ``rel`` holds lower-case tokens; a page-level
    robots ``nofollow`` adds ``"nofollow"``.
    """

    href: str
    url: str | None
    anchor: str
    rel: frozenset[str]
    placement: Placement
    tag: str = "a"
    position: int = 0


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What the page says about itself (from its HTML and headers; robots.txt is added by the engine).

    ``robots`` lists the directives that apply to Google (``<meta name="robots">``, ``googlebot``, and
    ``X-Robots-Tag`` incl. ``googlebot:`` forms), lower-case. See Google Search Central, "Robots meta tag,
    data-nosnippet, and X-Robots-Tag specifications".
    """

    title: str = ""
    base_url: str = ""
    canonical: str | None = None
    robots: frozenset[str] = frozenset()

    @property
    def noindex(self) -> bool:
        return "noindex" in self.robots or "none" in self.robots

    @property
    def nofollow(self) -> bool:
        return "nofollow" in self.robots or "none" in self.robots


@dataclass(frozen=True, slots=True)
class ExtractedPage:
    """The links and facts of one page.

    ``complete`` is False when only part of the HTML could be parsed; ``incomplete_reason`` then says
    why: ``nesting_too_deep`` (the parser's work cap cut the text, see
    :func:`bot.linkcheck.extract.nesting_cut`) or ``body_truncated`` (the body was cut at
    ``max_body_bytes``). A link missing from an incomplete page may sit in the unread part, so it is
    never evidence that the link was removed.
    """

    facts: PageFacts
    links: tuple[ExtractedLink, ...]
    complete: bool = True
    incomplete_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedLink:
    """An occurrence after the resolve and filter stages.

    ``fetch_url`` is what gets requested (fragment dropped); ``key`` is the normalised form used to
    check each unique URL once. ``skip_reason`` is set by the filter stage when the link is not fetched.
    """

    link: ExtractedLink
    fetch_url: str | None
    key: str | None
    internal: bool
    skip_reason: str | None = None


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """The verdict for one unique link target."""

    url: str
    verdict: Verdict
    reason: str
    status: int | None = None
    final_url: str | None = None
    redirects: tuple[Hop, ...] = ()
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class OutboundResult:
    """One link occurrence on the checked page joined with its target's check."""

    link: ExtractedLink
    internal: bool
    check: LinkCheck


@dataclass(frozen=True, slots=True)
class InboundResult:
    """The state of one tracked backlink, verified on its source page."""

    source_url: str
    target_url: str
    verdict: InboundVerdict
    reason: str
    anchor: str | None = None
    rel: frozenset[str] = frozenset()
    placement: Placement | None = None
    via_redirect: bool = False  # the link points to a URL that redirects to the target
    status: int | None = None
    # External links on the source page (another registrable domain): a "links page" carries dozens.
    external_links: int | None = None


@dataclass(frozen=True, slots=True)
class PageReport:
    """The checked page itself.

    ``indexable`` is ``None`` when the page could not be read (no answer, a timeout, 429, 401, a bot
    wall, 503, a body cut at the cap): whether it can be indexed is then unknown, not "no", and
    ``unreadable_reason`` names why (``timeout``, ``rate_limited``, ``auth_required``, ``bot_wall``,
    ``temporarily_unavailable``, ``body_too_large``, ...); ``not_indexable_reasons`` is then empty.
    """

    url: str
    final_url: str
    status: int | None
    indexable: bool | None
    title: str = ""
    content_type: str = ""
    canonical: str | None = None
    robots: frozenset[str] = frozenset()
    robots_txt_allowed: bool | None = None
    not_indexable_reasons: tuple[str, ...] = ()
    redirects: tuple[Hop, ...] = ()
    error: FetchError | None = None
    unreadable_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    page: PageReport
    outbound: tuple[OutboundResult, ...]
    inbound: tuple[InboundResult, ...]
    started_at: str  # ISO 8601, UTC
    duration_s: float

    def verdict_counts(self) -> dict[str, int]:
        counts = {v.value: 0 for v in Verdict}
        for result in self.outbound:
            counts[result.check.verdict.value] += 1
        return counts

    def inbound_counts(self) -> dict[str, int]:
        counts = {v.value: 0 for v in InboundVerdict}
        for result in self.inbound:
            counts[result.verdict.value] += 1
        return counts

    @property
    def nofollow_share(self) -> float:
        """Share (0..1) of outbound occurrences carrying nofollow, sponsored or ugc."""
        if not self.outbound:
            return 0.0
        unfollowed = sum(1 for r in self.outbound if r.link.rel & {"nofollow", "sponsored", "ugc"})
        return unfollowed / len(self.outbound)

    @property
    def has_problems(self) -> bool:
        """True when the page failed, a link is broken or a tracked backlink is lost (exit code 1)."""
        return (
            self.page.error is not None
            or self.page.status is None
            or self.page.status >= 400
            or any(r.check.verdict is Verdict.BROKEN for r in self.outbound)
            or any(r.verdict is InboundVerdict.LOST for r in self.inbound)
        )
