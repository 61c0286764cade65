"""The "Log a partnership" modal: its blocks, what it carries, and how a submission is read back (pure).

One block per field of :class:`bot.agreements.model.AgreementInput`; each input block's ``block_id`` (and its
element's ``action_id``) is the field's name, so the core's field errors
(:class:`bot.agreements.model.AgreementInputError` ``.errors``)
map straight onto the blocks Slack marks in red
(``response_action: errors``, Slack docs "Handling user interaction in modals").

Promised links come in three rows: row 1 is the link we give ("our page -> their page", direction
``ours``), row 2 the link we get ("their page -> our page", ``theirs``), row 3 an optional extra link with
its own direction (the third leg of a three-way exchange). A row with nothing typed in is left out, so a
paid or editorial agreement simply leaves row 1 empty. The modal stays far under Slack's 100-block limit
(about 46 blocks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DatePickerElement,
    DividerBlock,
    EmailInputElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.agreements.model import (
    DEFAULT_PRIORITY,
    QUALIFICATION_FIELDS,
    SCORE_MAX,
    SCORE_MIN,
    AgreementInput,
    AgreementKind,
    Direction,
    ExpectedRel,
    LinkInput,
    Priority,
    default_deadline,
)
from bot.models import Placement
from handlers.views.mrkdwn import truncate

LOG_PARTNERSHIP_CALLBACK = "log_partnership_modal"
MODAL_TITLE = "Log a partnership"  # Slack: at most 24 characters
SUBMIT_LABEL = "Log and verify"
CLOSE_LABEL = "Cancel"

# Rows of promised links in the modal: the link we give, the link we get, one optional extra link.
OUR_LINK_ROW, THEIR_LINK_ROW, EXTRA_LINK_ROW = 1, 2, 3
LINK_ROWS = (OUR_LINK_ROW, THEIR_LINK_ROW, EXTRA_LINK_ROW)
LINK_FIELDS = ("source", "target", "direction", "anchor", "rel", "placement")
# Where an error about "the links as a whole" is shown: the one row every kind of agreement fills.
LINKS_ERROR_BLOCK = f"link_{THEIR_LINK_ROW}_source"

# Slack caps a plain-text input's value at 3,000 characters; these caps are what the fields need.
MAX_URL_CHARS = 2000  # longer URLs exist but are not pages anyone agrees to link from
MAX_NAME_CHARS = 200
MAX_NOTE_CHARS = 500
MAX_NOTES_CHARS = 3000
# An error under a field is read at a glance; the core's messages fit, a pasted monster URL would not.
MAX_ERROR_CHARS = 300

KIND_LABELS = {
    AgreementKind.EXCHANGE: "Link exchange (we link to them, they link to us)",
    AgreementKind.THREE_WAY: "Three-way exchange (A → B → C → A)",
    AgreementKind.PAID: "Paid link (expected rel=sponsored)",
    AgreementKind.EDITORIAL: "Editorial link (earned, nothing given back)",
}
REL_LABELS = {
    ExpectedRel.FOLLOW: "follow (passes link equity)",
    ExpectedRel.NOFOLLOW: "nofollow",
    ExpectedRel.SPONSORED: "sponsored (paid links)",
    ExpectedRel.UGC: "ugc (user-generated content)",
}
PLACEMENT_LABELS = {
    Placement.MAIN: "main content",
    Placement.NAV: "navigation",
    Placement.HEADER: "header",
    Placement.ASIDE: "sidebar",
    Placement.FOOTER: "footer",
    Placement.COMMENTS: "comments",
}
PRIORITY_LABELS = {
    Priority.HIGH: "High: rechecked daily",
    Priority.NORMAL: "Normal: rechecked every 3 days",
    Priority.LOW: "Low: rechecked weekly",
}
DIRECTION_LABELS = {
    Direction.OURS: "on our site (we link out)",
    Direction.THEIRS: "on a partner's site (they link)",
}
CRITERION_LABELS = {
    "relevance": "Relevance",
    "authority": "Authority",
    "content_quality": "Content quality",
    "traffic": "Traffic",
}
SCORE_WORDS = {1: "1 (poor)", 2: "2", 3: "3 (fair)", 4: "4", 5: "5 (excellent)"}

_ROW_TITLES = {
    OUR_LINK_ROW: (
        "*Link 1: we link to them* (leave empty for a paid or editorial link: nothing given back)"
    ),
    THEIR_LINK_ROW: "*Link 2: they link to us*",
    EXTRA_LINK_ROW: (
        "*Link 3, optional*: the third leg of a three-way exchange (e.g. B's page → site C), "
        "or any other promised link"
    ),
}
_ROW_SOURCE = {
    OUR_LINK_ROW: ("Our page (where our link sits)", "https://our-site.example/partners"),
    THEIR_LINK_ROW: ("Their page (where their link sits)", "https://partner.example/resources"),
    EXTRA_LINK_ROW: ("Source page (where the link sits)", "https://site-c.example/links"),
}
_ROW_TARGET = {
    OUR_LINK_ROW: ("Their page we link to", "https://partner.example/"),
    THEIR_LINK_ROW: ("Our page they link to", "https://our-site.example/product"),
    EXTRA_LINK_ROW: ("Target URL (where the link points)", "https://partner.example/"),
}
_ROW_DIRECTION = {OUR_LINK_ROW: Direction.OURS, THEIR_LINK_ROW: Direction.THEIRS}

_URL_IN_TEXT = re.compile(r"<(https?://[^>|\s]+)(?:\|[^>]*)?>|(https?://[^\s<>|]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ModalOrigin:
    """Where the modal was opened, carried in the view's ``private_metadata`` (at most 3,000 characters).

    ``channel_id``: the conversation the result is posted to ("" from the App Home: the owner gets a DM).
    ``surface``: ``command``, ``shortcut`` or ``home`` (the Home tab is refreshed after logging).
    """

    channel_id: str = ""
    surface: str = "command"

    def encode(self) -> str:
        return json.dumps({"channel": self.channel_id, "surface": self.surface}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None) -> ModalOrigin:
        """The origin in ``raw``; an empty origin when it is missing or not ours."""
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        channel, surface = data.get("channel"), data.get("surface")
        return cls(
            channel_id=channel if isinstance(channel, str) else "",
            surface=surface if isinstance(surface, str) else "command",
        )


@dataclass(frozen=True, slots=True)
class PartnershipPrefill:
    """Values put in the modal before the user types (e.g. from a message shortcut)."""

    partner_page_url: str = ""
    partner_site: str = ""


def prefill_from_message(message: Mapping[str, Any]) -> PartnershipPrefill:
    """The first http(s) URL of a Slack message as the partner page, and its origin as the partner site.

    URLs are read from the message text (``<https://x|label>``, ``<https://x>`` or bare) and, failing
    that, from its rich-text blocks (``link`` elements). No URL: an empty prefill.
    """
    url = first_url(str(message.get("text") or "")) or _first_block_url(message.get("blocks"))
    if not url:
        return PartnershipPrefill()
    parts = urlsplit(url)
    site = f"{parts.scheme}://{parts.netloc}/" if parts.scheme and parts.netloc else ""
    return PartnershipPrefill(partner_page_url=url, partner_site=site)


def first_url(text: str) -> str:
    """The first http(s) URL in Slack message text, or ""."""
    match = _URL_IN_TEXT.search(text)
    if match is None:
        return ""
    return (match.group(1) or match.group(2)).replace("&amp;", "&")


def _first_block_url(node: Any) -> str:
    if isinstance(node, dict):
        if node.get("type") == "link" and isinstance(node.get("url"), str):
            url = node["url"]
            if url.lower().startswith(("http://", "https://")):
                return str(url)
        children: Any = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return ""
    for child in children:
        found = _first_block_url(child)
        if found:
            return found
    return ""


# -- building -------------------------------------------------------------------------------------------


def build_partnership_modal(
    *, today: date, origin: ModalOrigin, prefill: PartnershipPrefill | None = None
) -> View:
    """The modal (``callback_id`` :data:`LOG_PARTNERSHIP_CALLBACK`).

    ``today`` sets the deadline picker's default (today + 7 days, seed 001 step 5). ``prefill`` fills the
    partner page (link 2's source) and the partner site.
    """
    prefill = prefill or PartnershipPrefill()
    blocks: list[Block] = [
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Linkpact stores the agreement, verifies every promised link right away and "
                    "posts the result here (or to you by DM). Qualification hints are shown with the "
                    "result: they never block logging."
                )
            ]
        ),
        _text_input("partner_name", "Partner name", "Partner Bakery", max_length=MAX_NAME_CHARS),
        _text_input(
            "partner_site",
            "Partner site",
            "https://partner.example/",
            initial=prefill.partner_site,
            max_length=MAX_URL_CHARS,
        ),
        InputBlock(
            block_id="kind",
            label="Kind",
            element=StaticSelectElement(
                action_id="kind",
                options=_options(KIND_LABELS),
                initial_option=_option(AgreementKind.EXCHANGE, KIND_LABELS),
            ),
        ),
        InputBlock(
            block_id="deadline",
            label="Deadline for the promised links",
            hint="By default 7 days from today: after it, a partner link still missing is one-sided.",
            element=DatePickerElement(action_id="deadline", initial_date=default_deadline(today).isoformat()),
        ),
        InputBlock(
            block_id="priority",
            label="Priority",
            hint="How often Linkpact rechecks the promised links (a suspected loss: daily anyway).",
            element=StaticSelectElement(
                action_id="priority",
                options=_options(PRIORITY_LABELS),
                initial_option=_option(DEFAULT_PRIORITY, PRIORITY_LABELS),
            ),
        ),
        HeaderBlock(text="Contact"),
        _text_input("contact_name", "Contact name", "Pat Baker", optional=True, max_length=MAX_NAME_CHARS),
        InputBlock(
            block_id="contact_email",
            label="Contact email",
            optional=True,
            element=EmailInputElement(action_id="contact_email", placeholder="pat@partner.example"),
        ),
        InputBlock(
            block_id="contact_slack",
            label="Contact in Slack",
            optional=True,
            hint="When the partner's contact is in a shared channel or this workspace.",
            element=UserSelectElement(action_id="contact_slack", placeholder="Pick a person"),
        ),
        HeaderBlock(text="Promised links"),
    ]
    for row in LINK_ROWS:
        blocks += _link_row(row, prefill)
    blocks += [
        HeaderBlock(text="Qualification (optional)"),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Seed criteria: relevance, authority, content quality, traffic. A note and a "
                    "1-5 score each, all optional."
                )
            ]
        ),
    ]
    for criterion in QUALIFICATION_FIELDS:
        label = CRITERION_LABELS[criterion]
        blocks.append(
            _text_input(f"{criterion}_note", f"{label}: note", "", optional=True, max_length=MAX_NOTE_CHARS)
        )
        blocks.append(
            InputBlock(
                block_id=f"{criterion}_score",
                label=f"{label}: score",
                optional=True,
                element=StaticSelectElement(
                    action_id=f"{criterion}_score",
                    placeholder="1-5",
                    options=[
                        Option(value=str(n), label=SCORE_WORDS[n]) for n in range(SCORE_MIN, SCORE_MAX + 1)
                    ],
                ),
            )
        )
    blocks += [
        DividerBlock(),
        _text_input(
            "notes",
            "Notes",
            "What was agreed, links to the email thread…",
            optional=True,
            multiline=True,
            max_length=MAX_NOTES_CHARS,
        ),
    ]
    return View(
        type="modal",
        callback_id=LOG_PARTNERSHIP_CALLBACK,
        title=MODAL_TITLE,
        submit=SUBMIT_LABEL,
        close=CLOSE_LABEL,
        private_metadata=origin.encode(),
        blocks=blocks,
    )


def _link_row(row: int, prefill: PartnershipPrefill) -> list[Block]:
    source_label, source_example = _ROW_SOURCE[row]
    target_label, target_example = _ROW_TARGET[row]
    required = row == THEIR_LINK_ROW  # every kind of agreement has a link from the partner's side
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=_ROW_TITLES[row])),
        _text_input(
            f"link_{row}_source",
            source_label,
            source_example,
            optional=not required,
            initial=prefill.partner_page_url if row == THEIR_LINK_ROW else "",
            max_length=MAX_URL_CHARS,
        ),
        _text_input(
            f"link_{row}_target",
            target_label,
            target_example,
            optional=not required,
            max_length=MAX_URL_CHARS,
        ),
    ]
    if row not in _ROW_DIRECTION:
        blocks.append(
            InputBlock(
                block_id=f"link_{row}_direction",
                label="This link sits…",
                optional=True,
                element=StaticSelectElement(
                    action_id=f"link_{row}_direction",
                    options=_options(DIRECTION_LABELS),
                    initial_option=_option(Direction.THEIRS, DIRECTION_LABELS),
                ),
            )
        )
    blocks += [
        _text_input(
            f"link_{row}_anchor",
            "Expected anchor text",
            "Partner Bakery's sourdough guide",
            optional=True,
            max_length=MAX_NAME_CHARS,
        ),
        InputBlock(
            block_id=f"link_{row}_rel",
            label="Expected rel",
            optional=True,
            hint="Empty means follow, or sponsored when the kind is paid (Google's rule for paid links).",
            element=StaticSelectElement(
                action_id=f"link_{row}_rel",
                placeholder="follow (sponsored when paid)",
                options=_options(REL_LABELS),
            ),
        ),
        InputBlock(
            block_id=f"link_{row}_placement",
            label="Expected placement",
            optional=True,
            element=StaticSelectElement(
                action_id=f"link_{row}_placement",
                placeholder="anywhere on the page",
                options=_options(PLACEMENT_LABELS),
            ),
        ),
    ]
    return blocks


def _text_input(
    block_id: str,
    label: str,
    placeholder: str,
    *,
    optional: bool = False,
    initial: str = "",
    multiline: bool = False,
    max_length: int | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=PlainTextInputElement(
            action_id=block_id,
            placeholder=placeholder or None,
            initial_value=initial or None,
            multiline=multiline or None,
            max_length=max_length,
        ),
    )


def _options(labels: Mapping[Any, str]) -> list[Option]:
    return [Option(value=str(key.value), label=label) for key, label in labels.items()]


def _option(key: Any, labels: Mapping[Any, str]) -> Option:
    return Option(value=str(key.value), label=labels[key])


@cache
def modal_block_ids() -> frozenset[str]:
    """Every input block id of the modal (where field errors can be shown); the same for every modal."""
    view = build_partnership_modal(today=date(2000, 1, 1), origin=ModalOrigin())
    return frozenset(b.block_id for b in view.blocks or [] if isinstance(b, InputBlock) and b.block_id)


# -- reading a submission ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartnershipSubmission:
    """A submitted modal as core input. ``link_rows[i]`` is the modal row of ``data.links[i]``."""

    data: AgreementInput
    link_rows: tuple[int, ...]


def read_partnership_submission(values: Mapping[str, Any], *, owner: str) -> PartnershipSubmission:
    """Read ``view.state.values`` (Slack's ``view_submission`` payload) into an :class:`AgreementInput`.

    A link row is included when any of its source, target, anchor, rel or placement was given, so a
    half-filled row reaches the core and gets its "give link N's target URL" error.
    """
    links: list[LinkInput] = []
    rows: list[int] = []
    for row in LINK_ROWS:
        fields = {name: state_value(values, f"link_{row}_{name}") for name in LINK_FIELDS}
        if not any(fields[name] for name in ("source", "target", "anchor", "rel", "placement")):
            continue
        direction = _ROW_DIRECTION.get(row)
        links.append(
            LinkInput(
                source_url=fields["source"],
                target_url=fields["target"],
                direction=direction.value if direction else fields["direction"],
                anchor=fields["anchor"],
                rel=fields["rel"],
                placement=fields["placement"],
            )
        )
        rows.append(row)
    data = AgreementInput(
        partner_name=state_value(values, "partner_name"),
        partner_site=state_value(values, "partner_site"),
        owner=owner,
        links=tuple(links),
        kind=state_value(values, "kind"),
        deadline=state_value(values, "deadline"),
        contact_name=state_value(values, "contact_name"),
        contact_email=state_value(values, "contact_email"),
        contact_slack=state_value(values, "contact_slack"),
        notes=state_value(values, "notes"),
        priority=state_value(values, "priority"),
        qualification={
            name: (state_value(values, f"{name}_note"), state_value(values, f"{name}_score"))
            for name in QUALIFICATION_FIELDS
        },
    )
    return PartnershipSubmission(data, tuple(rows))


def state_value(values: Mapping[str, Any], block_id: str) -> str:
    """The value of one input block in ``view.state.values``, as a string ("" when empty or absent).

    Reads what each element type carries: ``value`` (text, email, URL, number inputs),
    ``selected_option.value`` (static select), ``selected_date`` (date picker), ``selected_user``
    (user select).
    """
    block = values.get(block_id)
    if not isinstance(block, Mapping):
        return ""
    element = block.get(block_id)
    if not isinstance(element, Mapping):
        element = next((v for v in block.values() if isinstance(v, Mapping)), {})
    for key in ("value", "selected_date", "selected_user"):
        value = element.get(key)
        if isinstance(value, str):
            return value.strip()
    option = element.get("selected_option")
    if isinstance(option, Mapping) and isinstance(option.get("value"), str):
        return str(option["value"]).strip()
    return ""


_LINK_KEY = re.compile(r"^link_(\d+)_(\w+)$")
_LINK_NUMBER = re.compile(r"\blink (\d+)\b")


def block_errors(
    errors: Mapping[str, str], link_rows: Sequence[int], *, block_ids: frozenset[str] | None = None
) -> dict[str, str]:
    """The core's field errors as ``{block_id: message}`` for ``ack(response_action="errors")``.

    ``link_<n>_<field>`` goes to the modal row that link came from (and "link n" in the message is
    renumbered to that row); a field without a block of its own (the fixed direction of rows 1 and 2)
    goes to that row's source. ``links`` goes to row 2's source. Messages for one block are joined.
    """
    known = block_ids if block_ids is not None else modal_block_ids()
    out: dict[str, str] = {}

    def renumber(message: str) -> str:
        def row_of(match: re.Match[str]) -> str:
            n = int(match.group(1))
            return f"link {link_rows[n - 1]}" if 0 < n <= len(link_rows) else match.group(0)

        return _LINK_NUMBER.sub(row_of, message)

    for key, message in errors.items():
        block = key
        match = _LINK_KEY.match(key)
        if match is not None:
            n = int(match.group(1))
            row = link_rows[n - 1] if 0 < n <= len(link_rows) else THEIR_LINK_ROW
            block = f"link_{row}_{match.group(2)}"
            if block not in known:
                block = f"link_{row}_source"
        elif key == "links":
            block = LINKS_ERROR_BLOCK
        if block not in known:
            block, message = "partner_name", f"{key.replace('_', ' ')}: {message}"
        text = renumber(message)
        out[block] = truncate(f"{out[block]}; {text}" if block in out else text, MAX_ERROR_CHARS)
    return out
