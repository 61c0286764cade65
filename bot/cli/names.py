"""Every ``linkpact`` command's name and one-line help, in the order ``linkpact --help`` lists them.

Kept apart from the command modules so that a light command (``linkpact check``) can still name every
command in its usage line without importing the heavier groups (agreements, audits, imports): see
:func:`bot.cli.main.build_parser`.
"""

from __future__ import annotations

COMMAND_HELP = {
    "check": "check every link on a page and the tracked backlinks to it",
    "track": "track a backlink: SOURCE page should link to our TARGET",
    "untrack": "stop tracking a backlink",
    "tracked": "list tracked backlinks (optionally only those to TARGET)",
    "agreement": "log, list, show, verify, prioritise, export and import agreements",
    "partner": "a partner's track record: days to deliver, live share, losses and reclaims",
    "audit": "audit our site's link profile: reciprocal pairs, three-way cycles, red flags",
    "import": (
        "track the backlinks in an export (Search Console, Ahrefs, Semrush, Moz, Majestic, a URL list)"
    ),
    "recheck": "recheck tracked backlinks and promised links now",
    "digest": "build the weekly digest now; post it unless --dry-run",
    "serve": "run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP)",
    "db": "the PostgreSQL database: upgrade its schema, show its status, migrate an embedded one into it",
}
# The groups whose modules import agreements, audits or imports (about 0.1 s of start-up).
HEAVY_COMMANDS = ("agreement", "partner", "audit", "import")
