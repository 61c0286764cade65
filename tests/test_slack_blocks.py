"""The pure Block Kit builders: content, escaping, and Slack's limits with huge reports."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, SectionBlock

from bot.engine import Progress, TrackedBacklink
from bot.models import (
    ExtractedLink,
    FetchError,
    FetchErrorKind,
    InboundResult,
    InboundVerdict,
    LinkCheck,
    OutboundResult,
    PageReport,
    Placement,
    Report,
    Verdict,
)
from handlers.views.home_view import build_home_view
from handlers.views.message_blocks import (
    build_error_blocks,
    build_help_blocks,
    build_tracked_blocks,
)
from handlers.views.mrkdwn import escape, link, truncate
from handlers.views.report_blocks import (
    MAX_BLOCKS,
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MAX_HEADER_TEXT,
    MAX_LISTED_BROKEN,
    MAX_SECTION_TEXT,
    build_progress_blocks,
    build_report_blocks,
    build_report_text,
    report_is_truncated,
)

PAGE = "https://partner.example/resources"


def outbound(
    url: str,
    verdict: Verdict,
    *,
    status: int | None = 200,
    reason: str = "ok",
    anchor: str = "a link",
    rel: frozenset[str] = frozenset(),
    placement: Placement = Placement.MAIN,
) -> OutboundResult:
    return OutboundResult(
        link=ExtractedLink(href=url, url=url, anchor=anchor, rel=rel, placement=placement),
        internal=False,
        check=LinkCheck(url=url, verdict=verdict, reason=reason, status=status),
    )


def make_report(
    outbound_rows: tuple[OutboundResult, ...] = (),
    inbound_rows: tuple[InboundResult, ...] = (),
    *,
    page: PageReport | None = None,
) -> Report:
    return Report(
        page=page or PageReport(url=PAGE, final_url=PAGE, status=200, indexable=True, title="Resources"),
        outbound=outbound_rows,
        inbound=inbound_rows,
        started_at="2025-03-01T10:00:00+00:00",
        duration_s=2.345,
    )


def as_dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    # to_dict() runs slack_sdk's validators (text lengths, field counts) and raises when one fails.
    return [b.to_dict() for b in blocks]


def all_text(blocks: list[Block]) -> str:
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(as_dicts(blocks))
    return "\n".join(parts)


def assert_within_slack_limits(blocks: list[Block]) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in as_dicts(blocks):
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
            fields = block.get("fields", [])
            assert len(fields) <= MAX_FIELDS
            assert all(len(f["text"]) <= MAX_FIELD_TEXT for f in fields)
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER_TEXT


def test_a_small_report_lists_every_problem_with_status_url_anchor_and_placement() -> None:
    report = make_report(
        (
            outbound("https://ok.example/", Verdict.OK),
            outbound("https://gone.example/page", Verdict.BROKEN, status=404, reason="http_404",
                     anchor="Our partner", placement=Placement.FOOTER),
            outbound("https://gone.example/page", Verdict.BROKEN, status=404, reason="http_404",
                     anchor="again", placement=Placement.MAIN),
            outbound("https://slow.example/", Verdict.UNKNOWN, status=None, reason="timeout"),
            outbound("mailto:a@b.example", Verdict.SKIPPED, status=None, reason="mailto",
                     rel=frozenset({"nofollow"})),
        ),
        (
            InboundResult("https://blog.example/post", PAGE, InboundVerdict.LIVE, "ok", anchor="resources",
                          rel=frozenset(), placement=Placement.MAIN, status=200),
            InboundResult("https://old.example/links", PAGE, InboundVerdict.LOST, "link_removed", status=200),
        ),
    )  # fmt: skip
    blocks = build_report_blocks(report, requested_by="U123ABC")
    assert_within_slack_limits(blocks)
    assert isinstance(blocks[0], HeaderBlock)
    text = all_text(blocks)
    assert "Link report: Resources" in text
    assert "HTTP 200" in text and "indexable" in text
    assert "*Broken*\n2" in text and "*OK*\n1" in text and "*Unknown*\n1" in text and "*Skipped*\n1" in text
    # One line per broken target, with both placements and the number of places.
    assert (
        "*404* <https://gone.example/page|https://gone.example/page> · “Our partner” · footer, main"
        " · 2 places" in text
    )
    assert "*timeout* <https://slow.example/|https://slow.example/>" in text
    assert "*Nofollow share*\n20%" in text
    assert "*Backlinks live*\n1" in text and "*Backlinks lost*\n1" in text
    assert "*lost* <https://old.example/links|https://old.example/links> · _link_removed_" in text
    assert "requested by <@U123ABC>" in text
    assert "more" not in text
    assert not report_is_truncated(report)
    assert build_report_text(report).startswith(
        f"Link report for {PAGE}: 2 broken, 1 unknown, 1 ok, 1 skipped"
    )


def test_a_thousand_broken_links_stay_inside_block_kit_limits_and_end_with_and_n_more() -> None:
    rows = tuple(
        outbound(f"https://dead{i}.example/{'x' * 200}/{i}", Verdict.BROKEN, status=404, reason="http_404",
                 anchor="anchor " * 40, placement=Placement.MAIN)
        for i in range(1000)
    )  # fmt: skip
    inbound = tuple(
        InboundResult(f"https://src{i}.example/p", PAGE, InboundVerdict.LOST, "page_gone", status=410)
        for i in range(200)
    )
    report = make_report(rows, inbound)
    blocks = build_report_blocks(report)
    assert_within_slack_limits(blocks)
    text = all_text(blocks)
    assert "*Broken*\n1000" in text
    assert f"and {1000 - MAX_LISTED_BROKEN} more" in text
    assert "https://dead0.example/" in text and f"https://dead{MAX_LISTED_BROKEN}.example/" not in text
    assert "and 185 more" in text  # 200 lost backlinks, 15 listed
    assert "the full list is attached as CSV" in text
    assert report_is_truncated(report)
    # Without the CSV (bot not in the channel) the footer says how to get it instead.
    assert "invite Linkpact" in all_text(build_report_blocks(report, csv_attached=False))


def test_untrusted_page_text_is_escaped_and_long_urls_do_not_overflow() -> None:
    long_url = "https://evil.example/" + "a" * 5000
    report = make_report(
        (
            outbound("https://x.example/a|b", Verdict.BROKEN, status=500, reason="http_500",
                     anchor="<!channel> & <@U999> click"),
            outbound(long_url, Verdict.BROKEN, status=404, reason="http_404"),
        ),
        page=PageReport(url=PAGE, final_url=PAGE, status=200, indexable=True, title="<b>Title</b> & co"),
    )  # fmt: skip
    blocks = build_report_blocks(report)
    assert_within_slack_limits(blocks)
    text = all_text(blocks)
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "&lt;!channel&gt; &amp; &lt;@U999&gt; click" in text
    assert "<https://x.example/a%7Cb|https://x.example/a|b>" in text
    assert long_url not in text  # shown shortened, as plain text
    assert "Link report: <b>Title</b> & co" in text  # headers are plain text: nothing to escape


def test_page_not_indexable_and_page_errors_say_why() -> None:
    noindex = make_report(
        page=PageReport(url=PAGE, final_url=PAGE, status=200, indexable=False,
                        not_indexable_reasons=("noindex", "canonical points elsewhere"))
    )  # fmt: skip
    assert "not indexable: noindex, canonical points elsewhere" in all_text(build_report_blocks(noindex))
    failed = make_report(
        page=PageReport(url=PAGE, final_url=PAGE, status=None, indexable=False,
                        error=FetchError(FetchErrorKind.DNS_NOT_FOUND, "partner.example does not exist"))
    )  # fmt: skip
    text = all_text(build_report_blocks(failed))
    assert "could not be read (`dns_not_found`): partner.example does not exist" in text
    assert build_report_text(failed).endswith("the page could not be read")


def test_progress_blocks_show_the_url_and_the_phase() -> None:
    assert "Checking <https://a.example/|https://a.example/>…" in all_text(
        build_progress_blocks("https://a.example/")
    )
    text = all_text(
        build_progress_blocks("https://a.example/", Progress("checking links", 3, 10), requested_by="U1ABC")
    )
    assert "Checking links: 3 of 10" in text and "requested by <@U1ABC>" in text
    assert "Fetching the page" in all_text(
        build_progress_blocks("https://a.example/", Progress("fetching page", 0, 0))
    )


def test_help_error_and_home_blocks() -> None:
    help_text = all_text(build_help_blocks())
    for usage in (
        "/linkcheck &lt;url&gt;",
        "track &lt;source-url&gt; &lt;target-url&gt;",
        "untrack",
        "tracked [target-url]",
    ):
        assert usage in help_text
    assert_within_slack_limits(build_help_blocks())
    error = build_error_blocks("http://169.254.169.254/ was refused: <link-local>", hint="Type help")
    assert isinstance(error[0], SectionBlock) and isinstance(error[1], ContextBlock)
    assert ":warning: http://169.254.169.254/ was refused: &lt;link-local&gt;" in all_text(error)
    home = build_home_view().to_dict()
    assert home["type"] == "home" and any(b["type"] == "header" for b in home["blocks"])


def test_tracked_blocks_list_and_cut() -> None:
    rows = [
        TrackedBacklink(
            str(i),
            f"https://src{i}.example/p",
            PAGE,
            "U0ABC" if i % 2 else "cli",
            "2025-02-01T00:00:00+00:00",
        )
        for i in range(100)
    ]
    blocks = build_tracked_blocks(rows)
    assert_within_slack_limits(blocks)
    text = all_text(blocks)
    assert "*100 tracked backlinks*" in text
    assert "added by <@U0ABC> on 2025-02-01" in text and "added by cli" in text
    assert "and 60 more" in text
    empty = all_text(build_tracked_blocks([], target_url=PAGE))
    assert "No tracked backlinks to" in empty and "/linkcheck track" in empty


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a < b & c > d", "a &lt; b &amp; c &gt; d"), ("plain", "plain")],
)
def test_escape(raw: str, expected: str) -> None:
    assert escape(raw) == expected


def test_link_and_truncate() -> None:
    assert (
        link("https://a.example/?x=1&y=2")
        == "<https://a.example/?x=1&amp;y=2|https://a.example/?x=1&amp;y=2>"
    )
    assert truncate("abcdef", 4) == "abc…" and truncate("abc", 4) == "abc"
