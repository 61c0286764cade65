"""Placement of a link on its page: ``main``, ``nav``, ``header``, ``aside``, ``footer``, ``comments``.

A link's placement is decided from its ancestors, folded from the root down to the link: an element
may carry a *signal* (the region it declares), and a region, once entered, is only replaced by a more
specific one. Signals, strongest first:

1. ARIA roles (WAI-ARIA 1.2, "Landmark Roles"): ``main``, ``navigation``, ``banner``, ``contentinfo``,
   ``complementary``, ``search``; also ``article``, ``menu``/``menubar``, ``dialog``, ``toolbar`` and
   ``comment`` (WAI-ARIA 1.3). The first role token counts.
2. HTML sectioning and landmark elements (HTML Living Standard, "Sections"): ``main``, ``article``,
   ``section``, ``nav``, ``aside``, ``header``, ``footer``; microdata ``itemprop="articleBody"`` and
   ``itemprop="comment"`` / ``itemtype=".../Comment"`` (schema.org).
3. Whole words in ``id`` and ``class`` (``site-header``, ``mw-navigation``, ``widget_recent_entries``,
   ``comment-list``, ``share-buttons``; camelCase is split). Words are weak: they only mark a region
   inside main content, never replace a region an ancestor declared, and are ignored on an element
   that holds the page's main text: more than :data:`WRAPPER_TEXT_SHARE` of the page's text, or, with
   little link text, more than :data:`ARTICLE_PROSE_SHARE` of its prose (then the word names the
   layout, as in ``contentWithSidebar``, ``l-rail``, ``modal-enabled``; comment words excepted, as
   threads often outweigh the article),
   on ``<html>``/``<body>`` (CMSs put page-type words there: ``has-sidebar``), on the link element
   itself (``comments-count`` describes the link, not where it sits) and in long ids, which are
   heading slugs (``sharing-with-a-single-developer``).
4. Link lists: a link whose nearest container of :data:`LINK_LIST_MIN_LINKS` or more links is nearly
   all link text (:data:`LINK_LIST_DENSITY`) sits in a menu, a list of related stories or a tag
   cloud, not in prose: ``nav``. Not applied inside ``<main>``, ``<article>``, ``role=main``/
   ``article`` or ``itemprop=articleBody``: there the author has said this is the content, and a list
   of resources in an article is exactly the kind of link a partnership is about. Nor in an element
   named as an article body (``entry-content``) that holds prose, nor for a list whose parent holds
   twice the list's text as prose (an unmarked list between an article's paragraphs).
5. Embedded posts: inside authored content, an aside (element, role or word) holding the markup of a
   platform's embed code (a tweet, an Instagram post, ...) is quoted content, ``main``.

Precedence, and why:

- ``comments`` is final: a reply's ``<footer>`` or ``<nav>`` inside a comment thread is still the thread.
- ``<main>``/``role=main`` resets to ``main``: the HTML standard forbids ``main`` inside nav, aside,
  header or footer, so a region on a wrapper around ``<main>`` (off-canvas menus wrap whole pages) is
  a layout artefact.
- A ``<header>`` inside ``article``/``section``/``main`` is that section's header (headline, byline),
  not the site banner, so it stays ``main`` (HTML-AAM maps ``header`` to ``banner`` with the same
  scoping); ``role=banner`` is explicit and always counts. A ``<footer>`` is a footer at every level:
  an article's footer holds tags, share buttons and author boxes, which are boilerplate, not the
  editorial body.
- ``<nav>`` inside ``<header>`` is ``nav`` (the site menu); inside ``<footer>``/``<aside>`` the outer
  region is the more useful answer (a footer menu is a footer link).
- No signal at all: ``main``.

Each element's state is computed once per document (memoised by memory id), so a page with thousands
of links costs one visit per ancestor element, not one per link and ancestor.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

from selectolax.lexbor import LexborNode

from bot.models import Placement

# A class word on an element holding more than this share of the page's text names a layout
# ("contentWithSidebar", "panel-two-col-sidebar-right-mix", Blogger's "widget Blog" around every post),
# not a region: real sidebars, menus and footers hold a minority of a page's text. On the corpus the
# check lifts recall of main from 0.929 to 0.977 at no cost in precision (docs/extraction.md).
WRAPPER_TEXT_SHARE = 0.5

# ... or, with little link text (at most ARTICLE_LINK_DENSITY of its text in links), holds more than
# this share of the page's prose (text outside links): the article body wrapped in "rail",
# "content-with-sidebar", "modal-enabled" or "pagination" is still the article, whatever the page's
# menus, footer and comment thread weigh.
ARTICLE_PROSE_SHARE = 0.5
ARTICLE_LINK_DENSITY = 0.5

# A link list sitting in prose is part of that prose (a list of resources in an article body): when
# an ancestor within LINK_LIST_CONTEXT_LEVELS of the list holds at least LINK_LIST_PROSE_FACTOR times
# the list's own text as prose (text outside links), the list is content, not a menu.
LINK_LIST_CONTEXT_LEVELS = 1
LINK_LIST_PROSE_FACTOR = 2.0

# A link list is the nearest ancestor holding at least this many links (fewer is a sentence with two
# links, not a list) ...
LINK_LIST_MIN_LINKS = 3
# ... whose visible text is at least this share link text (prose paragraphs sit far below; menus,
# related-story lists and tag clouds near 1.0). Of 0.7, 0.8 and 0.9, 0.9 lost the least recall on the
# corpus for nearly the same precision (docs/extraction.md).
LINK_LIST_DENSITY = 0.9
# ... found within this many ancestors of the link. On the corpus over 99% of such containers sit
# within 6 levels (li > ul, td > tr > tbody > table); the cap bounds the work on pathological nesting.
LINK_LIST_MAX_LEVELS = 6

# Budgets for the subtree scans behind the layout-wrapper and link-list checks. Each scan walks an
# element's subtree, so a hostile page (tens of thousands of nested elements, each named "sidebar" or
# each holding every later link) would otherwise cost quadratic time. Per page: at most
# SCAN_BUDGET_FACTOR times the page's text (plus SCAN_BUDGET_FLOOR) in characters and links scanned,
# at most MAX_WRAPPER_CHECKS wrapper checks and MAX_LIST_SCANS link-list scans. The corpus peaks at
# 1.4x its text (mercurial), 44 wrapper checks (buzzfeed-1) and 394 list scans (pixnet), so real pages
# never run out; once a budget is spent that check stops (words apply as written, no more link lists)
# and the page still gets an answer.
SCAN_BUDGET_FACTOR = 8
SCAN_BUDGET_FLOOR = 200_000
MAX_WRAPPER_CHECKS = 256
MAX_LIST_SCANS = 2000

# Ids with more words than this are heading slugs, not region names ("site-footer-nav" has 3).
MAX_ID_WORDS = 3

LINK_SELECTOR = "a[href], area[href]"


class Signal(Enum):
    """What one element says about the region it opens."""

    MAIN = "main"  # <main>, role=main: resets to main content
    SECTION = "section"  # article-like sectioning: scopes <header>, marks author-declared content
    NAV = "nav"
    HEADER = "header"
    FOOTER = "footer"
    ASIDE = "aside"
    COMMENTS = "comments"
    SHARE = "share"  # share/follow buttons: aside when found in main content


_ROLE_SIGNALS: dict[str, Signal] = {
    "main": Signal.MAIN,
    "article": Signal.SECTION,
    "navigation": Signal.NAV,
    "menu": Signal.NAV,
    "menubar": Signal.NAV,
    "banner": Signal.HEADER,
    "contentinfo": Signal.FOOTER,
    "complementary": Signal.ASIDE,
    "search": Signal.NAV,  # the search landmark: site furniture, like navigation
    "dialog": Signal.ASIDE,  # pop-ups and modals are outside the editorial body
    "alertdialog": Signal.ASIDE,
    "toolbar": Signal.SHARE,  # like/save/share action bars
    "comment": Signal.COMMENTS,
}

_TAG_SIGNALS: dict[str, Signal] = {
    "main": Signal.MAIN,
    "article": Signal.SECTION,
    "section": Signal.SECTION,
    "nav": Signal.NAV,
    "aside": Signal.ASIDE,
    "header": Signal.HEADER,
    "footer": Signal.FOOTER,
}

# id/class words, matched as whole words after splitting on punctuation and camelCase
# ("siteHeader" -> site, header). Whole words, so "commentary" or "navy" do not match by accident;
# single-token compounds that CMSs use verbatim ("commentlist", "navbox") are listed as words.
_WORD_SIGNALS: dict[str, Signal] = {
    **dict.fromkeys(
        ("comment", "comments", "commentlist", "commentform", "disqus", "replies", "respond"),
        Signal.COMMENTS,
    ),
    **dict.fromkeys(
        (
            "nav",
            "navbar",
            "navbox",
            "navigation",
            "menu",
            "menubar",
            "breadcrumb",
            "breadcrumbs",
            "pagination",
            "pager",
            "skiplinks",
            "dropdown",
            "submenu",
            "megamenu",
            # taxonomy lists: tags and categories navigate the site, they are not the article's links
            "tags",
            "tagcloud",
            "categories",
            "catlinks",
        ),
        Signal.NAV,
    ),
    **dict.fromkeys(("header", "masthead", "topbar"), Signal.HEADER),
    **dict.fromkeys(("footer", "colophon"), Signal.FOOTER),
    **dict.fromkeys(
        (
            "sidebar",
            "aside",
            "widget",
            "widgets",
            "related",
            "rail",
            "promo",
            "recommended",
            "trending",
            "popular",
            "outbrain",
            "taboola",
            "advert",
            "advertisement",
            "sponsor",
            "modal",
            "popup",
            "overlay",
            "lightbox",
            "hovercard",
        ),
        Signal.ASIDE,
    ),
    **dict.fromkeys(("share", "sharing", "social", "sharedaddy", "toolbar"), Signal.SHARE),
}

# Words of embedded posts (tweets, Instagram and TikTok posts, oEmbed blocks): inside an article they
# are quoted content, even when wrapped in an aside or named "social".
_EMBED_WORDS = frozenset(("embed", "embeds", "embedded", "oembed"))
# The markup the platforms' embed codes produce (a blockquote their script turns into an iframe).
_EMBED_SELECTOR = (
    "blockquote.twitter-tweet, blockquote.instagram-media, blockquote.tiktok-embed, "
    "blockquote.reddit-card, blockquote.bluesky-embed, blockquote.threads-post, .twitter-tweet, "
    ".fb-post, .fb-video, iframe[src*='platform.twitter.com/embed'], iframe[src*='instagram.com/p/'], "
    "iframe[src*='facebook.com/plugins/post'], iframe[src*='tiktok.com/embed']"
)
# Words that name an article's body: one of _BODY_OWNER_WORDS with one of _BODY_WORDS in the same
# token ("entry-content", "post-body", "article__text", "storyContent").
_BODY_OWNER_WORDS = frozenset(("article", "entry", "post", "story"))
_BODY_WORDS = frozenset(("body", "content", "text"))

# Words that say "this is the article itself"; a header word next to one of them in the same token
# ("entry-header", "post-header") names the article's header, not the site's.
_ARTICLE_WORDS = frozenset(("article", "entry", "post", "story", "content"))

# When one token holds several region words, the more specific one wins ("widget_recent_comments" is a
# comments list, "header-nav" a menu, "footer-menu" a footer).
_WORD_PRIORITY: dict[Signal, int] = {
    s: i
    for i, s in enumerate(
        (Signal.COMMENTS, Signal.FOOTER, Signal.NAV, Signal.HEADER, Signal.ASIDE, Signal.SHARE)
    )
}

_WORD_RE = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# A cheap pre-check: a token can only name a region if it contains one of the words somewhere.
_ANY_WORD_RE = re.compile("|".join(sorted(_WORD_SIGNALS, key=len, reverse=True)), re.IGNORECASE)

# Elements whose classes describe the whole page, not a region of it.
_PAGE_TAGS = frozenset(("html", "body"))
# Attributes that can carry a signal; an element with none of them and a plain tag is skipped fast.
_SIGNAL_ATTRS = frozenset(("id", "class", "role", "itemprop", "itemtype"))

_REGION_PLACEMENT: dict[Signal, Placement] = {
    Signal.NAV: Placement.NAV,
    Signal.HEADER: Placement.HEADER,
    Signal.FOOTER: Placement.FOOTER,
    Signal.ASIDE: Placement.ASIDE,
    Signal.COMMENTS: Placement.COMMENTS,
    Signal.SHARE: Placement.ASIDE,
}


class _State(NamedTuple):
    """The region an element sits in, and whether an author-declared content section encloses it."""

    placement: Placement
    sectioned: bool
    authored: bool = False  # inside <main>, <article>, role=main/article or itemprop=articleBody


_ROOT_STATE = _State(Placement.MAIN, sectioned=False)


@lru_cache(maxsize=4096)
def _token_signal(token: str) -> tuple[Signal | None, bool]:
    """The region one id/class token names, and whether it also names the article (``entry-header``)."""
    if not _ANY_WORD_RE.search(token):
        return None, False  # most tokens name no region; skip splitting them into words
    words = {w.lower() for w in _WORD_RE.findall(token)}
    if not words.isdisjoint(_EMBED_WORDS):
        return None, False  # "social-embed", "embed-twitter": an embedded post, not a share bar
    best: Signal | None = None
    for word in words:
        signal = _WORD_SIGNALS.get(word)
        if signal is not None and (best is None or _WORD_PRIORITY[signal] < _WORD_PRIORITY[best]):
            best = signal
    return best, best is not None and not words.isdisjoint(_ARTICLE_WORDS)


@lru_cache(maxsize=4096)
def word_signal(value: str) -> tuple[Signal | None, bool]:
    """The region named by the words of an ``id`` or ``class`` value, or ``None``.

    Returns ``(signal, of_article)``; ``of_article`` is true when the naming token also names the
    article (``entry-header``), which scopes a header word like a ``<header>`` inside ``<article>``.
    """
    best: tuple[Signal | None, bool] = (None, False)
    for token in value.split():
        signal, of_article = _token_signal(token)
        if signal is not None and (best[0] is None or _WORD_PRIORITY[signal] < _WORD_PRIORITY[best[0]]):
            best = (signal, of_article)
    return best


@lru_cache(maxsize=4096)
def names_article_body(value: str) -> bool:
    """Whether an ``id`` or ``class`` value names an article's body (``entry-content``,
    ``article-body``, ``post__text``, ``storyContent``)."""
    for token in value.split():
        words = {w.lower() for w in _WORD_RE.findall(token)}
        if not words.isdisjoint(_BODY_OWNER_WORDS) and not words.isdisjoint(_BODY_WORDS):
            return True
    return False


def _is_slug(id_value: str) -> bool:
    """Whether an id is a heading's slug (``sharing-with-a-single-developer``), not a region name:
    documentation generators and Markdown renderers derive ids from headings, so their words are prose.
    """
    return len(_WORD_RE.findall(id_value)) > MAX_ID_WORDS


def _strong_signal(tag: str, attrs: dict[str, str | None]) -> tuple[Signal | None, bool]:
    """The signal of an element's role, microdata or tag, and whether it came from an explicit role."""
    itemprop = (attrs.get("itemprop") or "").lower().split()
    if "comment" in itemprop or (attrs.get("itemtype") or "").lower().endswith("/comment"):
        return Signal.COMMENTS, False
    if "articlebody" in itemprop:
        return Signal.SECTION, False
    roles = (attrs.get("role") or "").lower().split()
    if roles and roles[0] in _ROLE_SIGNALS:
        return _ROLE_SIGNALS[roles[0]], True
    return _TAG_SIGNALS.get(tag), False


