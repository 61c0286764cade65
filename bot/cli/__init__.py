"""``linkpact``: the command-line twin of every Slack feature, over the same core.

One module per command group (``check``, ``track``, ``agreement``, ``recheck``, ``digest``, ``imports``,
``audit``, ``serve``), shared output helpers in ``output``, the parser and dispatcher in ``main``. The CLI
sits on top of the core: it may import any package of :mod:`bot`; only ``serve`` (and ``digest``'s
posting) reach into ``handlers/``.
"""

from bot.cli.main import build_parser, main, named_command

__all__ = ["build_parser", "main", "named_command"]
