"""Field values: turn input (JSON or CSV text) into stored values, check them, and turn stored
values back into JSON. One function per direction per kind, shared by the API, the UI and
import, so a value is accepted or refused the same way everywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from engine.records.messages import Message
from engine.registry.currencies import ISO_4217
from engine.registry.model import Field

UTC = dt.timezone.utc
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^[0-9 +\-()]{5,32}$")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
INTEGER_LIMIT = 2 ** 63 - 1


class Invalid(Exception):
    """A value that cannot be stored in its field."""

    def __init__(self, message: Message):
        super().__init__(message.key)
        self.message = message


_LISTISH = frozenset({"multi_enum", "json"})
_STRIPPED = frozenset({"string", "email", "phone", "url", "enum", "autonumber"})


def coerce(field: Field, raw):
    """Return `raw` as the stored value of `field` (None for empty), or raise Invalid."""
    kind = field.kind.name
    if raw is None:
        return None
    if type(raw) is str and (raw == "" or (raw[0].isspace() or raw[-1].isspace())
                             and not raw.strip()):
        return None
    if kind in _LISTISH and raw == "":
        return None
    return _COERCE[kind](field, raw)


def _text(field: Field, raw):
    if type(raw) is str:
        value = raw
    elif isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
        raise Invalid(Message("not_text"))
    else:
        value = str(raw)
    if "\x00" in value:
        raise Invalid(Message("not_text"))
    if field.kind.name in _STRIPPED:
        value = value.strip()
    if field.max_length and len(value) > field.max_length:
        raise Invalid(Message("too_long", n=field.max_length))
    if field.pattern and not re.fullmatch(field.pattern, value):
        raise Invalid(Message("pattern"))
    if field.holds_currency:  # a money field's currency (engine/check/currencies.py)
        value = value.upper()
        if value not in ISO_4217:
            raise Invalid(Message("not_currency"))
    return value


def _email(field, raw):
    value = _text(field, raw)
    if not EMAIL.match(value):
        raise Invalid(Message("not_email"))
    return value


def _phone(field, raw):
    value = _text(field, raw)
    if not PHONE.match(value):
        raise Invalid(Message("not_phone"))
    return value


def _url(field, raw):
    value = _text(field, raw)
    if not URL.match(value):
        raise Invalid(Message("not_url"))
    return value


def _enum(field, raw):
    value = _text(field, raw)
    if value not in field.option_values:
        raise Invalid(Message("not_option", options=", ".join(field.option_values)))
    return value


def _multi_enum(field, raw):
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(raw, (list, tuple)):
        raise Invalid(Message("not_list"))
    values = []
    for item in raw:
        value = _enum(field, item)
        if value not in values:
            values.append(value)
    return values


def _integer(field, raw):
    if isinstance(raw, bool):
        raise Invalid(Message("not_integer"))
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, (str, Decimal)) and re.fullmatch(r"\s*[+-]?\d{1,19}\s*", str(raw)):
        value = int(str(raw).strip())  # int() itself does not strip every \s (U+001F)
    else:
        raise Invalid(Message("not_integer"))
    if abs(value) > INTEGER_LIMIT:
        raise Invalid(Message("max", n=INTEGER_LIMIT))
    _bounds(field, value)
    return value


def _decimal(field, raw):
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
        raise Invalid(Message("not_number"))
    text = str(raw).strip().replace(",", "") if isinstance(raw, str) else str(raw)
    if len(text) > 60:
        raise Invalid(Message("not_number"))
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Invalid(Message("not_number")) from None
    if not value.is_finite():
        raise Invalid(Message("not_number"))
    precision, scale = _numeric_shape(field)
    if value != 0 and value.adjusted() + 1 > precision - scale:  # digits before the point
        raise Invalid(Message("too_many_digits", digits=precision - scale, scale=scale))
    if value.as_tuple().exponent < -scale:
        value = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    _bounds(field, value)
    return value


def _numeric_shape(field: Field) -> tuple[int, int]:
    kind = field.kind.name
    if kind == "decimal":
        return field.precision or 18, field.scale if field.scale is not None else 2
    if kind == "percent":
        return 5, 2
    return 18, 2


def _bounds(field: Field, value) -> None:
    # a float bound from YAML (min: 0.1) means its decimal text, not its binary value
    low, high = field.min, field.max
    if type(low) is float:
        low = Decimal(repr(low))
    if type(high) is float:
        high = Decimal(repr(high))
    if low is not None and isinstance(low, (int, float, Decimal)) and value < low:
        raise Invalid(Message("min", n=low))
    if high is not None and isinstance(high, (int, float, Decimal)) and value > high:
        raise Invalid(Message("max", n=high))


def _boolean(field, raw):
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes", "y", "是", "t"):
            return True
        if lowered in ("false", "0", "no", "n", "否", "f"):
            return False
    raise Invalid(Message("not_boolean"))


def _date(field, raw):
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        value = raw
    else:
        try:
            value = dt.date.fromisoformat(str(raw).strip()[:10]) \
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(raw).strip()) else None
        except ValueError:
            value = None
        if value is None:
            raise Invalid(Message("not_date"))
    low, high = field.min, field.max
    if isinstance(low, dt.date) and value < low:
        raise Invalid(Message("min", n=low.isoformat()))
    if isinstance(high, dt.date) and value > high:
        raise Invalid(Message("max", n=high.isoformat()))
    return value


def _datetime(field, raw):
    if isinstance(raw, dt.datetime):
        value = raw
    else:
        text = str(raw).strip()
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise Invalid(Message("not_datetime")) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC time
        raise Invalid(Message("not_datetime")) from None


def _reference(field, raw):
    if isinstance(raw, dict) and "id" in raw:
        raw = raw["id"]
    if isinstance(raw, bool):
        raise Invalid(Message("not_reference"))
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise Invalid(Message("not_reference")) from None
    if value <= 0 or value > INTEGER_LIMIT:
        raise Invalid(Message("not_reference"))
    return value


def _json(field, raw):
    if isinstance(raw, str):
        import json
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _not_input(field, raw):
    raise Invalid(Message("not_writable"))


def _file(field, raw):
    # engine.records.uploads builds on this module (Invalid), so it is imported here
    from engine.records.uploads import check_upload, upload_of
    return check_upload(upload_of(raw), field.max_mb, field.accept)


_COERCE = {
    "string": _text, "text": _text, "email": _email, "phone": _phone, "url": _url,
    "enum": _enum, "multi_enum": _multi_enum, "integer": _integer, "decimal": _decimal,
    "money": _decimal, "percent": _decimal, "rollup": _decimal, "boolean": _boolean,
    "date": _date, "datetime": _datetime, "reference": _reference, "json": _json,
    "autonumber": _text, "lines": _not_input, "file": _file,
}


def to_json(field: Field | None, value):
    """Return a stored value as the API shows it (DSL/API: decimals as strings, ISO dates)."""
    if value is None or type(value) in (str, int, bool):
        return value
    kind = field.kind.name if field is not None else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if kind in ("decimal", "money", "percent", "rollup"):
        _, scale = _numeric_shape(field) if kind != "rollup" else (18, 2)
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        return str(number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP))
    if isinstance(value, Decimal):
        return str(value)
    if kind == "file":  # never the store's key
        from engine.records.uploads import public
        return public(value)
    return value


def from_storage(field: Field, value):
    """Normalise a value read from the database (SQLite returns floats for numerics)."""
    if value is None:
        return None
    kind = field.kind.name
    if kind in ("decimal", "money", "percent", "rollup"):
        _, scale = _numeric_shape(field) if kind != "rollup" else (18, 2)
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if kind == "boolean":
        return bool(value)
    return value
