"""The field kinds of the language: one object per type, holding what is true of that type.

Adding a type is adding one `FieldKind` to `FIELD_KINDS`. The storage, record and web stages
extend these objects' knowledge through their own tables keyed by kind name, so this module
stays free of SQL and HTTP.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

UTC = dt.timezone.utc
SAMPLE_DATETIME = dt.datetime(2024, 6, 15, 9, 30, tzinfo=UTC)

COMMON_KEYS = frozenset({
    "type", "label", "help", "placeholder", "required", "default", "unique", "index",
    "read_only", "hidden", "track", "visible_if", "required_if", "read_only_if", "compute",
    "renamed_from", "remove", "lookup",
})


@dataclass(frozen=True)
class FieldKind:
    """What every field of one type has in common."""

    name: str
    cel_type: str  # the CEL type its values have in expressions: string int double bool ...
    extra_keys: frozenset[str] = frozenset()
    numeric: bool = False
    stored: bool = True  # False for `lines`: its rows live in the child table
    writable: bool = True  # False for rollup and autonumber: the engine fills them
    orderable: bool = True

    @property
    def keys(self) -> frozenset[str]:
        return COMMON_KEYS | self.extra_keys

    def parse_literal(self, value, options: tuple[str, ...] = ()):
        """Return `value` (from YAML) as a value of this kind, or raise ValueError."""
        return _PARSERS[self.name](value, options)


def _text(value, options):
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("must be a text")
    return str(value)


def _integer(value, options):
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise ValueError("must be a whole number")


def _decimal(value, options):
    if isinstance(value, bool):
        raise ValueError("must be a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def _boolean(value, options):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("must be true or false")


def _date(value, options):
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError("must be a date like 2024-12-31") from None


def _datetime(value, options):
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be a date and time like 2024-12-31T08:30:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _enum(value, options):
    text = _text(value, options)
    if options and text not in options:
        raise ValueError(f"'{text}' is not one of the options ({', '.join(options)})")
    return text


def _multi_enum(value, options):
    if not isinstance(value, list):
        raise ValueError("must be a list of options")
    return [_enum(v, options) for v in value]


def _reference(value, options):
    return _integer(value, options)


def _json(value, options):
    return value


def _not_literal(value, options):
    raise ValueError("takes no default: the engine fills it")


def _no_file_literal(value, options):
    raise ValueError("takes no default: a file field holds an uploaded file")


_PARSERS = {
    "string": _text, "text": _text, "email": _text, "phone": _text, "url": _text,
    "integer": _integer, "decimal": _decimal, "money": _decimal, "percent": _decimal,
    "boolean": _boolean, "date": _date, "datetime": _datetime, "enum": _enum,
    "multi_enum": _multi_enum, "reference": _reference, "json": _json,
    "lines": _not_literal, "rollup": _not_literal, "autonumber": _not_literal,
    "file": _no_file_literal,
}

_NUMBER_KEYS = frozenset({"min", "max"})
FIELD_KINDS = MappingProxyType({kind.name: kind for kind in (
    FieldKind("string", "string", frozenset({"max_length", "pattern"})),
    FieldKind("text", "string", frozenset({"max_length"}), orderable=False),
    FieldKind("integer", "int", _NUMBER_KEYS, numeric=True),
    FieldKind("decimal", "double", _NUMBER_KEYS | {"precision", "scale"}, numeric=True),
    FieldKind("money", "double", _NUMBER_KEYS | {"currency", "rate_date"}, numeric=True),
    FieldKind("percent", "double", _NUMBER_KEYS, numeric=True),
    FieldKind("boolean", "bool"),
    FieldKind("date", "timestamp", _NUMBER_KEYS),
    FieldKind("datetime", "timestamp"),
    FieldKind("email", "string"),
    FieldKind("phone", "string"),
    FieldKind("url", "string"),
    FieldKind("enum", "string", frozenset({"options"})),
    FieldKind("multi_enum", "list", frozenset({"options"}), orderable=False),
    FieldKind("reference", "map", frozenset({"to", "on_delete"})),
    FieldKind("lines", "list", frozenset({"entity"}), stored=False, writable=True,
              orderable=False),
    FieldKind("rollup", "double", frozenset({"of", "field", "agg", "where", "currency",
                                               "rate_date"}), numeric=True,
              writable=False),
    FieldKind("autonumber", "string", frozenset({"pattern"}), writable=False),
    FieldKind("json", "dyn", orderable=False),
    FieldKind("file", "map", frozenset({"max_mb", "accept"}), orderable=False),
)})
