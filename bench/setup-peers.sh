#!/usr/bin/env bash
# Install the benchmark's peers into git-ignored folders beside this script; nothing goes into the
# project's own dependencies or venv:
#   - linkinator (npm, pinned in package.json / package-lock.json) into bench/node_modules/
#   - LinkChecker (PyPI, pinned in requirements-peers.txt) into its own venv, bench/.peers-venv/
# Needs Node.js 20 (linkinator 6 runs on it) and Python >= 3.9 (PYTHON=... to pick another one).
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "setup-peers: node (Node.js 20) is needed for linkinator" >&2; exit 2; }
npm ci --no-audit --no-fund --loglevel=error
"${PYTHON:-python3}" -m venv .peers-venv
.peers-venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-peers.txt
echo "peers ready: linkinator $(node node_modules/linkinator/build/src/cli.js --version)," \
     "$(.peers-venv/bin/linkchecker --version 2>/dev/null | head -1)"
