"""Where ``linkpact check`` spends its CPU: one run under py-spy, summarised by function.

py-spy samples the process from outside (no instrumentation, so unlike cProfile it does not triple the
run time and skew asyncio's timings). ``--gil`` keeps only samples where a thread held the GIL, i.e. the
Python CPU time that decides how fast one event loop can go. The summary counts, for each function,
the samples in which it was on the stack (inclusive time), converted to seconds.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

# 500 Hz: a 2-5 s run gives 1,000-2,500 samples, enough to rank functions that cost ~10 ms or more.
SAMPLE_RATE_HZ = 500
TOP_FUNCTIONS = 45
# Frames of the interpreter's import machinery and the event loop are on almost every stack; they say
# "imports" or "the loop", which the rows of our own and our libraries' functions already break down.
NOISE = ("<frozen importlib", "asyncio/events.py", "asyncio/base_events.py", "asyncio/runners.py")


def record(
    py_spy: Path, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, raw_out: Path, stdout: Path
) -> int:
    """Run ``argv`` under ``py-spy record --gil`` writing raw (collapsed) stacks; returns the exit code."""
    command = [
        str(py_spy), "record", "--gil", "--rate", str(SAMPLE_RATE_HZ), "--format", "raw",
        "--output", str(raw_out), "--", *argv,
    ]  # fmt: skip
    with stdout.open("wb") as out:
        done = subprocess.run(
            command, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.PIPE, check=False
        )
    return done.returncode


def summarise(raw: Path, *, rate_hz: int = SAMPLE_RATE_HZ, top: int = TOP_FUNCTIONS) -> str:
    """A table of the functions with the most inclusive CPU time in a py-spy raw file."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        names = set()
        for frame in stack.split(";"):
            # "function (path/to/module.py:123)" -> "function (path/to/module.py)"
            name, _, where = frame.rpartition(" (")
            names.add(f"{name} ({where.split(':', 1)[0]})" if name else frame)
        for name in names:
            inclusive[name] += samples
    lines = [
        f"CPU samples with the GIL held: {total} at {rate_hz} Hz = {total / rate_hz:.2f} s",
        "",
        "| inclusive CPU s | share | function (module) |",
        "|---:|---:|---|",
    ]
    shown = 0
    for name, samples in inclusive.most_common():
        if any(noise in name for noise in NOISE):
            continue
        lines.append(f"| {samples / rate_hz:.2f} | {samples / max(total, 1):.0%} | `{name}` |")
        shown += 1
        if shown >= top:
            break
    return "\n".join(lines) + "\n"
