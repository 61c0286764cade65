"""Linkpact's Slack surface (Bolt for Python, asyncio).

One folder per kind of Slack input: ``commands``, ``actions``, ``views``, ``events``; each has a
``register(app)``. ``handlers.app`` is the one composition root: it builds the ``AsyncApp``, attaches the
shared services (engine, check slots, background tasks) and calls every ``register``. Handlers parse,
ack, call the core in :mod:`bot`, and render with the pure ``build_*`` functions in ``handlers.views``.
"""
