"""Errors that cross from the core to a front end (CLI or Slack)."""


class InputError(ValueError):
    """Bad or refused user input. ``str(exc)`` is a message meant for the user, without a traceback."""
