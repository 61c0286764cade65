"""Tracked backlinks and what is known about them over time.

Owns the registry of tracked backlinks (:mod:`~bot.backlinks.registry`), the two-check rule that turns a
failed observation into a confirmed loss (:mod:`~bot.backlinks.confirm`) and the append-only change log
(:mod:`~bot.backlinks.changes`). The link engine records every inbound observation through it, and
agreements and monitoring read and extend it, so it sits below all three. May import the shared floor,
:mod:`bot.net` and :mod:`bot.store`; nothing above them.
"""
