"""Link-profile audit (issue 6): crawl our site, find the reciprocal pairs and three-way cycles we
already have, and flag the red flags of seeds 001 and 002, each with its evidence.

Entry points: :func:`audit_site` (returns an :class:`AuditReport`: ``to_json()``,
:func:`render_audit_text`, :func:`findings_csv`, ``summary_lines()``, ``top_findings()``) and
:func:`propose_prunes` (findings -> open prune proposals). Thresholds: :class:`AuditSettings`.
See docs/audit.md.
"""

from bot.audit.core import audit_site, parse_site
from bot.audit.models import Cycle, Finding, FindingCode, PartnerPage, ReciprocalPair, Severity
from bot.audit.prune import PRUNE_CODES, propose_prunes, prune_reasons
from bot.audit.report import AuditReport, findings_csv, render_audit_text
from bot.audit.settings import DEFAULT_MAX_PAGES, DEFAULT_TIME_LIMIT_S, AuditSettings

__all__ = [
    "DEFAULT_MAX_PAGES",
    "DEFAULT_TIME_LIMIT_S",
    "PRUNE_CODES",
    "AuditReport",
    "AuditSettings",
    "Cycle",
    "Finding",
    "FindingCode",
    "PartnerPage",
    "ReciprocalPair",
    "Severity",
    "audit_site",
    "findings_csv",
    "parse_site",
    "propose_prunes",
    "prune_reasons",
    "render_audit_text",
]
