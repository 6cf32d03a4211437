"""Errors a user can cause and fix: each names the field and what is allowed."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario value (or input file) is not acceptable.

    ``path`` is the dotted field (``design.alpha``) or the file at fault; the message says what
    is allowed and what was given. The CLI prints ``error: {path}: {message}`` and exits 2.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)
