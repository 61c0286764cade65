"""``python -m bot.cli``: the same as the ``linkpact`` console script."""

import sys

from bot.cli.main import main

# Guarded: worker processes (bot.offload) import the main module again under another name.
if __name__ == "__main__":
    sys.exit(main())
