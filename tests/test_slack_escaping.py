"""Text from pages, people and files reaches Slack escaped, everywhere: no partner name, anchor, page
title, file name or error message can become a live mention, a broadcast or a link (Slack docs,
"Formatting text for app surfaces": escape ``&``, ``<``, ``>``), and cutting a long text never splits
an entity, a link or a grapheme cluster.

The end-to-end test drives every Slack flow in-process (Bolt's real dispatch, a real engine, local
sites, the Slack stand-in) with hostile text planted everywhere a person or a page can put it, then
walks every payload the bot sent: each top-level ``text``, each mrkdwn text object and each file
comment must hold only markup Linkpact writes itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import tests.test_slack_agreements as agreements
from bot.agreements.model import AgreementInput, LinkInput
from handlers.views.mrkdwn import ELLIPSIS, clip, escape, fallback, truncate, truncate_mrkdwn
from tests.support.site import LocalSite
from tests.support.slack_api import RESPONSE_URL_METHOD, SOCKET_ACK_METHOD, TEAM_ID, ApiCall
from tests.test_slack_agreements import CHANNEL, SlackDriver, exchange_answers, main_link, opened_view, page

# The in-process Slack driver of the agreements tests, with its clock and sites.
clock, ours, partner, slack, slack_api = (
    agreements.clock,
    agreements.ours,
    agreements.partner,
    agreements.slack,
    agreements.slack_api,
)

# What a hostile page or person types: a broadcast, a mention, a disguised link, an entity and markup.
HOSTILE = "<!channel> <@U0EVIL> <https://evil.example/phish|click here> &amp; <!here> <#C0EVIL> x > y"
LONG = ("&<>" * 700) + "é" * 10 + "👩‍👩‍👧‍👦" * 5
# Markup Linkpact writes: a mention of a Slack user ID, a date, or a link (<url> or <url|label>).
_OURS = re.compile(r"<(?:@[UW][A-Z0-9]+|!date\^[^<>|]*\|[^<>]*|https?://[^<>|\s]+(?:\|[^<>]*)?)>")
_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
ACK = "ack"  # the body of a command's HTTP acknowledgement
_MRKDWN_METHODS = {
    ACK,
    "chat.postMessage", "chat.update", "chat.postEphemeral", "views.publish", "views.open",
    "files.completeUploadExternal", RESPONSE_URL_METHOD, SOCKET_ACK_METHOD,
}  # fmt: skip


def mrkdwn_strings(call: ApiCall) -> list[str]:
    """Every string of ``call`` that Slack reads as mrkdwn: the top-level text, mrkdwn text objects
    (in blocks, views and fields) and a file's initial comment."""
    params = call.params.get("payload", call.params) if call.method == SOCKET_ACK_METHOD else call.params
    if not isinstance(params, dict):
        return []
    out = [str(params[k]) for k in ("text", "initial_comment") if isinstance(params.get(k), str)]
    for key in ("blocks", "view"):
        value = params.get(key)
        if isinstance(value, str):
            value = json.loads(value)
        _collect_mrkdwn(value, out)
    return out


