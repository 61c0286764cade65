"""Block Kit for a backlink import from Slack: the summary and the verification that follows it.

Pure functions, :class:`bot.imports.ImportSummary` in, blocks out (limits as in
:mod:`handlers.views.report_blocks`). The file name, the tool's notes and the domains come from a file
someone uploaded, so every such text is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.imports import FORMATS_BY_NAME, REASON_LABELS, ImportSummary
from bot.imports.service import WARNING_LABELS
from handlers.views.message_blocks import pack_lines
from handlers.views.mrkdwn import escape, fallback, mention, truncate, truncate_mrkdwn
from handlers.views.report_blocks import MAX_FIELD_TEXT, MAX_SECTION_TEXT

COMMAND = "/linkcheck"
# Skip reasons and notes listed before "and N more" (each reason is a count with its first rows).
MAX_LISTED_REASONS = 12
MAX_LISTED_NOTES = 5
MAX_LISTED_DOMAINS = 10
MAX_LISTED_TABLES = 5
MAX_ROWS_SHOWN = 5
# A note is a sentence or two; a longer one is cut so that five still fit in one section.
MAX_NOTE_CHARS = 300


def format_label(name: str) -> str:
    """``ahrefs`` -> ``Ahrefs backlinks`` (the name itself when unknown)."""
    fmt = FORMATS_BY_NAME.get(name)
    return fmt.label if fmt else name


def import_text(summary: ImportSummary) -> str:
    """The top-level text (notifications, screen readers; escaped: :func:`fallback`)."""
    return fallback(
        f"Imported {summary.filename}: {count(summary.rows_read, 'row')} read, "
        f"{count(summary.new_backlinks, 'new backlink')}, "
        f"{count(summary.new_referring_domains, 'new referring domain')}"
    )


def count(n: int, singular: str) -> str:
    """``1 row``, ``12,345 rows`` (thousands separated: imports are large)."""
    return f"{n:,} {singular if n == 1 else singular + 's'}"


def _what(summary: ImportSummary) -> str:
    if summary.format == "zip":
        tables = ", ".join(
            f"{escape(truncate(t.name.rsplit('/', 1)[-1], 80))} ({escape(format_label(t.format))})"
            for t in summary.tables[:MAX_LISTED_TABLES]
        )
        more = len(summary.tables) - MAX_LISTED_TABLES
        return f"a zip of {count(len(summary.tables), 'table')}: {tables}" + (
            f" and {more} more" if more > 0 else ""
        )
    return escape(format_label(summary.format))


def build_import_blocks(summary: ImportSummary, *, user_id: str, verifying: bool) -> list[Block]:
    """The summary of one import: what the file was (format, encoding), rows read, imported, duplicates,
    skipped with reasons (and the first rows of each), new backlinks and new referring domains, then
    what happens next (``verifying``: a background verification was started)."""
    head = (
        f":inbox_tray: {mention(user_id)} imported *{escape(truncate(summary.filename, 200))}*: "
        f"{_what(summary)}, {escape(summary.encoding)}. {summary.rows_read:,} rows read."
    )
    fields = [
        f"*Imported*\n{summary.imported:,} ({count(summary.new_backlinks, 'new backlink')}"
        + (f", {count(summary.linking_sites, 'linking site')} without pages" if summary.linking_sites else "")
        + ")",
        f"*New referring domains*\n{summary.new_referring_domains:,} "
        f"(of {summary.referring_domains:,} in the file)",
        f"*Duplicates*\n{summary.duplicates_tracked:,} already tracked, "
        f"{summary.duplicates_in_file:,} repeated in the file",
        f"*Skipped*\n{count(summary.skipped_total, 'row')}",
    ]
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=truncate_mrkdwn(head, MAX_SECTION_TEXT)),
            fields=[MarkdownTextObject(text=truncate_mrkdwn(f, MAX_FIELD_TEXT)) for f in fields],
        )
    ]
    details = _skip_lines(summary.skipped, summary.skipped_rows) + _warning_lines(summary.warnings)
    if summary.new_domains_sample:
        shown = ", ".join(escape(d) for d in summary.new_domains_sample[:MAX_LISTED_DOMAINS])
        more = summary.new_referring_domains - min(len(summary.new_domains_sample), MAX_LISTED_DOMAINS)
        details.append(f"• new referring domains: {shown}" + (f" and {more:,} more" if more > 0 else ""))
    details += [
        f"• note: {escape(truncate(note, MAX_NOTE_CHARS))}" for note in summary.notes[:MAX_LISTED_NOTES]
    ]
    if len(summary.notes) > MAX_LISTED_NOTES:
        details.append(
            f"• …and {len(summary.notes) - MAX_LISTED_NOTES} more notes (`linkpact import --json`)"
        )
    blocks += pack_lines(details)  # a few sections at most: every list above is capped
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_next_step(summary, verifying=verifying))]))
    return blocks


def _skip_lines(skipped: Mapping[str, int], rows: Mapping[str, Sequence[object]]) -> list[str]:
    """One line per skip reason with its first rows (numbers, or ``table.csv:12`` in a zip: escaped)."""
    lines = []
    for reason, count in list(skipped.items())[:MAX_LISTED_REASONS]:
        first = rows.get(reason, ())[:MAX_ROWS_SHOWN]
        where = ""
        if first:
            shown = ", ".join(escape(str(row)) for row in first)
            where = f" (rows {shown}" + (", …" if count > len(first) else "") + ")"
        lines.append(f"• skipped {count:,} {escape(REASON_LABELS.get(reason, reason))}{where}")
    if len(skipped) > MAX_LISTED_REASONS:
        lines.append(f"• …and {len(skipped) - MAX_LISTED_REASONS} more reasons (`linkpact import --json`)")
    return lines


def _warning_lines(warnings: Mapping[str, int]) -> list[str]:
    if not warnings:
        return []
    kept = "; ".join(f"{n:,} {escape(WARNING_LABELS.get(code, code))}" for code, n in warnings.items())
    return [f"• kept, with cells left out: {kept}"]


def _next_step(summary: ImportSummary, *, verifying: bool) -> str:
    if summary.new_backlinks and verifying:
        return (
            f"Linkpact is verifying the {count(summary.new_backlinks, 'new backlink')} now, at its polite "
            "per-site rate; the result follows in this thread. Live ones count as referring domains in "
            "the next weekly digest."
        )
    if summary.new_backlinks:
        return "The next recheck verifies the new backlinks; live ones then show in the weekly digest."
    if not summary.written:
        return "Nothing new: Linkpact already tracks every backlink in this file."
    return (
        "Nothing to verify: the file added referring domains without pages (they are counted, not checked)."
    )


def verification_text(filename: str, verdicts: Mapping[str, int]) -> str:
    total = sum(verdicts.values())
    return fallback(
        f"Verified {count(total, 'new backlink')} from {filename}: "
        + ", ".join(f"{n} {word}" for word, n in _verdict_words(verdicts))
    )


def _verdict_words(verdicts: Mapping[str, int]) -> list[tuple[str, int]]:
    words = {"live": "live", "lost": "not found", "unknown": "could not be checked"}
    known = [(words[v], verdicts[v]) for v in words if verdicts.get(v)]
    return known + [(v, n) for v, n in verdicts.items() if v not in words and n]


def build_verification_blocks(
    filename: str, verdicts: Mapping[str, int], reasons: Mapping[str, int]
) -> list[Block]:
    """What the verification of an import's new backlinks found: counts by verdict (``live``, ``lost``
    shown as "not found", ``unknown``) and the most common reasons a link was not found."""
    total = sum(verdicts.values())
    parts = ", ".join(f"*{n:,}* {word}" for word, n in _verdict_words(verdicts)) or "nothing checked"
    name = escape(truncate(filename, 200))
    text = f":mag: Verified the {count(total, 'new backlink')} from *{name}*: {parts}."
    if reasons:
        top = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:MAX_LISTED_REASONS]
        text += "\nWhy not found or unchecked: " + ", ".join(f"`{escape(r)}` {n:,}" for r, n in top)
    note = (
        "Live backlinks count as referring domains in the next weekly digest; the others are rechecked on "
        f"schedule. `{COMMAND} tracked` lists them."
    )
    return [
        SectionBlock(text=MarkdownTextObject(text=truncate_mrkdwn(text, MAX_SECTION_TEXT))),
        ContextBlock(elements=[MarkdownTextObject(text=note)]),
    ]
