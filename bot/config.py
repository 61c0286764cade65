"""Settings as small frozen value objects, read once from the environment.

Every setting names its unit (``timeout_s``, ``max_body_bytes``). ``Settings.from_env`` reads
``os.environ`` (after ``.env`` has been loaded by the front end with python-dotenv, the real
environment winning) and raises :class:`ConfigError` with a readable message on bad values.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import __version__

# Defaults, with why.
DEFAULT_CONTACT_URL = "https://github.com/linkpact/linkpact"
# Connect and read phases: a healthy server answers well inside these; a check must not hang a report.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 15.0
# httpx has no whole-request deadline; a slow drip could otherwise keep a request alive for ever.
DEFAULT_TOTAL_TIMEOUT_S = 30.0
# 5 MB decoded is far above any real HTML page and far below what a gzip bomb would inflate to.
DEFAULT_MAX_BODY_BYTES = 5_000_000
DEFAULT_MAX_REDIRECTS = 10
# Polite per-host concurrency (lychee and linkinator use similar small numbers by default).
DEFAULT_PER_HOST_CONCURRENCY = 4
DEFAULT_CONCURRENCY = 64
# A server's Retry-After is honoured up to this cap so one host cannot stall a report for minutes.
DEFAULT_MAX_RETRY_AFTER_S = 30.0
# One retry after a short pause (0.1 s, doubling if more retries are configured): it catches a one-off
# failure (a reset, one bad upstream behind a 502) without making a person wait for a link that stays
# down. A longer pause rarely changes the answer and only delays the report: two retries at 0.5 s and
# 1 s added 1.5 s to a 1,000-link check (docs/benchmarks.md). A longer outage is for loss confirmation
# to judge (tracked links count as lost only after failing on checks hours apart, bot.backlinks.confirm).
DEFAULT_RETRIES = 1
DEFAULT_RETRY_BACKOFF_S = 0.1
DEFAULT_DB_PATH = "./linkpact.json"
# LINKPACT_DATABASE_URL: the URL forms libpq documents for PostgreSQL (section "Connection URIs").
_DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")
# Concurrent /linkcheck runs a workspace may have before it is told "busy, try again".
DEFAULT_MAX_CHECKS_PER_WORKSPACE = 4
DEFAULT_PORT = 3000
# Rechecks of tracked backlinks that are no agreement's promised link (those follow their agreement's
# priority, bot.agreements.model.PRIORITY_INTERVAL_H): daily notices a loss within a day, politely.
DEFAULT_RECHECK_INTERVAL_H = 24.0
# A loss is confirmed only when seen on this many checks at least this many hours apart, so a page
# that is briefly broken (a deploy, a CDN blip) is never reported as a lost link.
DEFAULT_LOSS_CONFIRM_CHECKS = 2
DEFAULT_LOSS_CONFIRM_AFTER_H = 20.0
# Prune proposals (seed 001, steps 7-8). A partner gets this long past the deadline before a one-sided
# agreement is proposed for pruning: a reminder usually fixes a late link within two weeks.
DEFAULT_PRUNE_GRACE_DAYS = 14
# "Keep" hides a proposal for a month; the rule is looked at again after that.
DEFAULT_PRUNE_SNOOZE_DAYS = 30
# Seed 001, step 8: "Annually, review your reciprocal links against your qualification criteria".
DEFAULT_REVIEW_EVERY_DAYS = 365
# A partner page with this many distinct external links has become a links page (the same threshold as
# the qualification hint, bot.agreements.qualify.LINKS_PAGE_MIN_EXTERNAL_LINKS).
DEFAULT_LINKS_PAGE_MIN_EXTERNAL = 30
# A relevance score (1-5, set when the partnership was qualified) at or below this is proposed for pruning.
DEFAULT_MIN_RELEVANCE_SCORE = 1
# The weekly digest: Monday morning is when teams plan their week, so that is when it lands by default.
DEFAULT_DIGEST_DAY = "mon"
DEFAULT_DIGEST_TIME = "09:00"
DEFAULT_DIGEST_TZ = "UTC"
SLACK_DEFAULT_API_URL = "https://slack.com/api/"
# Weekday names as APScheduler's CronTrigger spells them (day_of_week), Monday first like date.weekday().
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {**{d: d for d in WEEKDAYS}, **dict(zip(_FULL_WEEKDAYS, WEEKDAYS, strict=True))}
# Conversation IDs (Slack docs, "Conversations API": C public, G private/legacy group, D direct message).
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
# User IDs start with U (or W on Enterprise Grid); user group IDs with S (Slack docs, "usergroups").
_ADMIN_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_APP_ID = re.compile(r"^A[A-Z0-9]{2,}$")
_TIME = re.compile(r"^(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Timeout:
    """Per-phase timeouts plus a total deadline for one request, all in seconds."""

    connect_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_s: float = DEFAULT_READ_TIMEOUT_S
    total_s: float = DEFAULT_TOTAL_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Limits:
    """Concurrency, size and redirect caps shared by every check in the process."""

    concurrency: int = DEFAULT_CONCURRENCY
    per_host_concurrency: int = DEFAULT_PER_HOST_CONCURRENCY
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S
    retries: int = DEFAULT_RETRIES
    retry_backoff_s: float = DEFAULT_RETRY_BACKOFF_S


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Everything the HTTP layer needs: identity, timeouts, limits and the address policy's exemptions."""

    timeout: Timeout = field(default_factory=Timeout)
    limits: Limits = field(default_factory=Limits)
    contact_url: str = DEFAULT_CONTACT_URL
    # Networks exempt from the address policy (e.g. 127.0.0.0/8 in tests). Empty by default.
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @property
    def user_agent(self) -> str:
        return f"linkpact/{__version__} (+{self.contact_url})"


