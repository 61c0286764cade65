"""A bound on the HTML tree builder's work, estimated before parsing: :func:`nesting_cut`.

lexbor builds the tree the way the HTML Living Standard says ("tree construction"), and several of the
standard's steps walk the *stack of open elements* or the *list of active formatting elements*. On a
real page both stay short (a few dozen entries), so parsing is linear; a page that opens thousands of
elements and never closes them makes every such step a long walk, and the parse quadratic. Measured on
the 2-core development machine (``python bench/parser_work.py``; docs/extraction.md, "Parser work"):

- 14,142 nested ``<div>`` (71 kB) take 0.26 s, 40,000 take 1.6 s (each block start tag looks for a
  ``<p>`` to close: "has a p element in button scope");
- 20,000 open ``<span>`` followed by 20,000 stray end tags (``</x>``, ``</p>``, ``</div>``) 1.0-1.2 s
  (each end tag looks for its element);
- 20,000 ``<option>`` in one ``<select>`` 1.1 s (lexbor re-runs option bookkeeping per insertion);
- 20,000 distinct open ``<b id=...>`` 1.5 s (the "Noah's Ark" check compares each new formatting
  element with the list), and 1,000 of them re-opened in each of 1,000 paragraphs 1.0 s at 18 kB
  ("reconstruct the active formatting elements" re-creates them every time).

Open ``<span>``, ``<b>`` with the same attributes, ``<a>``, ``<p>`` in buttons and nested tables cost
nothing special (100,000 of them parse in about 10 ms), so they are not charged.

:func:`nesting_cut` replays the page's tags through a small model of those structures (a stack of open
element names with the standard's implied closes and scopes; formatting entries per marker level with
the Noah's Ark cap; the options of the current select) and adds up the steps those walks take, in
units of one stack-walk step (about 2.5 ns of lexbor time). Where the model is unsure whether the
parser pops an element, it keeps it open, so the estimate errs high. Past :data:`MAX_NESTING_WORK` the
page is cut before the tag that crosses it. The model itself costs well under the parse it guards: a
Python step per tag, and its own bookkeeping is charged at the same or a higher rate than the work it
stands for.
"""

from __future__ import annotations

import functools
import re

# Work budget in stack-walk steps: 60 million, at most about 0.2 s of lexbor time on the 2-core
# development machine for every hostile page measured (docs/extraction.md, "Parser work"). The most
# demanding of the 78 corpus pages needs 0.17% of it (mozilla-1, 104,107 steps); a 126 kB page with
# 4,000 unclosed <div>s around its content 13%.
MAX_NESTING_WORK = 60_000_000

# Relative costs, measured against one stack-walk step (docs/extraction.md, "Parser work"):
# an <option> inserted into a <select> with n options already: n * OPTION_STEP_WEIGHT steps;
OPTION_STEP_WEIGHT = 3
# a formatting start tag with n entries in the list of active formatting elements: n * this;
FORMATTING_STEP_WEIGHT = 3
# a walk inside SVG or MathML (lexbor compares namespaced names there): twice a walk in HTML;
FOREIGN_STEP_WEIGHT = 2
# a formatting element re-created by "reconstruct the active formatting elements" (a new element with
# its attributes, about 1 µs).
RECONSTRUCT_WEIGHT = 400

# Tags are read from ASCII-lower-cased UTF-8 bytes. An attribute value in quotes may hold "<" and ">"
# (the tokenizer's "attribute value (double-quoted) state"), so quoted values are consumed whole; every
# repetition consumes at least one byte, quantifiers are possessive and the match never fails, so the
# scan is linear.
_TOKEN_RE = re.compile(
    rb"<(?:(!--)|[!?]|(/?)([a-z][^\t\n\f\r />]*+)"
    rb"((?:[\t\n\f\r /]++|[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rb"""(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"[^"]*+"|'[^']*+'|[^\t\n\f\r >]*+))?+)*+)>?)"""
)

