"""CPU-heavy work off the event loop: worker processes for pure functions, a thread where none are wanted.

A thread does not free the loop for long work: it holds the GIL for all but the C parts, and with many
such threads the loop waits its turn behind each (``sys.getswitchinterval()``, 5 ms, per thread). In
``linkpact serve``, where Slack must be acknowledged within 3 s whatever runs, parsing a large page
therefore goes to a worker process. A one-shot command (``linkpact check``) has nothing else to answer
and skips the processes' start-up cost: :class:`Offloader` with ``workers=0`` uses a thread.

Functions sent to workers must be importable module-level functions whose arguments and results pickle.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Worker processes when ``LINKPACT_CPU_WORKERS`` is not set, in ``linkpact serve``: one per core, at most
#: this many (each holds a parser and its imports, about 40 MB).
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """Worker processes for a long-running server: the cores this process may use, at most
    :data:`MAX_DEFAULT_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def _import_modules(modules: tuple[str, ...]) -> int:
    for name in modules:
        importlib.import_module(name)
    return os.getpid()


class Offloader:
    """Runs CPU-heavy calls off the event loop: in ``workers`` processes, or a thread when 0.

    The processes are started on first use (``forkserver``: no fork of a process that already runs
    threads) and shut down by :meth:`aclose`. A pool that breaks (a worker killed) is replaced once per
    call, then the call runs in a thread, so a check is never lost to a dead worker.
    """

    def __init__(self, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method))
        return self._pool

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a worker process (or a thread); its exception is raised here."""
        call = functools.partial(fn, *args, **kwargs)
        if self.workers == 0:
            return await asyncio.to_thread(call)
        loop = asyncio.get_running_loop()
        for _ in range(2):
            try:
                return await loop.run_in_executor(self._executor(), call)
            except BrokenProcessPool:
                logger.warning("a CPU worker process died; starting new ones")
                self._discard_pool()
        return await asyncio.to_thread(call)

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def warm_up(self, *modules: str) -> None:
        """Start every worker process now and import ``modules`` in each (``serve`` does at start-up, so
        no user waits for a worker to start or for a parser to load)."""
        if self.workers:
            await asyncio.gather(*(self.run(_import_modules, modules) for _ in range(self.workers)))

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
