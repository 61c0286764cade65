"""Partnership agreements: who links to what, with which anchor and rel, by when, and whether they do.

Owns the model and its derived states (:mod:`~bot.agreements.model`: an agreement's state is derived
there, never typed), the service that stores, verifies both directions and keeps the history
(:mod:`~bot.agreements.service`), text and JSON rendering (:mod:`~bot.agreements.report`), the CSV
layout (:mod:`~bot.agreements.csvfile`) and qualification hints (:mod:`~bot.agreements.qualify`). May
import the shared floor, :mod:`bot.net`, :mod:`bot.store`, :mod:`bot.backlinks` and
:mod:`bot.linkcheck`; not monitoring, imports, audit, the CLI or Slack.
"""
