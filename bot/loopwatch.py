"""How late the event loop runs: a probe of loop lag, for tests, benchmarks and the running bot.

Slack must be acknowledged within 3 s of sending a request (Slack docs, "Handling user interaction":
"respond within 3000 ms"), and an acknowledgement can only be sent when the loop gets to it. Every
stretch of synchronous work on the loop (parsing, building a report, encoding a database write)
delays every other coroutine by as long as it runs. :class:`LoopLagProbe` measures that delay: it asks
the loop to wake it every ``interval_s`` and records how much later than asked it woke (``lag``), and
how much CPU time the loop's thread spent in between (``busy``). On a loaded machine the lag also holds
the time the operating system gave other processes; the busy time is the part our own code caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: How often the probe asks to be woken (seconds): short enough to see a 50 ms stall, cheap enough to
#: leave running in `linkpact serve` (100 wake-ups a second cost well under 1% of a core).
DEFAULT_PROBE_INTERVAL_S = 0.01
#: A stall longer than this is logged as a warning by a running probe (seconds): a tenth of Slack's
#: 3 s budget, and the p99 acknowledgement target of docs/benchmarks.md.
DEFAULT_STALL_WARNING_S = 0.3
#: Samples kept for :meth:`LoopLagProbe.summary` (the latest ones): an hour at the default interval, ~3 MB,
#: so a probe left running in the bot does not grow without bound.
MAX_SAMPLES = 360_000


@dataclass(frozen=True, slots=True)
class LagSummary:
    """What a probe saw: ``samples`` wake-ups; ``max_s``/``p99_s``/``median_s`` of their lateness
    (seconds); ``max_busy_s``: the most CPU time the loop's thread spent between two wake-ups."""

    samples: int
    max_s: float
    p99_s: float
    median_s: float
    max_busy_s: float = 0.0


class LoopLagProbe:
    """Measures event-loop lag while running: ``async with LoopLagProbe() as probe: ...`` then
    ``probe.summary()``. ``clock`` is the monotonic clock the loop uses (injectable for tests)."""

    def __init__(
        self,
        *,
        interval_s: float = DEFAULT_PROBE_INTERVAL_S,
        warn_over_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.warn_over_s = warn_over_s
        self._clock = clock
        self._lags: deque[float] = deque(maxlen=MAX_SAMPLES)
        self._max_busy_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLagProbe:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        """Start probing on the running loop (no-op when already started)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop lag probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def lags(self) -> list[float]:
        """The latest lateness samples (seconds, at most :data:`MAX_SAMPLES`), in order."""
        return list(self._lags)

    def summary(self) -> LagSummary:
        lags = sorted(self._lags)
        if not lags:
            return LagSummary(0, 0.0, 0.0, 0.0)
        return LagSummary(
            samples=len(lags),
            max_s=lags[-1],
            p99_s=lags[min(len(lags) - 1, int(len(lags) * 0.99))],
            median_s=lags[len(lags) // 2],
            max_busy_s=self._max_busy_s,
        )

    async def _run(self) -> None:
        while True:
            asked = self._clock()
            cpu = time.thread_time()  # the loop's own thread: what our code spent, not other processes
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, self._clock() - asked - self.interval_s)
            self._max_busy_s = max(self._max_busy_s, time.thread_time() - cpu)
            self._lags.append(lag)
            if self.warn_over_s is not None and lag > self.warn_over_s:
                logger.warning("the event loop was blocked for %.2f s (Slack acknowledgements waited)", lag)