# HTML Living Standard, "in body" insertion mode: start tags that first close an open <p> ("has a p
# element in button scope"), which walks the stack; and other start tags with a scope check.
_WALKING_START_TAGS = frozenset(
    b"address article aside blockquote center details dialog dir div dl fieldset figcaption figure "
    b"footer header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 h6 pre listing "
    b"form li dd dt plaintext button table hr xmp nobr rb rtc rp rt".split()
)
_CLOSES_P = _WALKING_START_TAGS - frozenset(b"li dd dt button nobr rb rtc rp rt".split())
_HEADINGS = frozenset(b"h1 h2 h3 h4 h5 h6".split())
# Elements with no end tag (never pushed).
_VOID = frozenset(
    b"area base basefont bgsound br col embed frame hr img image input keygen link meta param source "
    b"track wbr".split()
)
# Raw text and RCDATA elements: their content holds no tags (outside SVG and MathML).
_RAW_TEXT = frozenset(b"script style textarea title xmp iframe noembed noframes".split())
# The standard's "special" category: an end tag for a non-special element stops looking at them.
_SPECIAL = frozenset(
    b"address applet area article aside base basefont bgsound blockquote body br button caption center "
    b"col colgroup dd details dir div dl dt embed fieldset figcaption figure footer form frame "
    b"frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html iframe img input keygen li link listing "
    b"main marquee menu meta nav noembed noframes noscript object ol p param plaintext pre script "
    b"search section select source style summary table tbody td template textarea tfoot th thead "
    b"title tr track ul wbr xmp mi mo mn ms mtext annotation-xml foreignobject desc".split()
)
# "Has a p element in button scope" stops at these (the default scope's boundaries and button).
_BUTTON_SCOPE = frozenset(
    b"applet caption html table td th marquee object template button "
    b"mi mo mn ms mtext annotation-xml foreignobject desc title".split()
)
# Scope boundaries for the model's pops ("has an element in scope"), widened with list-item and
# button scope (ol, ul, button): more boundaries means fewer modelled pops, so the estimate errs high.
_BOUNDARY = frozenset(
    b"applet caption html table td th marquee object template ol ul button "
    b"mi mo mn ms mtext annotation-xml foreignobject desc title".split()
)
# Elements that put a marker on the list of active formatting elements (entries before it are out of
# reach until the element closes).
_MARKERS = frozenset(b"applet object marquee template td th caption".split())
_FORMATTING = frozenset(b"a b big code em font i nobr s small strike strong tt u".split())
_FOREIGN_ROOTS = frozenset((b"svg", b"math"))
_CELLS = (b"td", b"th")
_ROW_GROUPS = (b"tbody", b"thead", b"tfoot")
# Noah's Ark: at most this many identical entries after the last marker.
_NOAH_LIMIT = 3
# A re-opened formatting element in the model (its name no longer matters, only that it is one).
_REOPENED = b"#formatting"
# Names whose pop does more than the stack bookkeeping, and start tags that need the general code.
_POP_EFFECTS = _MARKERS | _FOREIGN_ROOTS
_SLOW_START = (
    _WALKING_START_TAGS
    | _RAW_TEXT
    | _POP_EFFECTS
    | frozenset(b"a option optgroup select tr tbody thead tfoot plaintext".split())
)


class _Level:
    """Formatting entries after one marker: their count, Noah's Ark counts, and how many were popped
    off the stack without their end tag (those are re-created at the next text or start tag)."""

    __slots__ = ("entries", "identical", "stale")

    def __init__(self) -> None:
        self.entries = 0
        self.identical: dict[bytes, int] = {}
        self.stale = 0


class _TreeModel:
    """The parts of the tree builder's state whose walks cost time (see the module docstring)."""

    def __init__(self) -> None:
        self.names: list[bytes] = []
        self.open_at: dict[bytes, list[int]] = {}
        self.special_at: list[int] = []  # per stack entry: index of the nearest special element at/below
        self.boundary_at: list[int] = []  # per stack entry: index of the nearest scope boundary at/below
        self.scope_at: list[int] = []  # per stack entry: index of the nearest button-scope boundary
        self.levels = [_Level()]
        self.foreign = 0  # open <svg>/<math> elements
        self.options = 0  # options inserted into the current <select>

    def push(self, name: bytes) -> None:
        index = len(self.names)
        below_special = self.special_at[-1] if index else -1
        below_boundary = self.boundary_at[-1] if index else -1
        below_scope = self.scope_at[-1] if index else -1
        self.names.append(name)
        self.open_at.setdefault(name, []).append(index)
        self.special_at.append(index if name in _SPECIAL else below_special)
        self.boundary_at.append(index if name in _BOUNDARY else below_boundary)
        self.scope_at.append(index if name in _BUTTON_SCOPE else below_scope)
        if name in _MARKERS:
            self.levels.append(_Level())
        elif name in _FOREIGN_ROOTS:
            self.foreign += 1
        elif name == b"select":
            self.options = 0

    def pop_to(self, index: int, *, ended: bytes = b"") -> None:
        """Pop entries down to (and including) ``index``; ``ended`` is the end tag that closed the
        entry at ``index`` (a formatting element closed by its own end tag leaves no stale entry)."""
        names = self.names
        while len(names) > index:
            name = names.pop()
            self.open_at[name].pop()
            self.special_at.pop()
            self.boundary_at.pop()
            self.scope_at.pop()
            if name in _MARKERS:
                if len(self.levels) > 1:
                    self.levels.pop()
            elif name in _FOREIGN_ROOTS:
                self.foreign -= 1
            elif (name in _FORMATTING or name == _REOPENED) and not (len(names) == index and name == ended):
                self.levels[-1].stale += 1

    def nearest(self, name: bytes) -> int:
        found = self.open_at.get(name)
        return found[-1] if found else -1

    def closable(self, index: int, *, special: bool) -> bool:
        """Whether the parser pops to ``index``: no scope boundary (for a special element) or no
        special element (for any other) sits above it."""
        if index < 0:
            return False
        guard = self.boundary_at if special else self.special_at
        return guard[-1] <= index

    def close(self, name: bytes) -> None:
        """The implied close of an open element of that name, if the model is sure the parser does it."""
        index = self.nearest(name)
        if self.closable(index, special=name in _SPECIAL):
            self.pop_to(index)


