"""Typed errors. Every user-facing failure is a ``DomrandError``; spec problems are ``SpecError``.

A ``SpecError`` message names the file, the key path (``parameters.pole.mass.high``), the value
received and what is allowed, so the CLI can print it as one line and exit 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DomrandError",
    "EnvMismatchError",
    "KnobError",
    "SpecError",
    "SpecFileError",
    "SpecKeyError",
    "SpecRangeError",
    "SpecSyntaxError",
    "SpecTypeError",
    "SpecValueError",
    "StorageError",
    "UnknownKnobError",
    "did_you_mean",
]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except RecursionError:  # a structure nested deeper than repr can go
        text = f"<{type(value).__name__} nested too deeply>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str) -> str:
    """Escape line breaks and other unprintable characters, e.g. in a key read from a file."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DomrandError(Exception):
    """Base class of every error domrand raises on purpose."""


class KnobError(DomrandError, ValueError):
    """A knob name or value was rejected by an environment at run time."""


class CheckpointError(DomrandError):
    """A checkpoint or exported artifact is missing, corrupt or does not match."""


class StorageError(DomrandError, OSError):
    """A file could not be written (disk full, no permission, ...); the previous version of the
    file is left as it was. ``errno`` is the operating system's error number."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno  # type: ignore[misc]


class ConfigError(DomrandError, ValueError):
    """A training or run configuration is invalid (unknown key, wrong type, out of range)."""


class SpecError(DomrandError, ValueError):
    """A randomization spec or domain file is invalid.

    Attributes:
        file: the file the spec came from (``"<dict>"`` for in-memory specs).
        path: dotted key path inside the spec, e.g. ``parameters.pole.mass.high``.
        value: the offending value (``None`` when not applicable).
        allowed: a short description of what is allowed.
    """

    kind = "invalid spec"

    def __init__(
        self,
        detail: str,
        *,
        file: str | None = None,
        path: str = "",
        value: Any = None,
        allowed: str | None = None,
        show_value: bool = True,
    ) -> None:
        self.detail = detail
        self.file = file or "<dict>"
        self.path = path
        self.value = value
        self.allowed = allowed
        self.show_value = show_value
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file + (f": {self.path}" if self.path else "")
        msg = f"{where}: {self.detail}"
        if self.show_value:
            msg += f" (got {_short(self.value)})"
        if self.allowed:
            msg += f"; allowed: {self.allowed}"
        return _one_line(msg)  # the CLI prints it as one line

    def located(self, file: str) -> SpecError:
        """Return the same error attributed to ``file`` (used when re-raising with the path)."""
        if self.file == file:
            return self
        return type(self)(
            self.detail,
            file=file,
            path=self.path,
            value=self.value,
            allowed=self.allowed,
            show_value=self.show_value,
        )


class SpecFileError(SpecError):
    """The spec file is missing, unreadable, empty or not UTF-8."""


class SpecSyntaxError(SpecError):
    """The file is not valid YAML/JSON, or uses a construct domrand refuses (duplicate keys...)."""


class SpecKeyError(SpecError):
    """A key is unknown or a required key is missing."""


class SpecTypeError(SpecError):
    """A value has the wrong type (a string where a number is needed...)."""


class SpecValueError(SpecError):
    """A value has the right type but is not allowed (NaN, low > high, negative std...)."""


class SpecRangeError(SpecError):
    """The support of a distribution leaves the knob's valid range."""


class UnknownKnobError(SpecError):
    """The spec names a knob the environment does not expose."""


class EnvMismatchError(SpecError):
    """The spec's ``env:`` does not match the environment it is applied to."""
