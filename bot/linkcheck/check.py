"""The check stage: one verdict per unique link target (:class:`LinkCheck`).

Rules (issue 2, section 2, "Link targets" and "Verdicts"):

- HEAD first; GET (body not downloaded) when HEAD answers anything but a clean 2xx or fails in a way
  a different method could change (servers that mishandle HEAD answer 405, 404, 5xx, or hang).
- 429: honour ``Retry-After`` (delta-seconds or HTTP-date, RFC 9110 section 10.2.3) up to
  ``limits.max_retry_after_s``, pause that origin (scheme, host, port) for every check sharing the
  client, then retry; the retry waits in the client's queue, holding no slot, until the pause ends. A
  link whose server asks for longer than the cap, or that still answers 429 once its retries are spent,
  is ``unknown``/``rate_limited``, never ``broken``.
- Retries with exponential backoff (``limits.retry_backoff_s * 2**n``, ``limits.retries`` of them) for
  5xx (but those that cannot change a moment later, :data:`NOT_RETRIED_5XX`), timeouts, resets and
  temporary DNS failures. A 503 whose ``Retry-After`` asks for longer than the backoff is not retried.
- Verdicts are conservative: a link is ``broken`` only on a definite answer (4xx/5xx final but 503, a
  name that does not exist, a redirect loop, a TLS error, a refused connection). Timeouts, resets, rate
  limits, bot walls and 503 (Service Unavailable: "temporary overload or scheduled maintenance", RFC
  9110 section 15.6.4) are ``unknown``: users of every link checker complain most about false
  "broken". ``skipped`` means the link was not fetched (address policy, scheme, bad URL).
- Bot walls are told from the site's own answer by the vendor's marks: a challenge header
  (``cf-mitigated``, ``x-amzn-waf-action``), a bot-management header on a refusal, or a vendor's
  identifying header (``Server: cloudflare``, ``CF-RAY``, ...) on a refusal whose body is that
  vendor's challenge or block page (:data:`WALL_BODY_SIGNATURES`). A link check does not download
  bodies; when a refusal carries a vendor's identifying header, the body is fetched once to look.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from bot.config import Limits
from bot.models import FetchErrorKind, FetchResult, LinkCheck, Verdict
from bot.net.client import HttpClient

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]

# Errors about the connection, not the method: a GET after a failed HEAD would fail the same way.
NO_GET_FALLBACK = frozenset(
    {
        FetchErrorKind.INVALID_URL,
        FetchErrorKind.UNSUPPORTED_SCHEME,
        FetchErrorKind.BLOCKED_ADDRESS,
        FetchErrorKind.DNS_NOT_FOUND,
        FetchErrorKind.DNS_FAILURE,
        FetchErrorKind.CONNECT_REFUSED,
        FetchErrorKind.CONNECT_ERROR,
        FetchErrorKind.TLS_ERROR,
    }
)
# Transient failures worth another try after a backoff.
RETRYABLE_ERRORS = frozenset(
    {FetchErrorKind.TIMEOUT, FetchErrorKind.CONNECTION_RESET, FetchErrorKind.DNS_FAILURE}
)
# With no usable Retry-After on a 429, pause the origin at least this long (seconds) before retrying:
# the retry backoff alone (0.1 s by default) is too short to be polite to a server that said "slow down".
DEFAULT_RATE_LIMIT_PAUSE_S = 5.0
# 5xx answers about something lasting, which asking again a moment later cannot change, so they are not
# retried: 501 Not Implemented and 505 HTTP Version Not Supported (RFC 9110 sections 15.6.2, 15.6.6),
# 506 Variant Also Negotiates (RFC 2295), 507 Insufficient Storage (RFC 4918), 508 Loop Detected
# (RFC 5842), 510 Not Extended (RFC 2774), 511 Network Authentication Required (RFC 6585: a captive
# portal on our side of the network). 500, 502, 503 and 504 are often transient and are retried.
NOT_RETRIED_5XX = frozenset({501, 505, 506, 507, 508, 510, 511})

# Error kind -> (verdict, reason).
ERROR_VERDICTS: Mapping[FetchErrorKind, tuple[Verdict, str]] = {
    FetchErrorKind.BLOCKED_ADDRESS: (Verdict.SKIPPED, "blocked_address"),
    FetchErrorKind.UNSUPPORTED_SCHEME: (Verdict.SKIPPED, "unsupported_scheme"),
    FetchErrorKind.INVALID_URL: (Verdict.SKIPPED, "invalid_url"),
    FetchErrorKind.DNS_NOT_FOUND: (Verdict.BROKEN, "dns_not_found"),
    FetchErrorKind.DNS_FAILURE: (Verdict.UNKNOWN, "dns_failure"),
    FetchErrorKind.CONNECT_REFUSED: (Verdict.BROKEN, "connection_refused"),
    FetchErrorKind.CONNECT_ERROR: (Verdict.UNKNOWN, "connect_error"),
    FetchErrorKind.TLS_ERROR: (Verdict.BROKEN, "tls_error"),
    FetchErrorKind.TIMEOUT: (Verdict.UNKNOWN, "timeout"),
    FetchErrorKind.CONNECTION_RESET: (Verdict.UNKNOWN, "connection_reset"),
    FetchErrorKind.REDIRECT_LOOP: (Verdict.BROKEN, "redirect_loop"),
    # Browsers give up after about 20 hops; past our 10 the page may well load for a person.
    FetchErrorKind.TOO_MANY_REDIRECTS: (Verdict.UNKNOWN, "too_many_redirects"),
    FetchErrorKind.BODY_TOO_LARGE: (Verdict.UNKNOWN, "body_too_large"),
    FetchErrorKind.DECODE_ERROR: (Verdict.UNKNOWN, "decode_error"),
    FetchErrorKind.PROTOCOL_ERROR: (Verdict.UNKNOWN, "protocol_error"),
}

# Header values that mark a challenge page rather than the page itself (lower-case).
# Cloudflare: "cf-mitigated: challenge" on its managed/JS challenges (Cloudflare docs, "Detecting a
# Challenge Page Response"). AWS WAF: "x-amzn-waf-action: challenge|captcha", answered with 202 or 405
# (AWS WAF developer guide, "CAPTCHA and Challenge actions").
CHALLENGE_HEADERS: Mapping[str, frozenset[str]] = {
    "cf-mitigated": frozenset({"challenge"}),
    "x-amzn-waf-action": frozenset({"challenge", "captcha"}),
}
# Statuses a bot-management layer uses to refuse a client it takes for a bot.
WALL_STATUSES = frozenset({401, 403, 405, 429, 503})
# Response headers that only bot-management / WAF products send; with a refusal status above they mean
# "we refused your client", not "this page does not exist": DataDome ("x-datadome", "x-dd-b"),
# Imperva/Incapsula ("x-iinfo"), Sucuri ("x-sucuri-id", "x-sucuri-block"), Akamai Bot Manager
# ("akamai-grn" on its "Access Denied" pages).
WAF_HEADERS = frozenset({"x-datadome", "x-dd-b", "x-iinfo", "x-sucuri-id", "x-sucuri-block", "akamai-grn"})
# LinkedIn answers 999 to clients it takes for bots; never a verdict on the page itself.
BOT_WALL_STATUS = 999
# RFC 9110 section 15.6.4: 503 Service Unavailable is "a temporary overload or scheduled maintenance";
# the page may well be there a moment later, so it is never evidence of a broken link or a lost page.
UNAVAILABLE_STATUS = 503
TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"
BOT_WALL = "bot_wall"


@dataclass(frozen=True, slots=True)
class WallSignature:
    """One bot-management vendor's challenge or block page.

    ``headers``: lower-case header name -> a lower-case fragment its value must contain (``""``: any
    value); one of them names the vendor. ``markers``: lower-case fragments of the vendor's challenge or
    block page, one of which must occur in the first :data:`WALL_BODY_SCAN_BYTES` of the body.
    """

    vendor: str
    headers: Mapping[str, str]
    markers: tuple[bytes, ...]

    def names_vendor(self, headers: Mapping[str, str]) -> bool:
        return any(
            name in headers and fragment in headers[name].lower() for name, fragment in self.headers.items()
        )


# A vendor's identifying header alone is not enough (the site's own 403 passes through the same CDN
# with the same headers); with one of its challenge/block pages as the body it is. Markers are taken
# from each vendor's interstitials as served: Cloudflare's "Just a moment..." JS/managed challenge
# (scripts under /cdn-cgi/challenge-platform/) and its "Attention Required!"/"Sorry, you have been
# blocked" WAF page; Akamai's "Access Denied" page (reference links to errors.edgesuite.net); AWS WAF's
# challenge (awswaf.com scripts) and CloudFront's "Request blocked" page; DataDome's captcha
# (captcha-delivery.com); Imperva/Incapsula's "_Incapsula_Resource" challenge and incident page;
# Sucuri's "Sucuri WebSite Firewall - Access Denied". Markers are only looked for on a refusal status
# (:data:`WALL_STATUSES`): some of these scripts are also injected into the normal pages of a protected site.
WALL_BODY_SIGNATURES: tuple[WallSignature, ...] = (
    WallSignature(
        "cloudflare",
        {"cf-ray": "", "server": "cloudflare"},
        (
            b"<title>just a moment",
            b"/cdn-cgi/challenge-platform/",
            b"cf-browser-verification",
            b"cf_chl_opt",
            b"attention required! | cloudflare",
            b"sorry, you have been blocked",
        ),
    ),
    WallSignature(
        "akamai",
        {"server": "akamaighost", "akamai-grn": ""},
        (b"errors.edgesuite.net", b"you don't have permission to access"),
    ),
    WallSignature(
        "aws",
        {"x-amzn-waf-action": "", "x-amz-cf-id": "", "server": "cloudfront"},
        (b"awswaf", b"request blocked", b"generated by cloudfront"),
    ),
    WallSignature(
        "datadome",
        {"x-datadome": "", "x-dd-b": "", "server": "datadome", "set-cookie": "datadome="},
        (b"captcha-delivery.com", b"datadome"),
    ),
    WallSignature(
        "imperva",
        {"x-iinfo": "", "x-cdn": "imperva", "set-cookie": "incap_ses_"},
        (b"_incapsula_resource", b"incapsula incident id"),
    ),
    WallSignature(
        "sucuri",
        {"x-sucuri-id": "", "x-sucuri-block": "", "server": "sucuri"},
        (b"sucuri website firewall", b"sucuri.net"),
    ),
)
# How much of a body is searched for a vendor's markers: their interstitials are a few kB, and the
# markers sit in the first lines. Also the most a link check downloads to look.
WALL_BODY_SCAN_BYTES = 64 * 1024
# Bodies worth looking at for markers (a missing Content-Type is sniffed as HTML, as browsers do).
WALL_BODY_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})


def is_bot_wall(result: FetchResult) -> bool:
    """True when the response is a bot wall or challenge rather than the page's own answer.

    ``cf-mitigated: challenge`` (any status), AWS WAF challenge/captcha actions, LinkedIn's 999,
    401/403/405/429/503 from a known bot-management layer (:data:`WAF_HEADERS`, or
    ``server: AkamaiGHost`` on a 403), and 401/403/405/429/503 answered by a vendor whose challenge or
    block page is the body (:data:`WALL_BODY_SIGNATURES`; needs ``result.body``).
    """
    if result.status is None:
        return False
    if result.status == BOT_WALL_STATUS:
        return True
    headers = result.headers
    for name, values in CHALLENGE_HEADERS.items():
        if headers.get(name, "").strip().lower() in values:
            return True
    if result.status not in WALL_STATUSES:
        return False
    if WAF_HEADERS.intersection(headers):
        return True
    server = headers.get("server", "").lower()
    if result.status == 403 and server.startswith("akamaighost"):
        return True
    return wall_vendor(result) is not None and _has_wall_body(result)


def wall_vendor(result: FetchResult) -> WallSignature | None:
    """The bot-management vendor whose identifying header is on ``result``, or None."""
    return next((sig for sig in WALL_BODY_SIGNATURES if sig.names_vendor(result.headers)), None)


def _has_wall_body(result: FetchResult) -> bool:
    if not result.body:
        return False
    head = result.body[:WALL_BODY_SCAN_BYTES].lower()
    return any(
        sig.names_vendor(result.headers) and any(marker in head for marker in sig.markers)
        for sig in WALL_BODY_SIGNATURES
    )


def classify(result: FetchResult) -> tuple[Verdict, str]:
    """The verdict and reason for one :class:`FetchResult` (no retries; see :class:`LinkChecker`).

    Reasons: ``http_<status>`` (2xx ok, 4xx/5xx broken, others unknown), ``bot_wall``,
    ``rate_limited`` (429), ``auth_required`` (401: the page exists behind a login),
    ``temporarily_unavailable`` (503, RFC 9110 section 15.6.4), or the error
    kind's reason from :data:`ERROR_VERDICTS` (``dns_not_found``, ``timeout``, ...). An invalid URL
    reached through a redirect is ``broken``/``invalid_redirect`` (the link leads nowhere).
    """
    if result.error is not None:
        kind = result.error.kind
        if kind is FetchErrorKind.INVALID_URL and result.redirects:
            return Verdict.BROKEN, "invalid_redirect"
        if kind is FetchErrorKind.BODY_TOO_LARGE and result.status is not None:
            # The answer itself was fine; only our download cap was hit.
            return classify_status(result)
        return ERROR_VERDICTS.get(kind, (Verdict.UNKNOWN, kind.value))
    if result.status is None:
        return Verdict.UNKNOWN, "no_response"
    return classify_status(result)


def classify_status(result: FetchResult) -> tuple[Verdict, str]:
    status = result.status
    assert status is not None
    if is_bot_wall(result):
        return Verdict.UNKNOWN, BOT_WALL
    if 200 <= status < 300:
        return Verdict.OK, f"http_{status}"
    if status == 429:
        return Verdict.UNKNOWN, "rate_limited"
    if status == 401:
        return Verdict.UNKNOWN, "auth_required"
    if status == UNAVAILABLE_STATUS:
        return Verdict.UNKNOWN, TEMPORARILY_UNAVAILABLE
    if 400 <= status < 600:
        return Verdict.BROKEN, f"http_{status}"
    return Verdict.UNKNOWN, f"http_{status}"


def retry_after_s(result: FetchResult, *, now: float) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``, RFC 9110 section 10.2.3), or None.

    An HTTP-date is measured against the response's own ``Date`` header when present (immune to
    clock skew between us and the server), else against ``now`` (Unix time, seconds).
    """
    value = result.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    reference = now
    date = result.headers.get("date", "").strip()
    if date:
        try:
            reference = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            reference = now
    return max(0.0, when - reference)