def nesting_cut(text: str) -> int | None:
    """Where to cut ``text`` so the HTML tree builder's work, estimated from its tags, stays within
    :data:`MAX_NESTING_WORK` stack-walk steps, or ``None`` (no cut).

    The work is estimated by replaying the tags through a model of the stack of open elements, the
    list of active formatting elements and the current select (HTML Living Standard, "Tree
    construction"; see the module docstring for what is charged and the measurements behind it). The
    cut falls before the tag whose work crosses the budget, so the text before it parses as it would
    whole. Real pages stay far below the budget; O(n) in the length of ``text``.
    """
    if text.count("<") < 64:
        return None  # too few tags for any walk to matter
    # ASCII case folding on UTF-8 bytes keeps offsets and is several times faster than str.lower();
    # mixed-case tags (<DiV>) are read like lower-case ones, so the guard cannot be sidestepped that way.
    folded = text.encode("utf-8", "surrogatepass").lower()
    model = _TreeModel()
    names, open_at, special_at = model.names, model.open_at, model.special_at
    boundary_at, scope_at = model.boundary_at, model.scope_at
    levels = model.levels
    work = 0
    skip_to = 0  # end of a comment or raw text element: tags before it are text
    for match in _TOKEN_RE.finditer(folded):
        start = match.start()
        if start < skip_to:
            continue
        comment, slash, name, attrs = match.groups()
        if name is None:
            if comment:
                end = folded.find(b"-->", match.end())
                if end < 0:
                    return None  # the rest of the page is a comment
                skip_to = end + 3
            continue  # <!doctype>, <?...>: bogus comments up to ">"
        # The commonest tokens on real pages take fast paths with the same effect as the general code:
        # an end tag closing the current node, a void element, a start tag that only opens an element,
        # and a formatting element (<a>, <b>, ...) with no stale entries to reconstruct.
        if slash:
            if names and names[-1] == name and name not in _POP_EFFECTS:
                names.pop()
                open_at[name].pop()
                special_at.pop()
                boundary_at.pop()
                scope_at.pop()
                work += 1
                if name in _FORMATTING:
                    level = levels[-1]
                    level.entries = max(0, level.entries - 1)
                continue
            work += _end_tag(model, name)
        elif (
            not levels[-1].stale
            and not model.foreign
            and (name not in _SLOW_START or (name == b"a" and not open_at.get(b"a")))
        ):
            if name in _VOID:
                continue
            if name in _FORMATTING:
                level = levels[-1]
                work += FORMATTING_STEP_WEIGHT * level.entries
                key = name + attrs
                seen = level.identical.get(key, 0)
                if seen < _NOAH_LIMIT:
                    level.identical[key] = seen + 1
                    level.entries += 1
                if work > MAX_NESTING_WORK:
                    return len(folded[:start].decode("utf-8", "surrogatepass"))
            index = len(names)
            names.append(name)
            open_at.setdefault(name, []).append(index)
            special_at.append(index if name in _SPECIAL else special_at[-1] if index else -1)
            boundary_at.append(index if name in _BOUNDARY else boundary_at[-1] if index else -1)
            scope_at.append(index if name in _BUTTON_SCOPE else scope_at[-1] if index else -1)
            continue
        else:
            work += _start_tag(model, name, attrs)
            if name in _RAW_TEXT and not model.foreign:
                end_tag = _raw_text_end(name).search(folded, match.end())
                if end_tag is None:
                    return None  # the rest of the page is text
                skip_to = end_tag.start()
            elif name == b"plaintext":
                return None
        if work > MAX_NESTING_WORK:
            return len(folded[:start].decode("utf-8", "surrogatepass"))
    return None


