"""Monitoring: scheduled rechecks, the weekly digest and prune proposals.

Owns the recheck of every tracked backlink and promised link with weekly snapshots
(:mod:`~bot.monitoring.recheck`), the weekly digest and its exactly-once ledger (assembled in
:mod:`~bot.monitoring.digest`) and the prune rules and decisions (:mod:`~bot.monitoring.prune`). May
import everything below it (floor, net, store, backlinks, linkcheck, agreements); not imports, audit,
the CLI or Slack. When to run is the front end's business (``handlers/scheduler.py``).
"""