def _text_chars(node: LexborNode) -> int:
    """Non-whitespace characters of a node's text (scripts and styles stripped beforehand)."""
    return len("".join(node.text(deep=True).split()))


class PlacementClassifier:
    """Classifies the link elements of one parsed document; one instance per document.

    ``body`` is the document's ``<body>`` with ``<script>`` and ``<style>`` already removed (their text
    would count as page text). ``classify(node)`` returns the :class:`~bot.models.Placement` of a link
    element. States are cached by memory id, so an instance must not outlive its parser.
    """

    def __init__(self, body: LexborNode | None) -> None:
        self._body = body
        self._states: dict[int, _State] = {}
        self._page_chars: int | None = None
        self._scan_budget = 0  # set with _page_chars
        self._wrappers: dict[int, bool] = {}
        self._embeds: dict[int, bool] = {}
        self._prose: dict[int, int] = {}  # element -> its prose chars (0 when link-dense)
        self._page_prose: int | None = None
        self._few_links: set[int] = set()  # elements known to hold < LINK_LIST_MIN_LINKS links
        self._link_lists: dict[int, bool] = {}

    def classify(self, node: LexborNode) -> Placement:
        # The link's own class describes the link ("comments-count", "nav-link"), not where it sits.
        parent = node.parent
        state = self._state(parent) if parent is not None else _ROOT_STATE
        if state.placement is Placement.MAIN and not state.authored and self._in_link_list(node):
            return Placement.NAV
        return state.placement

    # --- the ancestor fold ---------------------------------------------------------------------------

    def _state(self, node: LexborNode) -> _State:
        chain: list[LexborNode] = []
        current: LexborNode | None = node
        state = _ROOT_STATE
        while current is not None and current.is_element_node:
            cached = self._states.get(current.mem_id)
            if cached is not None:
                state = cached
                break
            chain.append(current)
            current = current.parent
        for element in reversed(chain):
            state = self._step(state, element)
            self._states[element.mem_id] = state
        return state

    def _step(self, parent: _State, node: LexborNode) -> _State:
        """The state of ``node`` given its parent's state (see the module docstring for the rules)."""
        if parent.placement is Placement.COMMENTS:
            return parent
        tag = node.tag or ""
        attrs = node.attributes
        if tag not in _TAG_SIGNALS and _SIGNAL_ATTRS.isdisjoint(attrs):
            return parent
        in_main = parent.placement is Placement.MAIN
        strong, explicit_role = _strong_signal(tag, attrs)

        if strong is Signal.MAIN:
            return _State(Placement.MAIN, sectioned=True, authored=True)
        outer_sectioned = parent.sectioned
        if strong is Signal.SECTION:
            # Sectioning says nothing about the region by itself; its words still may
            # (<section id="comments">, <article class="comment">, <section class="related">).
            authored = parent.authored or (in_main and tag != "section")
            parent = _State(parent.placement, parent.sectioned or in_main, authored)
        elif strong is Signal.COMMENTS:
            return _State(Placement.COMMENTS, parent.sectioned, parent.authored)
        elif strong is Signal.HEADER:
            if in_main and (explicit_role or not parent.sectioned):
                return _State(Placement.HEADER, parent.sectioned, parent.authored)
            return parent
        elif strong is Signal.NAV:
            if in_main or parent.placement is Placement.HEADER:
                return _State(Placement.NAV, parent.sectioned, parent.authored)
            return parent
        elif strong is not None:  # FOOTER, ASIDE
            if not in_main:
                return parent
            if strong is Signal.ASIDE and parent.authored and self._holds_embed(node):
                return parent  # an embedded post quoted in the article
            return _State(_REGION_PLACEMENT[strong], parent.sectioned, parent.authored)

        if not in_main or tag in _PAGE_TAGS:
            return parent
        if (
            not parent.authored
            and any(names_article_body(attrs.get(name) or "") for name in ("class", "id"))
            and self._prose_chars(node) > 0
        ):
            # "entry-content", "article-body" holding prose: the author's content, as <article> is
            # (a link-dense box named so is a widget of teasers).
            parent = _State(parent.placement, parent.sectioned, authored=True)
        signal, of_article = self._words(attrs)
        if signal is None or (signal is Signal.HEADER and (outer_sectioned or of_article)):
            return parent
        # Comment threads often hold more text than the article, so only other words get the check.
        if signal is not Signal.COMMENTS and self._is_wrapper(node):
            return parent
        if signal in (Signal.ASIDE, Signal.SHARE) and parent.authored and self._holds_embed(node):
            return parent
        return _State(_REGION_PLACEMENT[signal], parent.sectioned, parent.authored)

    @staticmethod
    def _words(attrs: dict[str, str | None]) -> tuple[Signal | None, bool]:
        best: tuple[Signal | None, bool] = (None, False)
        for name in ("id", "class"):
            value = attrs.get(name)
            if value:
                found = word_signal(value)
                if (
                    found[0] is not None
                    and not (name == "id" and _is_slug(value))
                    and (best[0] is None or _WORD_PRIORITY[found[0]] < _WORD_PRIORITY[best[0]])
                ):
                    best = found
        return best

    def _page_text_chars(self) -> int:
        if self._page_chars is None:
            self._page_chars = _text_chars(self._body) if self._body is not None else 0
            self._scan_budget = SCAN_BUDGET_FACTOR * self._page_chars + SCAN_BUDGET_FLOOR
        return self._page_chars

    def _page_prose_chars(self) -> int:
        """Non-whitespace characters of the page's text outside links (computed on first use)."""
        if self._page_prose is None:
            page_chars = self._page_text_chars()
            self._page_prose = max(0, page_chars - self._link_chars(self._body)) if self._body else 0
        return self._page_prose

    def _link_chars(self, node: LexborNode) -> int:
        """Text characters inside the links of ``node``, charged to the scan budget (SVG links nest, so
        the sum can exceed the node's text; it stops once the budget is spent)."""
        links = node.css(LINK_SELECTOR)
        self._scan_budget -= len(links)
        total = 0
        for link in links:
            if self._scan_budget <= 0:
                break
            chars = _text_chars(link)
            self._scan_budget -= chars
            total += chars
        return total

    def _is_wrapper(self, node: LexborNode) -> bool:
        """Whether an element named after a region holds the page's main text: more than
        WRAPPER_TEXT_SHARE of all its text, or (with little link text) more than ARTICLE_PROSE_SHARE of
        its prose."""
        key = node.mem_id
        cached = self._wrappers.get(key)
        if cached is None:
            page_chars = self._page_text_chars()
            if self._scan_budget <= 0 or len(self._wrappers) >= MAX_WRAPPER_CHECKS:
                return False
            chars = _text_chars(node)
            self._scan_budget -= chars
            cached = chars > WRAPPER_TEXT_SHARE * page_chars
            if not cached and chars:
                page_prose = self._page_prose_chars()
                link_chars = self._link_chars(node)
                cached = (
                    link_chars <= ARTICLE_LINK_DENSITY * chars
                    and chars - link_chars > ARTICLE_PROSE_SHARE * page_prose
                )
            self._wrappers[key] = cached
        return cached

    def _holds_embed(self, node: LexborNode) -> bool:
        """Whether an element holds an embedded post (the markup of Twitter/X, Instagram, TikTok,
        Facebook, Reddit, Bluesky or Threads embed codes). Counted with the wrapper checks, as it scans
        the subtree."""
        key = node.mem_id
        cached = self._embeds.get(key)
        if cached is None:
            if len(self._wrappers) + len(self._embeds) >= MAX_WRAPPER_CHECKS:
                return False
            cached = node.css_first(_EMBED_SELECTOR) is not None
            self._embeds[key] = cached
        return cached

    # --- link lists ----------------------------------------------------------------------------------

    def _in_link_list(self, link: LexborNode) -> bool:
        """Whether the nearest ancestor with >= LINK_LIST_MIN_LINKS links is mostly link text.

        Looks at most LINK_LIST_MAX_LEVELS ancestors up, so a link buried under thousands of wrappers
        costs a bounded number of subtree scans."""
        current = link.parent
        for _ in range(LINK_LIST_MAX_LEVELS):
            if current is None or not current.is_element_node or current.tag in _PAGE_TAGS:
                return False
            key = current.mem_id
            verdict = self._link_lists.get(key)
            if verdict is not None:
                return verdict
            if key not in self._few_links:
                self._page_text_chars()
                scans = len(self._link_lists) + len(self._few_links)
                if self._scan_budget <= 0 or scans >= MAX_LIST_SCANS:
                    return False
                links = current.css(LINK_SELECTOR)
                self._scan_budget -= len(links)
                if len(links) >= LINK_LIST_MIN_LINKS:
                    total = _text_chars(current)
                    self._scan_budget -= total
                    link_chars = 0
                    for a in links:
                        # SVG links nest, so the links' texts can add up to far more than the
                        # container's: each one is charged to the budget.
                        if self._scan_budget <= 0:
                            return False
                        chars = _text_chars(a)
                        self._scan_budget -= chars
                        link_chars += chars
                    verdict = (
                        total > 0
                        and link_chars >= LINK_LIST_DENSITY * total
                        and not self._in_prose(current, total)
                    )
                    self._link_lists[key] = verdict
                    return verdict
                self._few_links.add(key)
            current = current.parent
        return False

    def _in_prose(self, container: LexborNode, list_chars: int) -> bool:
        """Whether a link list sits in prose: an ancestor within LINK_LIST_CONTEXT_LEVELS holds, outside
        links, at least LINK_LIST_PROSE_FACTOR times the list's text, with at most
        ARTICLE_LINK_DENSITY of its own text in links (an article body around a list of resources,
        not a menu bar or a sidebar of headlines)."""
        current = container.parent
        for _ in range(LINK_LIST_CONTEXT_LEVELS):
            if current is None or not current.is_element_node or current.tag in _PAGE_TAGS:
                return False
            if self._prose_chars(current) >= LINK_LIST_PROSE_FACTOR * list_chars:
                return True
            current = current.parent
        return False

    def _prose_chars(self, node: LexborNode) -> int:
        """An element's text outside links, or 0 when more than ARTICLE_LINK_DENSITY of its text is in
        links (or the scan budget is spent)."""
        key = node.mem_id
        prose = self._prose.get(key)
        if prose is None:
            self._page_text_chars()
            if self._scan_budget <= 0:
                return 0
            chars = _text_chars(node)
            self._scan_budget -= chars
            link_chars = self._link_chars(node)
            prose = chars - link_chars if link_chars <= ARTICLE_LINK_DENSITY * chars else 0
            self._prose[key] = prose
        return prose
