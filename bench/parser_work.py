"""Parser work: what the nesting guard (``bot/linkcheck/nesting.py``) costs and what it bounds.

    python bench/parser_work.py            # hostile pages, then the corpus split
    python bench/parser_work.py --hostile  # only the hostile pages

For each hand-made page (real-page shapes and hostile markup): its size, the guard's CPU time, lexbor's
CPU time on what the guard lets through, and whether the page was read whole or cut (and where). Then,
over the 78 pages of ``../shared/corpus/readability``: total CPU time of ``extract_page``, of the guard
and of lexbor's parse alone (best of 5). CPU time of this process (``time.process_time``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from bot.linkcheck.extract import extract_page
from bot.linkcheck.nesting import nesting_cut

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "readability"
PAGE_URL = "http://fakehost/test/page.html"
REPEATS = 5

_FILLER = "<p>Some text in a paragraph with a <a href=/x>link</a>.</p>"

PAGES: dict[str, str] = {
    "126 kB, 4,000 unclosed div": "<html><body>"
    + "".join(f"<div>Text <a href=/{i}>{i}</a>" for i in range(4000)),
    "3,000 unclosed div + paragraphs": ("<div>" + _FILLER) * 3000,
    "100,000 <b>": "<b>" * 100_000 + "<p>x</p>" * 100,
    "100,000 <span>": "<span>" * 100_000,
    "50,000 <p> in a button": "<button>" + "<p>x" * 50_000,
    "20,000 nested tables": "<table><tr><td>" * 20_000,
    "old tables, unclosed cells": "<table>" + "<tr><td><font face=arial>x<td><font face=arial>y" * 20_000,
    "50,000 unclosed <li>": "<ul>" + "<li><a href=/x>x</a>" * 50_000,
    "10,000 unclosed div + paragraphs": ("<div>" + _FILLER) * 10_000,
    "100,000 nested div": "<div>" * 100_000,
    "20,000 span + 20,000 </x>": "<span>" * 20_000 + "</x>" * 20_000,
    "20,000 div + 20,000 </p>": "<div>" * 20_000 + "</p>" * 20_000,
    "20,000 span + 20,000 <li>": "<span>" * 20_000 + "<li>" * 20_000,
    "20,000 span + 20,000 <h1>": "<span>" * 20_000 + "<h1>x</h1>" * 20_000,
    "20,000 span + 20,000 <button>": "<span>" * 20_000 + "<button>x</button>" * 20_000,
    "50,000 options in a select": "<select>" + "<option>x" * 50_000,
    "50,000 distinct <b id>": "".join(f"<b id={i}>" for i in range(50_000)),
    "1,000 <b id> re-opened 1,000 times": "<p>"
    + "".join(f"<b id={i}>" for i in range(1_000))
    + "</p>"
    + "<p>x</p>" * 1_000,
    "svg: 20,000 <g> + 20,000 </x>": "<svg>" + "<g>" * 20_000 + "</x>" * 20_000,
    "<x><div></x> x 20,000": "<x><div></x>" * 20_000,
}


def _cpu(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def hostile() -> None:
    print(f"{'page':38} {'size':>8} {'guard':>9} {'parse':>9}  read")
    for name, html in PAGES.items():
        started = time.process_time()
        cut = nesting_cut(html)
        guard = time.process_time() - started
        kept = html if cut is None else html[:cut]
        parse = _cpu(lambda kept=kept: LexborHTMLParser(kept))
        read = "whole" if cut is None else f"cut at {cut / len(html):.0%}"
        print(f"{name:38} {len(html) / 1000:6.0f}kB {guard * 1000:7.1f}ms {parse * 1000:7.1f}ms  {read}")


def _best(call: Callable[[Any], object], items: Iterable[Any]) -> float:
    listed = list(items)
    best = float("inf")
    for _ in range(REPEATS):
        best = min(best, _cpu(lambda: [call(item) for item in listed]))
    return best


def corpus() -> None:
    if not CORPUS.is_dir():
        print(f"no corpus at {CORPUS}", file=sys.stderr)
        return
    bodies = [p.read_bytes() for p in sorted(CORPUS.glob("*/source.html"))]
    texts = [b.decode("utf-8", "replace") for b in bodies]
    print(f"corpus, {len(bodies)} pages, best of {REPEATS}:")
    print(f"  extract_page   {_best(lambda b: extract_page(b, PAGE_URL), bodies) * 1000:6.0f} ms")
    print(f"  nesting guard  {_best(nesting_cut, texts) * 1000:6.0f} ms")
    print(f"  lexbor parse   {_best(LexborHTMLParser, texts) * 1000:6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hostile", action="store_true", help="only the hand-made pages")
    args = parser.parse_args()
    hostile()
    if not args.hostile:
        corpus()


if __name__ == "__main__":
    main()
