"""Errors a user can cause and fix: each names the parameter and what is allowed."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a value, a setting or a file that is not acceptable.

    ``path`` is the library's name of what is at fault: a scenario's dotted field (``design.alpha``), a
    parameter of a function (``reps``, ``visit``) or a file; the message says what is allowed and what was
    given. The command line prints ``error: {path}: {message}`` with the path as the option that gave it, and
    exits 2.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ScenarioError(InputError):
    """A scenario value, a scenario file, or a value that a scenario refuses."""


class SettingsError(InputError):
    """A run setting (reps, seed, jobs, backend, ...) or another parameter of a library call."""
