"""The package map of docs/architecture.md holds: no import cycles, the core layered, Slack at the edge.

Imports inside functions count too (grimp reads every import statement): a lazy import that closes a
cycle still ties the two modules together.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = ("bot", "handlers")


def import_cycles(graph: grimp.ImportGraph, prefixes: tuple[str, ...] = OUR_PACKAGES) -> list[list[str]]:
    """Every strongly connected set of more than one module (or a module importing itself) among the
    modules under ``prefixes``: each is at least one import cycle. Tarjan's algorithm, iterative."""
    modules = sorted(m for m in graph.modules if m.split(".")[0] in prefixes)
    ours = set(modules)
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in ours) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    cycles.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return cycles


def test_no_import_cycle_in_bot_or_handlers() -> None:
    graph = grimp.build_graph(*OUR_PACKAGES)
    cycles = import_cycles(graph)
    assert cycles == [], "import cycles (break each by moving the shared piece down a layer):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_cycle_finder_sees_a_cycle_that_is_added() -> None:
    graph = grimp.build_graph(*OUR_PACKAGES)
    assert import_cycles(graph) == []
    # What bot/storage.py <-> bot/storage_tinydb.py used to be: the interface importing its backend.
    graph.add_import(importer="bot.store.base", imported="bot.store.tinydb")
    # (a strongly connected set: with it, every store module between the two is in the cycle too)
    assert any({"bot.store.base", "bot.store.tinydb"} <= set(c) for c in import_cycles(graph))
    graph.add_import(importer="bot.urls", imported="bot.engine")
    assert any("bot.urls" in c and "bot.engine" in c for c in import_cycles(graph))


def test_import_contracts_hold() -> None:
    # The layers and the Slack boundary are import-linter contracts in pyproject.toml.
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_core_imports_no_slack_at_import_time() -> None:
    # Importing every core package (not running `serve`) loads no Slack library.
    code = (
        "import sys, bot.engine, bot.cli, bot.audit, bot.imports.service, bot.monitoring.digest, "
        "bot.agreements.csvfile, bot.agreements.qualify;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('slack_bolt', 'slack_sdk', 'handlers')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
