"""Expressions: CEL programs compiled once at load time and evaluated per record.

The engine's own functions (today, now, days_between, lower, upper, coalesce, round, abs) are
plain Python callables handed to CEL with every evaluation. Dates travel through CEL as
timestamps (midnight UTC), money and other decimals as doubles.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from pathlib import Path
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

UTC = dt.timezone.utc


def _as_datetime(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise TypeError("days_between takes dates or datetimes")


def _today() -> dt.datetime:
    day = dt.datetime.now(UTC).date()
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _days_between(a, b) -> int:
    if a is None or b is None:
        raise TypeError("days_between of null")
    return (_as_datetime(b).date() - _as_datetime(a).date()).days


def _lower(s):
    if not isinstance(s, str):
        raise TypeError("lower takes a text")
    return s.lower()


def _upper(s):
    if not isinstance(s, str):
        raise TypeError("upper takes a text")
    return s.upper()


def _coalesce(*values):
    for value in values:
        if value is not None:
            return value
    return None


def _round(x, n=0):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError("round takes a number")
    return round(float(x), int(n))


def _abs(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError("abs takes a number")
    return abs(x)


def _load_cel():
    """Return the CEL extension module without the package's command-line extras.

    `import cel` also imports the package's interactive CLI (prompt_toolkit, rich), which costs
    about 0.3 s on every start of `crm`; the compiled core alone is all the engine needs.
    """
    try:
        spec = importlib.util.find_spec("cel")
        folder = Path(spec.submodule_search_locations[0])
        binary = next(folder.glob("cel.*.so"), None) or next(folder.glob("cel.*.pyd"))
        core_spec = importlib.util.spec_from_file_location("cel.cel", binary)
        core = importlib.util.module_from_spec(core_spec)
        core_spec.loader.exec_module(core)
        return core
    except Exception:  # pragma: no cover - a differently packaged release
        import cel
        return cel


cel = _load_cel()

ENGINE_FUNCTIONS: Mapping[str, Any] = {
    "today": _today, "now": _now, "days_between": _days_between, "lower": _lower,
    "upper": _upper, "coalesce": _coalesce, "round": _round, "abs": _abs,
}

CEL_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string",
    "bytes", "bool", "timestamp", "duration", "dyn", "type", "has", "all", "exists",
    "exists_one", "map", "filter", "getFullYear", "getMonth", "getDate",
    "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours", "getMinutes", "getSeconds",
    "getMilliseconds",
})

_SYNTAX_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(\n|$)")


class ExpressionSyntaxError(ValueError):
    """A CEL text that does not parse; `line`/`column` are 1-based within the expression."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        super().__init__(message)
        self.line, self.column = line, column


def parse(source: str) -> "cel.Program":
    """Compile CEL text, raising ExpressionSyntaxError with the position inside the text."""
    try:
        return cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        match = _SYNTAX_POSITION.search(str(exc))
        if match:
            # ANTLR lists every token it would have accepted; the position says enough
            message = re.sub(r" expecting \{.*$|Syntax error: ", "", match.group(3)).strip()
            raise ExpressionSyntaxError(message, int(match.group(1)),
                                        int(match.group(2))) from None
        raise ExpressionSyntaxError(str(exc).splitlines()[0]) from None


def unknown_functions(program) -> list[str]:
    """Return the functions an expression calls that neither CEL nor the engine provides."""
    names = []
    for name in program.functions():
        if name[:1] in "_@!" or name in CEL_FUNCTIONS or name in ENGINE_FUNCTIONS:
            continue
        names.append(name)
    return names


def to_cel(value):
    """Convert a stored Python value to what CEL expects."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, tuple):
        return [to_cel(v) for v in value]
    return value


class EvaluationError(Exception):
    """An expression failed on real values (null compared with a number, a wrong type...)."""


@dataclass(frozen=True)
class Expression:
    """A compiled expression, with where it was written for error messages."""

    source: str
    where: str  # "path:line:col" of the expression in its YAML file
    names: frozenset[str] = frozenset()
    program: Any = field(default=None, compare=False, repr=False)

    def evaluate(self, scope: Mapping[str, Any]):
        """Evaluate against `scope` (field name -> CEL-ready value); raise EvaluationError."""
        bindings = dict(ENGINE_FUNCTIONS)
        for name in self.names:
            bindings[name] = scope.get(name)
        try:
            return self.program.execute(bindings)
        except (TypeError, ValueError, RuntimeError, KeyError, ZeroDivisionError,
                OverflowError) as exc:
            raise EvaluationError(f"{self.source}: {exc}") from None

    def test(self, scope: Mapping[str, Any]) -> bool:
        """Evaluate as a condition: only an exact `true` passes."""
        return self.evaluate(scope) is True
