"""What every ``linkpact`` command shares on its way out: exit codes, JSON on stdout, the progress line.

Exit codes: 0 = nothing is broken or lost; 1 = something is broken or lost (or the page failed);
2 = bad input, a refused URL, or a configuration/storage problem (message on stderr); 3 = an internal
error (a one-line message; the traceback only with ``LINKPACT_DEBUG=1``); 141 = stdout was a pipe whose
reader stopped reading (``linkpact tracked | head -1``), nothing printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

if TYPE_CHECKING:
    from bot.linkcheck.engine import Progress

#: What each ``add_*_parser`` receives: the ``linkpact`` parser's registry of sub-commands.
SubParsers: TypeAlias = "argparse._SubParsersAction[Any]"

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
# 128 + SIGPIPE (13): the status a shell shows for a program that a closed pipe stopped.
EXIT_CLOSED_PIPE = 141
# A progress line more often than this is noise in a log; on a terminal it is redrawn in place.
PROGRESS_INTERVAL_S = 0.5
PROGRESS_INTERVAL_LOG_S = 5.0


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 agreement"``, ``"2 agreements"``; ``plural_form`` for irregular words."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def print_json(data: Any, *, ensure_ascii: bool = False) -> None:
    """``data`` as indented JSON on stdout, one trailing newline."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=ensure_ascii)
    sys.stdout.write("\n")


class ProgressLine:
    """A progress line on stderr: redrawn in place on a terminal, an occasional line in a log."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._tty = stream.isatty()
        self._interval = PROGRESS_INTERVAL_S if self._tty else PROGRESS_INTERVAL_LOG_S
        self._last = -self._interval
        self._drawn = False

    def __call__(self, progress: Progress) -> None:
        now = self._clock()
        if progress.phase != "done" and now - self._last < self._interval:
            return
        self._last = now
        text = f"linkpact: {progress.phase} {progress.done}/{progress.total}"
        if self._tty:
            self._stream.write("\r\033[K" + text)
            self._drawn = True
        elif progress.phase != "done":
            self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
