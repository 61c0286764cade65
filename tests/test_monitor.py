"""Rechecks across simulated days against local sites whose pages change between checks."""

from __future__ import annotations

import pytest

from bot.backlinks.changes import CHANGES_TABLE, Change, ChangeKind
from bot.engine import Engine
from tests.support.clock import Clock
from tests.support.site import LocalSite

# The product on both store backends: the embedded file and PostgreSQL.
pytestmark = pytest.mark.backends("tinydb", "postgres")


def linking_page(target: str, *, rel: str = "", head: str = "") -> str:
    rel_attr = f' rel="{rel}"' if rel else ""
    return (
        f'<html><head>{head}</head><body><main><a href="{target}"{rel_attr}>Our kit</a></main></body></html>'
    )


def kinds(changes: tuple[Change, ...] | list[Change], path_of: dict[str, str]) -> set[tuple[str, str, str]]:
    return {(c.kind.value, path_of[c.source_url], c.reason) for c in changes}


async def test_a_week_of_changes_is_logged_once_and_flaps_are_not_losses(
    engine: Engine, site: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    target = site.url("/product")
    site.html("/product", "<p>our kit</p>")
    paths = ["/stays", "/removed", "/nofollowed", "/flaps", "/noindexed", "/walled"]
    for path in paths:
        partner.html(path, linking_page(target))
        assert await engine.track(partner.url(path), target)
    path_of = {partner.url(p): p for p in paths}

    day0 = await engine.monitor.recheck()
    assert kinds(day0.changes, path_of) == {("new", p, "link_present") for p in paths}
    assert day0.snapshot["live_links"] == 6 and day0.snapshot["referring_domains"] == ["127.0.0.2"]

    clock.advance(1)
    partner.html("/removed", "<html><body><main>gone</main></body></html>")
    partner.html("/nofollowed", linking_page(target, rel="nofollow"))
    partner.status("/flaps", 404)
    partner.html("/noindexed", linking_page(target, head='<meta name="robots" content="noindex">'))
    partner.status("/walled", 403, headers={"cf-mitigated": "challenge"})
    day1 = await engine.monitor.recheck()
    # Only the rel change is a fact on its own; the failures are suspected, not yet lost.
    assert kinds(day1.changes, path_of) == {("rel_changed", "/nofollowed", "rel")}
    assert day1.verdicts == {"live": 2, "lost": 3, "unknown": 1}

    clock.advance(1)
    partner.html("/flaps", linking_page(target))  # back after one bad day
    day2 = await engine.monitor.recheck()
    assert kinds(day2.changes, path_of) == {
        ("lost", "/removed", "link_removed"),
        ("lost", "/noindexed", "noindex"),
    }
    assert day2.snapshot["live_links"] == 4  # stays, nofollowed, flaps, walled (unknown is not a loss)

    clock.advance(1)
    partner.html("/removed", linking_page(target))
    day3 = await engine.monitor.recheck()
    assert kinds(day3.changes, path_of) == {("restored", "/removed", "link_present")}

    logged = [Change.from_doc(doc) for doc in await engine.store.find(CHANGES_TABLE)]
    assert len(logged) == len(day0.changes) + len(day1.changes) + len(day2.changes) + len(day3.changes)
    assert not any(
        c.kind is ChangeKind.LOST and path_of[c.source_url] in ("/flaps", "/walled") for c in logged
    )
    tracked = {path_of[b.source_url]: b for b in await engine.tracked()}
    assert tracked["/walled"].last_verdict == "unknown"
    assert [s["week"] for s in await engine.monitor.snapshots()] == ["2026-W45"]


async def test_a_loss_needs_two_checks_hours_apart(
    engine: Engine, site: LocalSite, partner: LocalSite, clock: Clock
) -> None:
    target = site.url("/product")
    partner.html("/p", linking_page(target))
    await engine.track(partner.url("/p"), target)
    await engine.monitor.recheck()
    partner.html("/p", "<html><body>no link</body></html>")
    clock.advance(hours=1)
    assert (await engine.monitor.recheck()).changes == ()
    clock.advance(hours=2)  # a second failing check, but only 2 h after the first
    assert (await engine.monitor.recheck()).changes == ()
    clock.advance(hours=18)
    [lost] = (await engine.monitor.recheck()).changes
    assert (lost.kind, lost.reason, lost.referring_domain) == (ChangeKind.LOST, "link_removed", "127.0.0.2")
