"""One module per schema version (see :mod:`bot.store.migrations`)."""