@dataclass(frozen=True, slots=True)
class LossPolicy:
    """When a failing link counts as lost: seen failing on ``checks`` checks spanning ``after_h`` hours.
    ``unknown`` results (timeouts, bot walls, 429) never count toward a loss."""

    checks: int = DEFAULT_LOSS_CONFIRM_CHECKS
    after_h: float = DEFAULT_LOSS_CONFIRM_AFTER_H


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    recheck_interval_h: float = DEFAULT_RECHECK_INTERVAL_H
    loss: LossPolicy = field(default_factory=LossPolicy)


@dataclass(frozen=True, slots=True)
class PruneSettings:
    grace_days: int = DEFAULT_PRUNE_GRACE_DAYS
    snooze_days: int = DEFAULT_PRUNE_SNOOZE_DAYS
    review_every_days: int = DEFAULT_REVIEW_EVERY_DAYS
    links_page_min_external: int = DEFAULT_LINKS_PAGE_MIN_EXTERNAL
    min_relevance_score: int = DEFAULT_MIN_RELEVANCE_SCORE


@dataclass(frozen=True, slots=True)
class DigestSettings:
    """Where and when the weekly digest is posted: conversation IDs, a weekday (``mon`` .. ``sun``), a
    local time ``hour:minute`` and an IANA time zone name (``Europe/Berlin``). No channels: no digest."""

    channels: tuple[str, ...] = ()
    day: str = DEFAULT_DIGEST_DAY
    hour: int = 9  # DEFAULT_DIGEST_TIME
    minute: int = 0
    tz: str = DEFAULT_DIGEST_TZ

    @property
    def zone(self) -> tzinfo:
        return _zone(self.tz)

    @property
    def weekday(self) -> int:
        """0 for Monday .. 6 for Sunday (``datetime.weekday()``)."""
        return WEEKDAYS.index(self.day)

    def describe(self) -> str:
        """``"Mondays at 09:00 (UTC)"``."""
        day = _FULL_WEEKDAYS[self.weekday].capitalize()
        return f"{day}s at {self.hour:02d}:{self.minute:02d} ({self.tz})"


