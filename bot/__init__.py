"""Linkpact core: the link engine, storage and partnership logic. No Slack imports here."""

__version__ = "0.1.0"
