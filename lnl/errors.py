"""The harness's own error type: a bad input the user can fix, shown as one line with exit status 2.

Every error a command can explain (a bad flag or value, an unreadable sweep or search space, a
checkpoint that fails its digest, a bad worker variable, an unknown page link) derives from
:class:`UserError`, and every command's ``main`` is wrapped by :func:`lnl.commands.one_line_errors`,
the one place that turns it into ``error: <message>`` and exit status 2. Anything else keeps its
traceback and exits 1, so a real bug stays visible.
"""
from __future__ import annotations


class UserError(ValueError):
    """A bad input, explained in ``str(err)``: one line, no traceback, exit status 2."""


class ConfigError(UserError):
    """A bad key or value; ``str(err)`` is the one line shown to the user."""

    def __init__(self, key: str | None, message: str) -> None:
        self.key = key
        flag = f"{key} (--{key.replace('_', '-')})" if key else "config"
        super().__init__(f"{flag}: {message}")
