"""``linkpact serve``: run the Slack bot (Socket Mode with ``SLACK_APP_TOKEN``, else HTTP).

The one module of the core that reaches into ``handlers/`` (and so into Slack), and only when called:
to run the bot, and for ``linkpact digest`` to post through the same code the bot posts with.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from bot.cli.names import COMMAND_HELP
from bot.cli.output import SubParsers
from bot.config import DEFAULT_PORT, ConfigError

if TYPE_CHECKING:
    from bot.engine import Engine
    from bot.monitoring.digest import Digest


def add_serve_parser(sub: SubParsers) -> None:
    serve = sub.add_parser("serve", help=COMMAND_HELP["serve"])
    serve.add_argument("--port", type=int, default=None, help=f"HTTP port (default: $PORT or {DEFAULT_PORT})")


def run_serve_command(args: argparse.Namespace) -> int:
    """Blocks until the server stops; returns its exit code. Raises :class:`ConfigError` on a bad PORT."""
    from handlers.app import run_server  # Slack stays out of the core and of other commands

    return run_server(port=args.port if args.port is not None else env_port())


def env_port() -> int:
    """``$PORT`` as a TCP port number, :data:`DEFAULT_PORT` when unset; raises :class:`ConfigError`."""
    raw = os.environ.get("PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"PORT: {raw!r} is not a TCP port number")
    return int(raw)


async def post_digest_to_slack(engine: Engine, digest: Digest) -> int:
    """Post ``digest`` to the configured channels as the bot would (exactly once per period and channel);
    returns the command's exit code."""
    from handlers.digest import post_digest_from_cli  # Slack stays out of the core and of other commands

    return await post_digest_from_cli(engine, digest)
