"""CPU time of the URL work of one check: extract (href resolution included), resolve and filter, on one
page of 10,000 links in a realistic mix of spellings (relative, absolute, protocol-relative, fragment,
raw Unicode paths, IDN hosts, mailto). No network.

Run: ``python bench/url_stages.py`` (PYTHONPATH at the tree to measure). Prints the best of
:data:`ROUNDS` rounds per stage; memos (the parsed-URL cache, the address policy's) are fresh each
round, so the figures are for a page seen the first time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import bot.urls as urls
from bot.linkcheck.extract import extract_page
from bot.linkcheck.pipeline import LinkFilter, LinkResolver
from bot.net.policy import AddressPolicy

LINKS = 10_000
ROUNDS = 7
PAGE_URL = "https://site.example/blog/post.html"
SPELLINGS: tuple[Callable[[int], str], ...] = (
    lambda i: f"/p/{i}",
    lambda i: f"https://other{i % 300}.example/a/{i}?utm_source=x&amp;id={i}",
    lambda i: f"../up/{i}/",
    lambda i: f"#s{i}",
    lambda i: f"//cdn{i % 50}.example/x{i}.js",
    lambda i: f"/caf\u00e9/{i}",
    lambda i: f"https://b\u00fccher{i % 20}.example/{i}",
    lambda i: f"mailto:a{i}@example.com",
)


def page(links: int = LINKS, seed: int = 7) -> str:
    rng = random.Random(seed)
    anchors = "".join(f'<a href="{rng.choice(SPELLINGS)(i)}">link {i}</a>' for i in range(links))
    return f"<main>{anchors}</main>"


def main() -> None:
    html = page()
    best = {"extract": float("inf"), "resolve": float("inf"), "filter": float("inf")}
    for _ in range(ROUNDS):
        clear = getattr(urls, "parse_web_url", None)
        if clear is not None:
            clear.cache_clear()
        started = time.process_time()
        extracted = extract_page(html, PAGE_URL)
        extracted_at = time.process_time()
        resolved = LinkResolver().resolve(PAGE_URL, extracted.links)
        resolved_at = time.process_time()
        LinkFilter(AddressPolicy()).apply(resolved)
        filtered_at = time.process_time()
        for stage, seconds in (
            ("extract", extracted_at - started),
            ("resolve", resolved_at - extracted_at),
            ("filter", filtered_at - resolved_at),
        ):
            best[stage] = min(best[stage], seconds)
    cells = "  ".join(f"{stage} {seconds * 1000:.1f} ms" for stage, seconds in best.items())
    print(f"{LINKS:,} links, CPU, best of {ROUNDS}: {cells}  total {sum(best.values()) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
