"""How fast `linkpact serve` acknowledges Slack while it checks big pages.

Starts the loopback web farm (``bench/webfarm.py``: a page of ``--links`` links over 10 hosts, 20 ms per
answer), a stand-in for Slack's Web API (``tests/support/slack_api.py``) and a real ``linkpact serve`` in
HTTP mode. It sends ``--checks`` signed ``/linkcheck <page>`` commands (one per workspace, so none is
refused as busy), waits ``--settle-s``, then sends a signed ``/linkcheck help`` every ``--every-s``
for ``--probe-s`` seconds and times each HTTP answer (Slack's acknowledgement). Prints the p50, p99
and worst acknowledgement times, how many checks had finished, and the server's CPU time.

    python bench/ack_bench.py                      # 20 checks of 5,000-link pages (the issue's load)
    python bench/ack_bench.py --checks 4 --links 5000
    LINKPACT_CPU_WORKERS=0 python bench/ack_bench.py   # the same without worker processes

Slack gives an app 3 s to acknowledge (Slack docs, "Handling user interaction"); the target here is a
p99 under 0.3 s. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import cpu_seconds_of  # noqa: E402
from bench.run import FarmProcess  # noqa: E402
from tests.support.slack_api import SlackApiStandIn  # noqa: E402
from tests.test_slack_serve import send_command, start_server  # noqa: E402

DEFAULT_CHECKS = 20
DEFAULT_LINKS = 5_000
DEFAULT_SETTLE_S = 1.0
DEFAULT_PROBE_S = 20.0
DEFAULT_EVERY_S = 0.1


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def run(args: argparse.Namespace) -> dict[str, object]:
    farm = FarmProcess(links=args.links, hosts=10, latency_ms=20.0, body_bytes=2048)
    try:
        with SlackApiStandIn() as slack_api, tempfile.TemporaryDirectory() as workdir:
            env = {
                "LINKPACT_MAX_CHECKS_PER_WORKSPACE": "4",
                "LINKPACT_TIMEOUT_S": "30",
            }
            if os.environ.get("LINKPACT_CPU_WORKERS"):
                env["LINKPACT_CPU_WORKERS"] = os.environ["LINKPACT_CPU_WORKERS"]
            server = start_server(Path(workdir), slack_api, **env)
            try:
                page = farm.info["page_url"]
                started = time.perf_counter()
                for n in range(args.checks):
                    sent = send_command(server, slack_api, page, channel=f"C{n:04d}", team=f"T{n:04d}")
                    assert sent.response.status_code == 200, sent.response.text
                time.sleep(args.settle_s)
                acks: list[float] = []
                deadline = time.perf_counter() + args.probe_s
                while time.perf_counter() < deadline:
                    sent = send_command(server, slack_api, "help", channel="CPROBE", team="TPROBE")
                    assert sent.response.status_code == 200, sent.response.text
                    acks.append(sent.elapsed_s)
                    time.sleep(args.every_s)
                finished = sum(len(slack_api.calls_to(m)) for m in ("chat.update", "chat.postMessage"))
                cpu = cpu_seconds_of(server.process.pid)
                elapsed = time.perf_counter() - started
            finally:
                server.stop()
                if args.show_slow:
                    slow = ("Executing", "blocked")
                    sys.stderr.writelines(line for line in server.lines if any(w in line for w in slow))
    finally:
        farm.stop()
    return {
        "checks": args.checks,
        "links_per_page": args.links,
        "cpu_workers": os.environ.get("LINKPACT_CPU_WORKERS", "default"),
        "acks": len(acks),
        "ack_p50_s": round(statistics.median(acks), 4),
        "ack_p99_s": round(percentile(acks, 0.99), 4),
        "ack_max_s": round(max(acks), 4),
        "slack_messages_posted_or_updated": finished,
        "server_cpu_s": round(cpu, 2),
        "elapsed_s": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checks", type=int, default=DEFAULT_CHECKS, help="concurrent /linkcheck commands")
    parser.add_argument("--links", type=int, default=DEFAULT_LINKS, help="links on the checked page")
    parser.add_argument("--settle-s", type=float, default=DEFAULT_SETTLE_S, help="wait before probing (s)")
    parser.add_argument("--probe-s", type=float, default=DEFAULT_PROBE_S, help="how long to probe (s)")
    parser.add_argument("--every-s", type=float, default=DEFAULT_EVERY_S, help="between probes (s)")
    parser.add_argument(
        "--show-slow", action="store_true",
        help="print the server's slow-callback lines (run with PYTHONASYNCIODEBUG=1 to get asyncio's)",
    )  # fmt: skip
    result = run(parser.parse_args(argv))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