def _collect_mrkdwn(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            out.append(node["text"])
        for value in node.values():
            _collect_mrkdwn(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect_mrkdwn(item, out)


def markup_problems(text: str) -> list[str]:
    """What in mrkdwn ``text`` is markup Linkpact did not write, or a broken entity."""
    problems = []
    rest = _OURS.sub("", text)
    if "<" in rest or ">" in rest:
        problems.append(f"unescaped markup: {rest[max(rest.find('<'), 0) :][:80]!r}")
    for token in _OURS.findall(text):
        if "evil" in token.lower():
            problems.append(f"hostile text became markup: {token[:80]!r}")
    if _ENTITY.search(text):
        at = _ENTITY.search(text)
        assert at is not None
        problems.append(
            f"a bare & (split or unescaped entity): {text[max(at.start() - 20, 0) : at.start() + 20]!r}"
        )
    return problems


def assert_every_payload_is_safe(calls: list[ApiCall]) -> int:
    checked = 0
    failures = []
    for call in calls:
        if call.method not in _MRKDWN_METHODS:
            continue
        for text in mrkdwn_strings(call):
            checked += 1
            failures += [f"{call.method}: {p}" for p in markup_problems(text)]
    assert not failures, "\n".join(dict.fromkeys(failures))
    return checked


# -- end to end --------------------------------------------------------------------------------------------


async def test_hostile_text_everywhere_never_becomes_markup_in_any_payload(
    slack: SlackDriver, ours: LocalSite, partner: LocalSite
) -> None:
    title = f"{HOSTILE} {LONG}"
    ours.html("/partners", page(main_link(partner.url("/guide"), HOSTILE), title=title))
    partner.html("/guide", page(main_link(ours.url("/product"), HOSTILE + LONG), title=title))
    partner.html("/resources", page(main_link(ours.url("/product"), HOSTILE), title=title))
    partner.html("/gone", "")

    ours.html(
        "/", page(main_link(ours.url("/partners"), HOSTILE) + main_link(partner.url("/guide"), HOSTILE))
    )
    acks: list[ApiCall] = []

    async def command(text: str) -> None:
        response = await slack.command(text)
        if response.body:  # the ack's own answer (usage, refusals), sent back in the HTTP response
            acks.append(ApiCall(ACK, json.loads(response.body), {}, ""))

    # A checked page: title, anchors, a broken link, and a URL with & and quotes in it.
    await command(f"{partner.url('/guide')}?a=1&b=<2>")
    await command(partner.url("/guide"))
    # Bad input quoted back in errors, and the usage.
    for text in (
        HOSTILE, f"track {HOSTILE} {partner.url('/')}", f"partner {HOSTILE}", f"partners {HOSTILE}",
        f"import --format {HOSTILE}", f"audit {HOSTILE}", f"tracked {HOSTILE}", "help", "tracked",
    ):  # fmt: skip
        await command(text)
        await slack.settle()

    # A partnership typed with hostile text in every free-text field, verified, listed, shown, exported.
    view = opened_view(await _open(slack))
    answers = exchange_answers(
        ours, partner, partner_name=HOSTILE + LONG, contact_name=HOSTILE, notes=HOSTILE + LONG,
        relevance_note=HOSTILE, link_2_anchor=HOSTILE + LONG[:50], link_1_anchor=HOSTILE,
    )  # fmt: skip
    assert await slack.submit(view, answers) == {"response_action": "clear"}
    await slack.settle()
    [agreement] = await slack.engine.agreements.all()
    await slack.engine.agreements.add(
        AgreementInput(
            HOSTILE, partner.url("/"), "U0ALICE", (LinkInput(partner.url("/gone"), ours.url("/")),)
        )
    )
    for text in ("partners", f"partner {agreement.id}", "partners export", "recheck", "digest"):
        await command(text)
        await slack.settle()
    await slack.home_opened()
    await slack.settle()

    # A file with a hostile name, imported in the channel.
    shared = slack.api.share_file(
        f"{HOSTILE}.csv", f"Linking page\r\n{partner.url('/guide')}\r\n".encode(), channel=CHANNEL
    )
    slack.api.bot_token = "xoxb-t"  # the driver's token: the stand-in's file host hands bytes over for it
    shared.url = f"{slack.api.origin}/files-pri/{TEAM_ID}-{shared.id}/download/export.csv"
    await command(f"import --target-site {ours.url('/')}")
    await slack.settle()

    # The audit of our site, whose pages and partners carry the hostile text.
    await command(f"audit {ours.url('/')} --pages 5")
    await slack.settle()

    calls = [*slack.api.calls, *acks]
    checked = assert_every_payload_is_safe(calls)
    methods = {c.method for c in calls}
    assert {"chat.postMessage", "chat.update", "views.publish", RESPONSE_URL_METHOD, ACK} <= methods
    assert checked > 50
    # Every flow ran: the report, the partnership, the import summary, the audit.
    everything = "\n".join(t for c in calls for t in mrkdwn_strings(c))
    for flow in ("Link report", "Partnership #1", "imported *", "Link-profile audit", "Rechecked", "digest"):
        assert flow in everything, flow
    # The hostile text did reach Slack, shown literally.
    assert escape("<!channel>") in everything and escape("<@U0EVIL>") in everything


async def _open(slack: SlackDriver) -> ApiCall:
    slack.mark()
    await slack.command("partner")
    return await slack.next_call("views.open")


# -- the helpers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", range(1, 40))
def test_truncate_mrkdwn_never_splits_an_entity_or_a_link(limit: int) -> None:
    text = "a &amp; b &lt;c&gt; <https://x.example/p?q=1&amp;r=2|the &amp; page> <@U0ALICE> end"
    cut = truncate_mrkdwn(text, limit)
    assert len(cut) <= limit
    body = cut.removesuffix(ELLIPSIS)
    assert text.startswith(body)
    assert not markup_problems(body), (limit, cut)


def test_truncate_keeps_grapheme_clusters_whole() -> None:
    family = "👩‍👩‍👧‍👦"  # one cluster of 7 code points (ZWJ sequence)
    accented = "e\u0301"  # e + combining acute
    for text in (f"ab{family}cd", f"ab{accented}{accented}cd", "ab🇫🇷🇩🇪cd"):
        for limit in range(1, len(text)):
            cut = truncate(text, limit).removesuffix(ELLIPSIS)
            assert len(cut) < limit or limit == len(text)
            assert text.startswith(cut)
            rest = text[len(cut) :]
            # the cut is a cluster boundary: the rest does not start with a joiner, a mark or a half flag
            assert not rest or not (rest[0] in "\u200d\u0301" or (cut and cut[-1] == "\u200d"))
            assert not (cut.endswith("🇫") or cut.count("🇫🇷") * 2 != cut.count("🇫") + cut.count("🇷"))


def test_clip_and_fallback_escape_and_fit() -> None:
    assert clip("<!channel> & co", 100) == "&lt;!channel&gt; &amp; co"
    assert clip("&&&&", 7) == "&amp;" + ELLIPSIS  # never "&am…"
    long_text = fallback("<@U0EVIL> " * 1000)
    assert len(long_text) <= 3000 and "<@" not in long_text and not markup_problems(long_text)


@pytest.mark.parametrize("hostile", [HOSTILE, LONG, "<<<>>>&&&", "<!everyone|all>"])
def test_every_text_builder_escapes(hostile: str) -> None:
    from handlers.views.import_blocks import verification_text
    from handlers.views.report_blocks import progress_text

    for text in (progress_text(f"https://a.example/{hostile}"), verification_text(hostile, {"live": 1})):
        assert not markup_problems(text), text
