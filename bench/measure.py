"""Run one command and measure it: wall time, CPU time (user + system) and peak memory of its process tree.

- Wall time: ``time.perf_counter`` from just before the spawn to the return of ``os.wait4``, so it covers
  interpreter start-up, imports and exit, as a user waiting at a terminal experiences it.
- CPU time: the ``rusage`` that ``os.wait4`` returns for the child, which on Linux includes every
  descendant the child itself waited for. ``getrusage(RUSAGE_CHILDREN)`` before and after is kept as a
  cross-check (it only differs if some other child of this process ended meanwhile).
- Peak memory, two ways: ``tree_peak_rss_bytes`` is the largest sum of RSS over the whole process tree,
  sampled from ``/proc`` every ``POLL_INTERVAL_S`` (it can miss a peak shorter than the interval);
  ``maxrss_bytes`` is the kernel's exact high-water mark (``ru_maxrss``) of the single largest process
  in the tree. For a one-process tool both describe the same process; the larger is the one to quote.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# 20 ms: frequent enough to see a checker's working set at its height (runs last seconds), cheap enough
# (a few small /proc reads) not to steal noticeable CPU from the measured tool.
POLL_INTERVAL_S = 0.020
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one run cost. Times in seconds, memory in bytes."""

    exit_code: int
    wall_s: float
    user_s: float
    sys_s: float
    children_cpu_s: float  # cross-check: getrusage(RUSAGE_CHILDREN) delta
    maxrss_bytes: int
    tree_peak_rss_bytes: int
    max_processes: int
    timed_out: bool
    # Bytes the process had the kernel write to disk (``ru_oublock``, 512-byte blocks): fsynced writes
    # show here; writes still in the page cache at exit may not.
    oublock_bytes: int = 0

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def peak_rss_bytes(self) -> int:
        return max(self.maxrss_bytes, self.tree_peak_rss_bytes)


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from ``/proc/PID/task/TID/children`` (Linux >= 3.5)."""
    seen: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        seen.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # the process ended between two reads
        for tid in tids:
            try:
                text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            except OSError:
                continue
            stack.extend(int(child) for child in text.split())
    return seen


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (second field of ``/proc/PID/statm``, in pages); 0 once gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


class _TreeSampler(threading.Thread):
    """Samples the tree's summed RSS until stopped; keeps the largest sum and the most processes seen."""

    def __init__(self, root: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.root = root
        self.peak = 0
        self.max_processes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids = process_tree(self.root)
            total = sum(rss_bytes(pid) for pid in pids)
            self.peak = max(self.peak, total)
            self.max_processes = max(self.max_processes, len(pids))
            self._stop_event.wait(POLL_INTERVAL_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: Path,
    stderr: Path,
    cwd: Path | None = None,
    timeout_s: float = 600.0,
) -> Measurement:
    """Run ``argv`` to completion (or ``timeout_s``, then kill its process group) and measure it.

    stdout and stderr go to the given files. Raises OSError if the command cannot be started.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed_out = False
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so a timeout can end the whole tree
        )
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        killer = threading.Timer(timeout_s, _kill_group, args=(proc.pid,))
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            wall = time.perf_counter() - started
            timed_out = not killer.is_alive()
            killer.cancel()
            sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, tell Popen so it does not retry
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measurement(
        exit_code=proc.returncode,
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        children_cpu_s=children_cpu,
        maxrss_bytes=usage.ru_maxrss * 1024,  # Linux reports kilobytes
        tree_peak_rss_bytes=sampler.peak,
        max_processes=sampler.max_processes,
        timed_out=timed_out,
        oublock_bytes=usage.ru_oublock * 512,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def system_busy_s() -> float:
    """CPU time every process on the machine has used since boot (all cores), from ``/proc/stat``.

    The difference over a run, minus what the tool, the farm and this harness used, is what *other*
    processes took meanwhile: a figure to tell a quiet machine from a busy one.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal; guest is in user
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(
    *, max_busy_share: float, max_wait_s: float, window_s: float = 0.5, windows: int = 2
) -> tuple[float, float]:
    """Wait until the whole machine's CPU use stays below ``max_busy_share`` of all cores for ``windows``
    consecutive windows of ``window_s`` seconds, or ``max_wait_s`` passes.

    Returns ``(waited_s, last_busy_share)``. Other work on a shared machine (another test suite, a build)
    would otherwise land in one tool's figures and not another's.
    """
    cores = os.cpu_count() or 1
    started = time.perf_counter()
    quiet_in_a_row = 0
    share = 1.0
    while True:
        before = system_busy_s()
        time.sleep(window_s)
        share = (system_busy_s() - before) / (window_s * cores)
        quiet_in_a_row = quiet_in_a_row + 1 if share <= max_busy_share else 0
        waited = time.perf_counter() - started
        if quiet_in_a_row >= windows or waited >= max_wait_s:
            return waited, share


def self_cpu_s() -> float:
    """CPU time of this process (all its threads, the RSS sampler included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds_of(pid: int) -> float:
    """CPU time (user + system, incl. reaped children) a running process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields after the command name start at field 3 (state); utime/stime are fields 14/15.
    return (int(fields[11]) + int(fields[12])) / ticks
