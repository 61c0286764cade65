"""The link engine: is each link on a page healthy, and does each known page still link to us?

Owns the pipeline, one type per stage: fetch (:class:`~bot.linkcheck.pipeline.PageFetcher`) -> extract
(:class:`~bot.linkcheck.pipeline.LinkExtractor` over :mod:`~bot.linkcheck.extract`, with
:mod:`~bot.linkcheck.placement`) -> resolve (``LinkResolver``) -> filter (``LinkFilter``) -> check
(:class:`~bot.linkcheck.check.LinkChecker`, where a link's verdict is decided) -> report
(:mod:`~bot.linkcheck.report`); robots.txt (:mod:`~bot.linkcheck.robots`), inbound verification of
tracked backlinks (:mod:`~bot.linkcheck.inbound`) and :class:`~bot.linkcheck.engine.LinkEngine`, which
wires them. May import the shared floor, :mod:`bot.net`, :mod:`bot.store` and :mod:`bot.backlinks`;
nothing above it and nothing from Slack.
"""
