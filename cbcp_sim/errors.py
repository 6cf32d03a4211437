"""Errors a user can cause and fix: each names the parameter and what is allowed."""

from __future__ import annotations

import re


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
        # Both arguments kept in ``args``: an error re-made from its args (SimPy re-raises a process's error as
        # ``type(exc)(*exc.args)``) or pickled across a process boundary keeps its path and message.
        super().__init__(path, message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.path, self.message)


class ScenarioError(InputError):
    """A scenario value, a scenario file, or a value that a scenario refuses."""


class SettingsError(InputError):
    """A run setting (reps, seed, jobs, backend, ...) or another parameter of a library call."""


#: Characters a terminal could act on: C0 and C1 controls, DEL, and line or paragraph separators.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` on one line with nothing a terminal acts on: each control character (newline, escape, ...) is
    written as its escape (``\\n``, ``\\x1b``), so an error or a title from a hostile file cannot break lines
    or send terminal escape sequences."""
    return _UNPRINTABLE.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                                   else f"\\u{ord(m.group()):04x}"), text)