@dataclass(frozen=True, slots=True)
class SlackSettings:
    """Slack credentials and endpoints. Tokens are never logged.

    ``admins``: user IDs (``U…``/``W…``) and user group IDs (``S…``) who may decide any prune proposal
    besides the agreement's owner. ``app_id``: this app's ID (``A…``); a button payload naming another
    app is refused (when unset, the ID that ``auth.test`` reports is used, if it reports one).
    """

    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str = SLACK_DEFAULT_API_URL
    max_checks_per_workspace: int = DEFAULT_MAX_CHECKS_PER_WORKSPACE
    admins: tuple[str, ...] = ()
    app_id: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """``db_path``: the embedded database file (``LINKPACT_DB``). ``database_url``: a ``postgresql://``
    URL (``LINKPACT_DATABASE_URL``); when set, Linkpact keeps its data in PostgreSQL instead of the
    file. Not in ``repr``: the URL may carry a password."""

    fetch: FetchSettings = field(default_factory=FetchSettings)
    db_path: Path = Path(DEFAULT_DB_PATH)
    database_url: str | None = field(default=None, repr=False)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    #: Worker processes for CPU-heavy stages (``LINKPACT_CPU_WORKERS``, a count); ``None`` lets the command
    #: choose: none for one-shot commands, one per core (at most 4) for ``linkpact serve``.
    cpu_workers: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``). Raises :class:`ConfigError`."""
        env = os.environ if env is None else env
        timeout = Timeout(
            connect_s=_float(env, "LINKPACT_CONNECT_TIMEOUT_S", DEFAULT_CONNECT_TIMEOUT_S),
            read_s=_float(env, "LINKPACT_READ_TIMEOUT_S", DEFAULT_READ_TIMEOUT_S),
            total_s=_float(env, "LINKPACT_TIMEOUT_S", DEFAULT_TOTAL_TIMEOUT_S),
        )
        limits = Limits(
            concurrency=_int(env, "LINKPACT_CONCURRENCY", DEFAULT_CONCURRENCY),
            per_host_concurrency=_int(env, "LINKPACT_PER_HOST_CONCURRENCY", DEFAULT_PER_HOST_CONCURRENCY),
            max_body_bytes=_int(env, "LINKPACT_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_redirects=_int(env, "LINKPACT_MAX_REDIRECTS", DEFAULT_MAX_REDIRECTS, minimum=0),
            max_retry_after_s=_float(env, "LINKPACT_MAX_RETRY_AFTER_S", DEFAULT_MAX_RETRY_AFTER_S),
            retries=_int(env, "LINKPACT_RETRIES", DEFAULT_RETRIES, minimum=0),
        )
        fetch = FetchSettings(
            timeout=timeout,
            limits=limits,
            contact_url=env.get("LINKPACT_CONTACT_URL", DEFAULT_CONTACT_URL) or DEFAULT_CONTACT_URL,
            allow_networks=parse_networks(env.get("LINKPACT_ALLOW_NETWORKS", "")),
        )
        monitor = MonitorSettings(
            recheck_interval_h=_float(env, "LINKPACT_RECHECK_INTERVAL_H", DEFAULT_RECHECK_INTERVAL_H),
            loss=LossPolicy(
                checks=_int(env, "LINKPACT_LOSS_CONFIRM_CHECKS", DEFAULT_LOSS_CONFIRM_CHECKS),
                after_h=_float(env, "LINKPACT_LOSS_CONFIRM_AFTER_H", DEFAULT_LOSS_CONFIRM_AFTER_H),
            ),
        )
        prune = PruneSettings(
            grace_days=_int(env, "LINKPACT_PRUNE_GRACE_DAYS", DEFAULT_PRUNE_GRACE_DAYS, minimum=0),
            snooze_days=_int(env, "LINKPACT_PRUNE_SNOOZE_DAYS", DEFAULT_PRUNE_SNOOZE_DAYS),
            review_every_days=_int(env, "LINKPACT_REVIEW_EVERY_DAYS", DEFAULT_REVIEW_EVERY_DAYS),
            links_page_min_external=_int(
                env, "LINKPACT_LINKS_PAGE_MIN_EXTERNAL", DEFAULT_LINKS_PAGE_MIN_EXTERNAL
            ),
            min_relevance_score=_int(env, "LINKPACT_MIN_RELEVANCE_SCORE", DEFAULT_MIN_RELEVANCE_SCORE),
        )
        return cls(
            prune=prune,
            fetch=fetch,
            db_path=Path(env.get("LINKPACT_DB", DEFAULT_DB_PATH) or DEFAULT_DB_PATH),
            database_url=database_url_from_env(env),
            monitor=monitor,
            digest=digest_settings_from_env(env),
            cpu_workers=_int(env, "LINKPACT_CPU_WORKERS", -1, minimum=0)
            if env.get("LINKPACT_CPU_WORKERS")
            else None,
        )


def database_url_from_env(env: Mapping[str, str]) -> str | None:
    """``LINKPACT_DATABASE_URL``: a ``postgresql://user:password@host:port/dbname`` URL, or unset/empty for
    the embedded file. Raises :class:`ConfigError` for another kind of URL (never echoing it: it may hold
    a password)."""
    raw = (env.get("LINKPACT_DATABASE_URL") or "").strip()
    if not raw:
        return None
    if not raw.lower().startswith(_DATABASE_URL_SCHEMES):
        scheme = raw.split(":", 1)[0] if ":" in raw else "no scheme"
        raise ConfigError(
            f"LINKPACT_DATABASE_URL: a postgresql:// URL is expected (got {scheme!r}); leave it unset to "
            "keep the data in the LINKPACT_DB file"
        )
    return raw


def digest_settings_from_env(env: Mapping[str, str]) -> DigestSettings:
    """``LINKPACT_DIGEST_CHANNEL`` (comma-separated conversation IDs), ``LINKPACT_DIGEST_DAY`` (``mon`` ..
    ``sun`` or the full name), ``LINKPACT_DIGEST_TIME`` (``HH:MM``, 24-hour) and ``LINKPACT_DIGEST_TZ``
    (an IANA zone, read with :mod:`zoneinfo`). Raises :class:`ConfigError`."""
    channels = []
    for part in (env.get("LINKPACT_DIGEST_CHANNEL") or "").split(","):
        part = part.strip()
        if not part:
            continue
        if not _CHANNEL_ID.match(part):
            raise ConfigError(
                f"LINKPACT_DIGEST_CHANNEL: {part!r} is not a channel ID (like C0123ABCD; in Slack: the "
                "channel's details, About, Channel ID)"
            )
        channels.append(part)
    raw_day = (env.get("LINKPACT_DIGEST_DAY") or DEFAULT_DIGEST_DAY).strip().lower()
    day = _DAY_NAMES.get(raw_day)
    if day is None:
        raise ConfigError(f"LINKPACT_DIGEST_DAY: {raw_day!r} is not a weekday (mon, tue, ... sun)")
    raw_time = (env.get("LINKPACT_DIGEST_TIME") or DEFAULT_DIGEST_TIME).strip()
    match = _TIME.match(raw_time)
    if match is None:
        raise ConfigError(f"LINKPACT_DIGEST_TIME: {raw_time!r} is not a time of day as HH:MM (24-hour)")
    tz = (env.get("LINKPACT_DIGEST_TZ") or DEFAULT_DIGEST_TZ).strip()
    try:
        _zone(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"LINKPACT_DIGEST_TZ: {tz!r} is not an IANA time zone (like Europe/Berlin)"
        ) from exc
    return DigestSettings(
        channels=tuple(dict.fromkeys(channels)),
        day=day,
        hour=int(match["hour"]),
        minute=int(match["minute"]),
        tz=tz,
    )


def _zone(name: str) -> tzinfo:
    """The time zone called ``name``. UTC needs no time zone database (a slim container may lack one);
    other names are looked up with :mod:`zoneinfo` (the system's database, else the tzdata package)."""
    return UTC if name.upper() == "UTC" else ZoneInfo(name)


def parse_admins(text: str) -> tuple[str, ...]:
    """``LINKPACT_ADMINS``: comma-separated user IDs and user group IDs, bare or as Slack mentions
    (``<@U123>``, ``<!subteam^S123>``). Raises :class:`ConfigError`."""
    admins = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        bare = re.sub(r"^<(?:@|!subteam\^)([A-Z0-9]+)(?:\|[^>]*)?>$", r"\1", part)
        if not _ADMIN_ID.match(bare):
            raise ConfigError(
                f"LINKPACT_ADMINS: {part!r} is not a Slack user ID (U…/W…) or user group ID (S…)"
            )
        admins.append(bare)
    return tuple(dict.fromkeys(admins))


def slack_settings_from_env(env: Mapping[str, str] | None = None) -> SlackSettings:
    """Slack settings for ``linkpact serve``. Raises :class:`ConfigError` naming every missing variable."""
    env = os.environ if env is None else env
    missing = [name for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET") if not env.get(name)]
    if missing:
        raise ConfigError(
            "missing setting(s): " + ", ".join(missing) + " (set them in the environment or in .env; "
            "see .env.example)"
        )
    api_url = env.get("SLACK_API_URL") or SLACK_DEFAULT_API_URL
    if not api_url.endswith("/"):
        api_url += "/"
    return SlackSettings(
        bot_token=env["SLACK_BOT_TOKEN"],
        signing_secret=env["SLACK_SIGNING_SECRET"],
        app_token=env.get("SLACK_APP_TOKEN") or None,
        api_url=api_url,
        max_checks_per_workspace=_int(
            env, "LINKPACT_MAX_CHECKS_PER_WORKSPACE", DEFAULT_MAX_CHECKS_PER_WORKSPACE
        ),
        admins=parse_admins(env.get("LINKPACT_ADMINS") or ""),
        app_id=_app_id(env.get("SLACK_APP_ID") or ""),
    )


def _app_id(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not _APP_ID.match(raw):
        raise ConfigError(
            f"SLACK_APP_ID: {raw!r} is not an app ID (Basic Information > App ID, like A0123ABCD)"
        )
    return raw


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse comma-separated CIDRs (``"127.0.0.0/8, ::1/128"``). Raises :class:`ConfigError`.

    A network written with host bits set (``127.0.0.2/24``) is refused, not widened: the person may have
    meant the one address (``/32``) or the whole network, and exempting more of the address policy than
    was written is the wrong guess to make silently (docs/security.md).
    """
    networks = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=True))
        except ValueError as exc:
            try:
                widened = ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ConfigError(f"LINKPACT_ALLOW_NETWORKS: {part!r} is not a network in CIDR form") from exc
            address = part.split("/", 1)[0].strip()
            single = f"{address}/{widened.max_prefixlen}"
            raise ConfigError(
                f"LINKPACT_ALLOW_NETWORKS: {part} has host bits set, so it would allow the whole network "
                f"{widened} ({widened.num_addresses:,} addresses); write {widened} if that is what you "
                f"mean, or {single} for that one address"
            ) from exc
    return tuple(networks)


# The unit a setting's name ends in (docs: "Settings say their unit"), for messages about its value.
_UNIT_SUFFIXES = (("_S", "seconds"), ("_H", "hours"), ("_DAYS", "days"), ("_BYTES", "bytes"))


def _unit(name: str) -> str:
    """``seconds``, ``hours``, ``days`` or ``bytes`` from the end of a setting's name; ``""`` for counts."""
    return next((unit for suffix, unit in _UNIT_SUFFIXES if name.endswith(suffix)), "")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    unit = _unit(name)
    try:
        value = int(raw)
    except ValueError as exc:
        what = f"a whole number of {unit}" if unit else "a whole number"
        raise ConfigError(f"{name}: {raw!r} is not {what}") from exc
    if value < minimum:
        unit = unit.removesuffix("s") if minimum == 1 else unit  # "at least 1 day", "at least 0 days"
        raise ConfigError(f"{name}: must be at least {minimum}{f' {unit}' if unit else ''}, got {value}")
    return value


def _optional_int(env: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    """``name`` as a whole number, or None when unset or empty (the default is decided elsewhere)."""
    return _int(env, name, -1, minimum=minimum) if env.get(name) else None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    unit = _unit(name)
    what = f"a number of {unit}" if unit else "a number"
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not {what}") from exc
    if math.isnan(value) or value <= 0:
        raise ConfigError(f"{name}: must be {what} above 0, got {raw.strip()}")
    return value
