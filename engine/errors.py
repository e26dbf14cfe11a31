"""The engine's two exception trees: one for consultants, one for end users.

`ConfigError` carries every problem found in a configuration (file, line, column, a stable
code, a message and an optional hint). `RecordError` and its subclasses are what end users
get when a record operation is refused; the web layer maps each to an HTTP status.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a configuration, positioned at the offending key or value."""

    path: str
    line: int
    column: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: error: {self.message} [{self.code}]"


class ConfigError(Exception):
    """A configuration that cannot be compiled, with every problem found in it."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(str(name), sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class RecordError(Exception):
    """A record operation refused for an end user; `status` is the HTTP status it maps to."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra


class BadRequest(RecordError):
    status, code = 400, "bad_request"


class Forbidden(RecordError):
    status, code = 403, "forbidden"


class NotFound(RecordError):
    status, code = 404, "not_found"


class Conflict(RecordError):
    status, code = 409, "conflict"


class PreconditionRequired(RecordError):
    status, code = 428, "precondition_required"


class ValidationFailed(RecordError):
    status, code = 422, "validation_failed"
