"""Settings as small frozen value objects, read once from the environment.

Every setting names its unit (``timeout_s``, ``max_body_bytes``). ``Settings.from_env`` reads
``os.environ`` (after ``.env`` has been loaded by the front end with python-dotenv, the real
environment winning) and raises :class:`ConfigError` with a readable message on bad values.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
DEFAULT_RETRIES = 2
DEFAULT_RETRY_BACKOFF_S = 0.5
DEFAULT_DB_PATH = "./linkpact.json"
# Concurrent /linkcheck runs a workspace may have before it is told "busy, try again".
DEFAULT_MAX_CHECKS_PER_WORKSPACE = 4
DEFAULT_PORT = 3000
# Rechecks: daily is frequent enough to notice a loss within a day and polite to partners' servers.
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
# the qualification hint, bot.qualify.LINKS_PAGE_MIN_EXTERNAL_LINKS).
DEFAULT_LINKS_PAGE_MIN_EXTERNAL = 30
# A relevance score (1-5, set when the partnership was qualified) at or below this is proposed for pruning.
DEFAULT_MIN_RELEVANCE_SCORE = 1
SLACK_DEFAULT_API_URL = "https://slack.com/api/"


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
class SlackSettings:
    """Slack credentials and endpoints. Tokens are never logged."""

    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    app_token: str | None = field(default=None, repr=False)
    api_url: str = SLACK_DEFAULT_API_URL
    max_checks_per_workspace: int = DEFAULT_MAX_CHECKS_PER_WORKSPACE


@dataclass(frozen=True, slots=True)
class Settings:
    fetch: FetchSettings = field(default_factory=FetchSettings)
    db_path: Path = Path(DEFAULT_DB_PATH)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)

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
            monitor=monitor,
        )


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
    )


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse comma-separated CIDRs (``"127.0.0.0/8, ::1/128"``). Raises :class:`ConfigError`."""
    networks = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"LINKPACT_ALLOW_NETWORKS: {part!r} is not a network in CIDR form") from exc
    return tuple(networks)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not a whole number") from exc
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}: {raw!r} is not a number of seconds") from exc
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {value}")
    return value