@functools.cache
def _raw_text_end(name: bytes) -> re.Pattern[bytes]:
    """The end tag that ends a raw text element's content (tokenizer: "appropriate end tag token")."""
    return re.compile(b"</" + re.escape(name) + rb"[\t\n\f\r />]")


def _start_tag(model: _TreeModel, name: bytes, attrs: bytes) -> int:
    """Apply one start tag to the model; returns the work it costs."""
    # Block start tags do not reconstruct, but the text they hold does: there the re-created elements
    # go inside the new element, which matters when it closes again (<p>x</p> after many open <b>s).
    block = name in _WALKING_START_TAGS
    work = 0 if block else _reconstruct(model)
    if block:
        if name in _CLOSES_P:
            # The walk for a <p> to close stops at the nearest button-scope boundary (a table cell).
            work += len(model.names) - 1 - (model.scope_at[-1] if model.names else -1)
            model.close(b"p")
        else:
            work += len(model.names)
        if name == b"li":
            model.close(b"li")
        elif name in (b"dd", b"dt"):
            model.close(b"dd")
            model.close(b"dt")
        elif name in _HEADINGS and model.names and model.names[-1] in _HEADINGS:
            model.pop_to(len(model.names) - 1)
    elif name in (b"option", b"optgroup"):
        if model.names and model.names[-1] == b"option":
            model.pop_to(len(model.names) - 1)
        if model.nearest(b"select") >= 0:
            work += OPTION_STEP_WEIGHT * model.options
            model.options += 1
    elif name in _CELLS or name == b"tr" or name in _ROW_GROUPS:
        _close_table_parts(model, rows=name != b"td" and name != b"th", groups=name in _ROW_GROUPS)
    elif name == b"a":
        # An open <a> is closed by the next one (the adoption agency runs as for "</a>").
        index = model.nearest(b"a")
        if model.closable(index, special=False):
            model.pop_to(index, ended=b"a")
            _ended_formatting(model, b"a")
    if name in _FORMATTING:
        level = model.levels[-1]
        work += FORMATTING_STEP_WEIGHT * level.entries
        key = name + attrs
        if level.identical.get(key, 0) < _NOAH_LIMIT:
            level.identical[key] = level.identical.get(key, 0) + 1
            level.entries += 1
    if not (name in _VOID or (model.foreign and attrs.endswith(b"/"))):
        model.push(name)  # void and (in SVG and MathML) self-closing elements do not stay open
    return work + _reconstruct(model) if block else work


def _reconstruct(model: _TreeModel) -> int:
    """ "Reconstruct the active formatting elements" (runs before text and most start tags): the
    entries popped without their end tag are created again as the current node's descendants."""
    level = model.levels[-1]
    stale = level.stale
    if not stale:
        return 0
    for _ in range(stale):
        model.push(_REOPENED)
    level.stale = 0
    return RECONSTRUCT_WEIGHT * stale


def _end_tag(model: _TreeModel, name: bytes) -> int:
    """Apply one end tag to the model; returns the work it costs (the walk to its element)."""
    names = model.names
    depth = len(names)
    if depth and names[-1] == name:
        model.pop_to(depth - 1, ended=name)
        _ended_formatting(model, name)
        return 1
    if name in (b"body", b"html", b"br"):
        return depth  # never pops: </body> and </html> only change the insertion mode, </br> is <br>
    if name == b"table" or name in _ROW_GROUPS or name == b"tr":
        _close_table_parts(model, rows=name != b"tr", groups=name == b"table")
    index = model.nearest(name)
    weight = FOREIGN_STEP_WEIGHT if model.foreign else 1
    if model.closable(index, special=name in _SPECIAL):
        model.pop_to(index, ended=name)
        _ended_formatting(model, name)
        return weight * (depth - index)
    return weight * depth


def _ended_formatting(model: _TreeModel, name: bytes) -> None:
    if name in _FORMATTING:
        level = model.levels[-1]
        level.entries = max(0, level.entries - 1)


def _close_table_parts(model: _TreeModel, *, rows: bool, groups: bool) -> None:
    """The implied closes of table parts ("close the cell", "clear the stack back to a table row
    context"): a new cell closes the open cell; a new row also the open row; a new row group or the
    table's end tag also the open row group."""
    for cell in _CELLS:
        model.close(cell)
    if rows:
        model.close(b"tr")
    if groups:
        for group in _ROW_GROUPS:
            model.close(group)


__all__ = ["MAX_NESTING_WORK", "nesting_cut"]