class LinkChecker:
    """Checks link targets through the shared :class:`HttpClient`.

    ``limits``: retries, backoff and the Retry-After cap. ``sleep`` (seconds) is used for retry
    backoff and ``now`` (Unix time) for HTTP-date Retry-After values; tests inject fakes.
    """

    def __init__(
        self,
        client: HttpClient,
        limits: Limits,
        *,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._limits = limits
        self._sleep = sleep
        self._now = now

    async def check(self, url: str) -> LinkCheck:
        """Check one URL. Never raises for network problems; ``attempts`` counts the tries made."""
        use_head = True
        attempt = 0
        while True:
            attempt += 1
            result, use_head = await self._try(url, use_head)
            verdict, reason = classify(result)
            wait = self._retry_wait(result, verdict, attempt)
            if wait is None:
                return LinkCheck(
                    url=url,
                    verdict=verdict,
                    reason=reason,
                    status=result.status,
                    final_url=result.final_url,
                    redirects=result.redirects,
                    attempts=attempt,
                )
            if wait > 0:
                await self._sleep(wait)

    async def check_many(
        self, urls: Iterable[str], *, on_done: Callable[[LinkCheck], None] | None = None
    ) -> dict[str, LinkCheck]:
        """Check each unique URL once, concurrently (bounded by the client's limits).

        Returns ``{url: LinkCheck}`` for every input URL; ``on_done`` is called as each check ends
        (for progress). An unexpected error in one check is logged and reported as ``unknown``
        (``internal_error``) rather than failing the others.
        """
        unique = list(dict.fromkeys(urls))
        results: dict[str, LinkCheck] = {}

        async def run(url: str) -> None:
            try:
                check = await self.check(url)
            except Exception:
                logger.exception("checking %s failed unexpectedly", url)
                check = LinkCheck(url=url, verdict=Verdict.UNKNOWN, reason="internal_error", attempts=0)
            results[url] = check
            if on_done is not None:
                try:
                    on_done(check)
                except Exception:
                    logger.exception("progress callback failed for %s", url)

        async with asyncio.TaskGroup() as group:
            for url in unique:
                group.create_task(run(url))
        return {url: results[url] for url in unique}

    async def _try(self, url: str, use_head: bool) -> tuple[FetchResult, bool]:
        """One try: HEAD, then GET when HEAD did not settle it. Returns the deciding result and
        whether later tries should still start with HEAD."""
        if use_head:
            head = await self._client.request("HEAD", url)
            if not self._needs_get(head):
                return head, True
        get = await self._client.request("GET", url)
        if self._needs_body(get):
            # A refusal through a bot-management vendor: only its body tells a challenge from the
            # site's own 403, so read the start of it once.
            get = await self._client.request(
                "GET",
                url,
                read_body=True,
                max_body_bytes=WALL_BODY_SCAN_BYTES,
                body_types=WALL_BODY_TYPES,
            )
        return get, False

    @staticmethod
    def _needs_body(result: FetchResult) -> bool:
        """True for a refusal that would be ``broken`` or ``temporarily_unavailable`` (so retried) but
        carries a bot-management vendor's header."""
        if result.error is not None or result.status not in WALL_STATUSES or result.body:
            return False
        verdict, reason = classify(result)
        wall_possible = verdict is Verdict.BROKEN or reason == TEMPORARILY_UNAVAILABLE
        return wall_possible and wall_vendor(result) is not None

    @staticmethod
    def _needs_get(head: FetchResult) -> bool:
        if head.error is not None:
            return head.error.kind not in NO_GET_FALLBACK
        if head.status == 429:
            return False  # the server said "slow down": another request now would be rude
        verdict, _ = classify(head)
        return verdict is not Verdict.OK

    def _retry_wait(self, result: FetchResult, verdict: Verdict, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None when this result is final."""
        retries_left = attempt <= self._limits.retries
        backoff = self._limits.retry_backoff_s * 2 ** (attempt - 1)
        if result.error is not None:
            return backoff if retries_left and result.error.kind in RETRYABLE_ERRORS else None
        if result.status == 429 and not is_bot_wall(result):
            asked = retry_after_s(result, now=self._now())
            cap = self._limits.max_retry_after_s
            pause = max(backoff, DEFAULT_RATE_LIMIT_PAUSE_S) if asked is None else asked
            # Paused even when we give up: the other checks sharing the client must slow down too.
            self._client.pause_origin(result.final_url, min(pause, cap))
            if not retries_left or pause > cap:
                return None  # out of tries, or the server wants longer than we wait: rate_limited
            return 0.0  # the client parks the retry until the origin's pause ends (no sleep here)
        status = result.status
        if status == UNAVAILABLE_STATUS and not is_bot_wall(result):
            if not retries_left:
                return None
            # RFC 9110 section 10.2.3: a 503's Retry-After says how long the service is expected to be
            # down; retrying sooner is pointless, and waiting that long would hold the whole report.
            asked = retry_after_s(result, now=self._now())
            return backoff if asked is None or asked <= backoff else None
        if retries_left and status is not None and status >= 500 and verdict is Verdict.BROKEN:
            return None if status in NOT_RETRIED_5XX else backoff
        return None
